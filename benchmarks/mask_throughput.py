"""Throughput of ``codex mask`` against ``cat`` and detect-secrets on one deterministic corpus.

    python benchmarks/mask_throughput.py [--mb 200] [--ds-mb 1] [--runs 3] [--keep DIR]

Builds a corpus of code, prose, JSON and logs (secrets on ~0.1% of lines, look-alikes such as
task-, ASIAN, DNA and ghost_ on ~5%) in a temp dir, then
times, in one run: ``cat < corpus > /dev/null``, ``codex mask < corpus > /dev/null`` with each
prefilter engine, and ``detect-secrets scan`` (a peer that only finds, never masks) on the first
``--ds-mb`` MB, extrapolated to MB/s. detect-secrets lives in its own venv under the cache dir
(created on first use); the tests never need it. Every process is single-threaded (1 thread);
peak RSS is each child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 1234
SECRET_LINE_RATE = 0.001
CODE = [
    "def {w}_{v}(self, {v}: int = {n}) -> dict:", "    return {{'{w}': self.{v} + {n}}}",
    "    for i in range({n}):", "        if {v} is None:", "import os, sys, json  # {w} {v}",
    "const {v} = require('{w}-{v}');", "    await {w}.fetch(`/api/{w}/{v}?page={n}`);",
    "    log.info(\"{w} {v} took %d ms\", {n})", "class {W}{V}(Base{W}):", "  .{w}-{v} {{ margin: {n}px; }}",
    "sha256: {hex64}", "commit {hex40}", "id = \"{uuid}\"", "    b64 = \"{b64}\"",
    "{{\"{w}\": \"{v}\", \"count\": {n}, \"tags\": [\"{w}\", \"{v}\"]}}",
    "2026-11-28T17:{n2}:{n2}Z INFO {w}.{v} request_id={uuid} status=200",
]
PROSE = [
    "The {w} of the {v} was {n} times larger than the markets expected.",
    "In {n}, the {w} committee reviewed {v} proposals and accepted most of them.",
    "See https://example.com/{w}/{v}?ref={n} for the {w} documentation.",
    "We asked the {w} team to write a {v} plan before the deadline.",
]
# Look-alikes a masker must leave alone: they contain rule anchors (sk-, ASIA, ACCA, gho, secret...).
BAIT = [
    "    task-{n}: await {w}.fetch(`/api/{w}/{v}?page={n}`);", "    assert ghost_{v} == sketch_{w}",
    "{{\"tags\": [\"ask-{w}\", \"desk-{v}\"]}}", "The ASIAN markets and TASK-{n} moved {n} points.",
    "Sequence ACCAGTACGATCGATCGTACGTTAGC aligns with {w} at position {n}.",
    "    client_secret = settings.{w}_secret  # the {v} secret history",
]
TEMPLATE_WEIGHTS = (0.75, 0.20, 0.05)  # code, prose, bait
WORDS = ["alpha", "beta", "gamma", "model", "token", "server", "client", "batch", "layer", "cache", "query", "index",
         "vector", "stream", "buffer", "parser", "worker", "signal", "router", "schema", "access", "secret"]


def main() -> None:
    args = _parse()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="codex-mask-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        corpus, injected = build_corpus(work / "corpus.txt", args.mb * 1_000_000)
        size_mb = corpus.stat().st_size / 1e6
        print(f"corpus: {size_mb:.1f} MB, {injected} secret lines (seed {SEED}); 1 thread per process; "
              f"{os.cpu_count()} CPU cores visible")
        _check_count(corpus, injected)
        rows = [("cat", *_best(["cat"], corpus, args.runs))]
        for engine in ("hyperscan", "python"):
            env = {"CODEX_MASK_ENGINE": engine}
            if _engine_available(engine):
                rows.append((f"codex mask ({engine})", *_best([_codex(), "mask"], corpus, args.runs, env)))
        rows.append(("detect-secrets scan", *_detect_secrets(corpus, work, args.ds_mb)))
        _print_table(rows, size_mb)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="corpus size in MB (default 200)")
    parser.add_argument("--ds-mb", type=float, default=1.0, help="MB of the corpus given to detect-secrets")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool; the best is reported")
    parser.add_argument("--keep", help="build the corpus in this directory and keep it")
    return parser.parse_args()


def build_corpus(path: Path, size: int) -> tuple[Path, int]:
    """Write ``size`` bytes of deterministic lines to ``path``; return it and the secret-line count."""
    rng = random.Random(SEED)
    kinds = rng.choices((CODE, PROSE, BAIT), weights=TEMPLATE_WEIGHTS, k=20000)
    pool = [_fill(rng.choice(kind), rng) for kind in kinds]
    injected, written = 0, 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < size:
            lines = rng.choices(pool, k=4000)
            for i in range(len(lines)):
                if rng.random() < SECRET_LINE_RATE:
                    lines[i] = f"config = {{ key: \"{make_secret(rng)}\" }}"
                    injected += 1
            block = "\n".join(lines) + "\n"
            out.write(block)
            written += len(block)
    return path, injected


def _fill(template: str, rng: random.Random) -> str:
    w, v = rng.choice(WORDS), rng.choice(WORDS)
    hexdigits = "0123456789abcdef"
    return template.format(
        w=w, v=v, W=w.title(), V=v.title(), n=rng.randrange(100000), n2=f"{rng.randrange(60):02d}",
        hex64="".join(rng.choices(hexdigits, k=64)), hex40="".join(rng.choices(hexdigits, k=40)),
        uuid="-".join("".join(rng.choices(hexdigits, k=k)) for k in (8, 4, 4, 4, 12)),
        b64="".join(rng.choices(string.ascii_letters + string.digits + "+/", k=64)))


def make_secret(rng: random.Random) -> str:
    """One random credential in a format codex masks (the same generators as the tests use)."""
    def r(chars: str, k: int) -> str:
        return "".join(rng.choices(chars, k=k))
    alnum, upper = string.ascii_letters + string.digits, string.ascii_uppercase + "234567"
    kinds = [
        lambda: "AKIA" + r(upper, 16), lambda: "sk-proj-" + r(alnum, 74) + "T3BlbkFJ" + r(alnum, 74),
        lambda: "sk-" + r(alnum, 20) + "T3BlbkFJ" + r(alnum, 20), lambda: "AIza" + r(alnum + "_-", 35),
        lambda: "ghp_" + r(alnum, 36), lambda: "github_pat_" + r(alnum, 22) + "_" + r(alnum, 59),
        lambda: "xoxb-" + r(string.digits, 12) + "-" + r(string.digits, 13) + "-" + r(alnum, 24),
        lambda: "https://hooks.slack.com/services/T" + r(upper, 8) + "/B" + r(upper, 10) + "/" + r(alnum, 24),
        lambda: "eyJhbGciOiJIUzI1NiJ9." + "eyJ" + r(alnum, 40) + "." + r(alnum + "_-", 43),
    ]
    return rng.choice(kinds)()


def _codex() -> str:
    exe = Path(sys.executable).with_name("codex")
    return str(exe) if exe.exists() else "codex"


def _engine_available(engine: str) -> bool:
    if engine == "python":
        return True
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        print("codex mask (hyperscan): skipped, the hyperscan package is not installed")
        return False
    return True


def _run(cmd: list[str], stdin_path: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``cmd < stdin_path > /dev/null``."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    with stdin_path.open("rb") as stdin, open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=devnull, env=full_env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024


def _best(cmd: list[str], corpus: Path, runs: int, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    results = [_run(cmd, corpus, env) for _ in range(runs)]
    seconds = min(s for s, _ in results)
    return corpus.stat().st_size / 1e6 / seconds, max(r for _, r in results), f"best of {runs}, full corpus"


def _check_count(corpus: Path, injected: int) -> None:
    proc = subprocess.run([_codex(), "mask", "--check", "--report", "json"], stdin=corpus.open("rb"),
                          capture_output=True, check=False)
    found = proc.stderr.count(b'"rule"')
    status = "OK" if found == injected else "MISMATCH"
    print(f"secrets masked by codex mask: {found} of {injected} injected ({status})")


def _detect_secrets(corpus: Path, work: Path, mb: float) -> tuple[float, float, str]:
    exe = _detect_secrets_exe()
    if exe is None:
        return float("nan"), float("nan"), "unavailable (could not install it in its venv)"
    part = work / "slice.txt"
    with corpus.open("rb") as src, part.open("wb") as dst:
        dst.write(src.read(int(mb * 1e6)))
    start = time.perf_counter()
    proc = subprocess.Popen([str(exe), "scan", "--all-files", str(part)], stdout=subprocess.DEVNULL, cwd=work)
    _, _, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    return part.stat().st_size / 1e6 / seconds, usage.ru_maxrss / 1024, f"first {mb:g} MB, extrapolated"


def _detect_secrets_exe() -> Path | None:
    cache = Path(os.environ.get("CODEX_CACHE_DIR") or Path.home() / ".cache" / "codex")
    venv = cache / "bench" / "detect-secrets-venv"
    exe = venv / "bin" / "detect-secrets"
    if not exe.exists():
        print(f"installing detect-secrets into {venv} (once)")
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "pip"), "install", "--quiet", "detect-secrets==1.5.0"]]
        for step in steps:
            if subprocess.run(step, check=False).returncode != 0:
                return None
    return exe


def _print_table(rows: list[tuple[str, float, float, str]], size_mb: float) -> None:
    cat = rows[0][1]
    ds = rows[-1][1]
    print(f"\n{'tool':<26} {'MB/s':>9} {'x cat':>7} {'x detect-secrets':>17} {'peak RSS MB':>12}  threads  input")
    for name, mbps, rss, note in rows:
        ratio_ds = mbps / ds if ds == ds and ds > 0 else float("nan")
        print(f"{name:<26} {mbps:>9.1f} {mbps / cat:>7.3f} {ratio_ds:>17.1f} {rss:>12.1f}  {1:>7}  {note}")


if __name__ == "__main__":
    main()
