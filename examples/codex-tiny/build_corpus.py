"""Build the codex-tiny pretraining corpus from the Python standard library (PSF licence).

The corpus is every top-level ``*.py`` module of the running CPython's standard library,
in sorted file-name order, minus generated or obfuscated files, each followed by the
``<|endoftext|>`` separator. Run it with CPython 3.11.7 to reproduce the published
corpus byte for byte (its sha256 is in docs/codex-tiny.md):

    python examples/codex-tiny/build_corpus.py --out artifacts/codex-tiny/corpus.txt
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import sysconfig
from pathlib import Path

SEPARATOR = "<|endoftext|>"
# Machine-generated (_sysconfigdata*), rot13-obfuscated (this) or a joke that opens a browser (antigravity).
EXCLUDED_PREFIXES = ("_sysconfigdata", "this.py", "antigravity.py", "__hello__.py")


def corpus_files(stdlib: Path) -> list[Path]:
    """The stdlib modules that make up the corpus, in a deterministic order."""
    files = sorted(stdlib.glob("*.py"), key=lambda p: p.name)
    return [p for p in files if not p.name.startswith(EXCLUDED_PREFIXES)]


def build(stdlib: Path, out: Path) -> str:
    """Write the corpus to ``out`` and return its sha256."""
    parts = []
    for path in corpus_files(stdlib):
        source = path.read_text(encoding="utf-8").rstrip() + "\n"
        parts.append(source + SEPARATOR + "\n")
    text = "".join(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--out", type=Path, default=Path("artifacts/codex-tiny/corpus.txt"))
    args = parser.parse_args()
    digest = build(args.stdlib, args.out)
    files = corpus_files(args.stdlib)
    print(f"python {sys.version.split()[0]}: {len(files)} files, {args.out.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
