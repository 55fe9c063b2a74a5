"""Instructions per byte of ``codex mask`` under callgrind: a measure this shared machine's load cannot move.

    python benchmarks/mask_instructions.py [--mb 10] [--baseline-rev REV]

Wall-clock MB/s on a shared two-core machine swings by a third from one minute to the next (``cat`` itself
did); callgrind counts the instructions a run executes, which are the same whatever else runs. On the
throughput corpus (``mask_throughput.build_corpus``, seed 1234) this runs ``codex mask`` (Hyperscan) on
--mb MB and on twice that, and on empty input, and prints the marginal instructions per byte (the
difference between the two sizes: what each further byte costs), the fixed cost beyond start-up and the
start-up itself. With --baseline-rev, codex at that git revision (unpacked into a temp dir, run with this
venv's packages) is counted the same way, and the ratio printed. Instructions are not time (Hyperscan's
vector code does more per cycle than the interpreter), so this complements mask_throughput.py, which
measures MB/s. Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mask_throughput import build_corpus  # noqa: E402
from revisions import checkout  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=10, help="the smaller input, in MB (the larger is twice it)")
    parser.add_argument("--baseline-rev", help="also count codex at this git revision")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="codex-mask-ir-"))
    try:
        big, _ = build_corpus(work / "big.txt", 2 * args.mb * 1_000_000)
        small = work / "small.txt"
        with big.open("rb") as src:
            small.write_bytes(src.read(args.mb * 1_000_000))
        size = big.stat().st_size - small.stat().st_size
        print(f"corpus: {small.stat().st_size / 1e6:.1f} and {big.stat().st_size / 1e6:.1f} MB (seed 1234); "
              "codex mask with Hyperscan, bytecode caches on; instructions counted by callgrind")
        rows = [("codex mask (this checkout)", _count(None, small, big, size))]
        if args.baseline_rev:
            rows.append((f"codex at {args.baseline_rev}", _count(checkout(args.baseline_rev), small, big, size)))
        print(f"\n{'codex':<34} {'instr/byte':>10} {'fixed M instr':>13} {'start-up M instr':>16}")
        for name, (marginal, fixed, startup) in rows:
            print(f"{name:<34} {marginal:>10.2f} {fixed:>13.0f} {startup:>16.0f}")
        if len(rows) == 2:
            (_, new), (_, old) = rows
            print(f"this checkout / {args.baseline_rev}: {new[0] / old[0]:.2f}x the instructions per byte, "
                  f"{new[1] / old[1]:.2f}x the fixed cost")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _count(checkout: Path | None, small: Path, big: Path, size: int) -> tuple[float, float, float]:
    """(marginal instructions per byte, fixed millions beyond start-up, start-up millions)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["CODEX_MASK_ENGINE"] = "hyperscan"
    cwd = None
    if checkout is not None:
        env["PYTHONPATH"], cwd = str(checkout), str(checkout)  # `python -m` puts the working directory first
    cmd = [sys.executable, "-m", "codex_cli", "mask"]
    with small.open("rb") as stdin:  # untimed: writes bytecode and the Hyperscan cache for this revision
        subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, env=env, cwd=cwd, check=True)

    def instructions(path: Path) -> int:
        with path.open("rb") as stdin:
            proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                                  stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd,
                                  check=True)
        return int(re.search(rb"Collected : ([0-9]+)", proc.stderr).group(1))

    empty, one, two = instructions(Path(os.devnull)), instructions(small), instructions(big)
    marginal = (two - one) / size
    return marginal, (one - empty - marginal * small.stat().st_size) / 1e6, empty / 1e6


if __name__ == "__main__":
    main()
