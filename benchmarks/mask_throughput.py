"""Throughput of ``codex mask`` against ``cat`` and detect-secrets on one deterministic corpus.

    python benchmarks/mask_throughput.py [--mb 200] [--ds-mb 1] [--runs 3] [--hostile-mb 10] [--keep DIR]
                                         [--baseline-rev REV]

Builds a corpus of code, prose, JSON and logs (secrets on ~0.1% of lines: provider tokens, name-keyed
settings such as DB_PASSWORD=…, URI passwords and Authorization headers; look-alikes such as task-,
ASIAN, DNA, ghost_, password_length = 16, max_tokens: 128, token = get_token() and ${DB_PASSWORD}
on ~5%) in a temp dir, then times, in one run and in turns: ``cat < corpus > /dev/null``, ``codex mask <
corpus > /dev/null`` with each prefilter engine (Hyperscan, pure Python), and ``detect-secrets scan`` (a peer that
only finds, never masks) on the first ``--ds-mb`` MB, extrapolated to MB/s. Three hostile inputs follow
(``--hostile-mb`` MB each): nothing but ``sk-``, nothing but ``password=`` lines, and ``password=<secret>`` lines (every
one a secret to mask).
With --baseline-rev, codex at that git revision (unpacked into a temp dir, run with this venv's packages) is
timed in the same turns, and the ratio printed: the same machine, the same load, old against new.
detect-secrets lives in its own venv under the cache dir (created on first use); the tests never need
it. Every process is single-threaded (1 thread) and runs with bytecode caches on; peak RSS is each command's
own, read by /usr/bin/time; the machine's load average is printed with the results.
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
from typing import NamedTuple

from revisions import checkout

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
    "password_length = {n}", "    max_tokens: {n}", "    {w}_token = get_token(\"{v}\")", "password: ${{DB_PASSWORD}}",
    "    \"integrity\": \"sha512-{b64}==\",", "api_key = os.environ[\"{W}_API_KEY\"]",
    "  \"eos_token\": \"</s>\", \"pad_token\": \"<|pad|>\",", "secret_santa = true  # {w} {v}",
]
TEMPLATE_WEIGHTS = (0.75, 0.20, 0.05)  # code, prose, bait
WORDS = ["alpha", "beta", "gamma", "model", "token", "server", "client", "batch", "layer", "cache", "query", "index",
         "vector", "stream", "buffer", "parser", "worker", "signal", "router", "schema", "access", "secret"]


class Row(NamedTuple):
    name: str
    wall: float  # MB/s by wall-clock time
    cpu: float  # MB/s by CPU time (user + sys): robust on a shared machine
    steady: float  # MB/s by wall time minus the startup time on empty input
    startup: float  # seconds on empty input
    rss: float  # peak RSS, MB
    note: str


class Tool(NamedTuple):
    name: str
    cmd: list[str]
    env: dict[str, str] = {}
    cwd: str | None = None  # `python -m` puts the working directory first on sys.path


def main() -> None:
    args = _parse()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="codex-mask-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        corpus, injected = build_corpus(work / "corpus.txt", args.mb * 1_000_000)
        size_mb = corpus.stat().st_size / 1e6
        print(f"corpus: {size_mb:.1f} MB, {injected} secret lines (seed {SEED}); 1 thread per process; "
              f"{os.cpu_count()} CPU cores visible")
        if TIME is None:
            print("note: /usr/bin/time is missing, so peak RSS is ru_maxrss, which counts this script's own size")
        _check_count(corpus, injected)
        tools = [Tool("cat", ["cat"])]
        if _engine_available("hyperscan"):
            tools.append(Tool("codex mask (hyperscan)", [_codex(), "mask"], {"CODEX_MASK_ENGINE": "hyperscan"}))
        if args.baseline_rev and _engine_available("hyperscan"):
            old = checkout(args.baseline_rev)
            cmd = [sys.executable, "-m", "codex_cli", "mask"]
            env = {"CODEX_MASK_ENGINE": "hyperscan", "PYTHONPATH": str(old)}
            _run(cmd, corpus, env, str(old))  # untimed: compiles and caches that revision's Hyperscan database
            tools.append(Tool(f"codex@{args.baseline_rev[:10]} (hs)", cmd, env, str(old)))
        tools.append(Tool("codex mask (python)", [_codex(), "mask"], {"CODEX_MASK_ENGINE": "python"}))
        rows = _interleaved(tools, corpus, args.runs)
        rows.append(_detect_secrets(corpus, work, args.ds_mb))
        _print_table(rows)
        if args.baseline_rev and _engine_available("hyperscan"):
            new, old = rows[1], rows[2]
            print(f"codex mask (hyperscan) / codex at {args.baseline_rev}: {new.wall / old.wall:.2f}x wall MB/s, "
                  f"{new.cpu / old.cpu:.2f}x CPU MB/s, {new.steady / old.steady:.2f}x MB/s less start-up")
        _hostile(work, args.hostile_mb, args.runs)
        print(f"load average during the run: {' '.join(os.getloadavg().__str__().strip('()').split(', '))}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="corpus size in MB (default 200)")
    parser.add_argument("--ds-mb", type=float, default=1.0, help="MB of the corpus given to detect-secrets")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool; the best is reported")
    parser.add_argument("--hostile-mb", type=int, default=10, help="size of each hostile input in MB (default 10)")
    parser.add_argument("--keep", help="build the corpus in this directory and keep it")
    parser.add_argument("--baseline-rev", help="also time codex at this git revision, in the same turns")
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
                    lines[i] = make_secret_line(rng)
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


def make_secret_line(rng: random.Random) -> str:
    """One line holding exactly one secret: a provider token in a config, or a name-keyed / structured one."""
    def r(chars: str, k: int) -> str:
        return "".join(rng.choices(chars, k=k))
    alnum = string.ascii_letters + string.digits
    password = r(alnum, 10) + rng.choice("!#%&*+-") + r(string.digits, 2)
    kinds = [
        lambda: f"config = {{ key: \"{make_secret(rng)}\" }}",
        lambda: f"DB_PASSWORD={password}", lambda: f"    password: \"{password}\"",
        lambda: f"client_secret = '{password}'", lambda: f"export API_TOKEN={r(alnum, 32)}",
        lambda: f"DATABASE_URL=postgres://app:{password}@db:5432/app",
        lambda: f"curl -H \"Authorization: Bearer {r(alnum, 40)}\" https://api.example.com/v1",
        lambda: f"mysql -u admin --password={password} app",
    ]
    return rng.choice(kinds)()


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
        lambda: "hf_" + r(string.ascii_letters, 34), lambda: "sk-ant-api03-" + r(alnum + "_-", 93) + "AA",
        lambda: "sk_live_" + r(alnum, 24), lambda: "glpat-" + r(alnum + "_-", 20), lambda: "npm_" + r(alnum, 36),
        lambda: "pypi-AgEIcHlwaS5vcmc" + r(alnum + "_-", 70), lambda: "gsk_" + r(alnum, 52),
        lambda: "hvs." + r(alnum + "_-", 95), lambda: "dop_v1_" + r("0123456789abcdef", 64),
        lambda: "xai-" + r(alnum, 80), lambda: "r8_" + r(alnum, 37), lambda: "shpat_" + r("0123456789abcdef", 32),
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


TIME = shutil.which("time", path="/usr/bin:/bin")


def _run(cmd: list[str], stdin_path: Path, env: dict[str, str] | None = None,
         cwd: str | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + sys) and peak RSS (MB) of ``cmd < stdin_path > /dev/null``.

    The RSS comes from /usr/bin/time: a child of this (large) Python process would report this process's size
    as its own peak (Linux keeps the pre-exec high-water mark), so `cat` would seem to take 20-40 MB."""
    # bytecode caches on, as on a user's install (this workplace sets PYTHONDONTWRITEBYTECODE=1, which would
    # make every run compile codex's modules from source again); the untimed _check_count run writes them
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full_env = {**base, "OMP_NUM_THREADS": "1", **(env or {})}
    with stdin_path.open("rb") as stdin, open(os.devnull, "wb") as devnull, \
            tempfile.NamedTemporaryFile("r") as rss:
        argv = [TIME, "-f", "%M", "-o", rss.name, *cmd] if TIME else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=devnull, env=full_env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        peak = int(rss.read().split()[-1]) / 1024 if TIME else usage.ru_maxrss / 1024
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_utime + usage.ru_stime, peak


def _interleaved(tools: list[Tool], corpus: Path, runs: int) -> list[Row]:
    """Each tool's best of ``runs`` runs, taken in turns (cat, codex hyperscan, codex python, cat, …) so that a
    change in the machine's load falls on every tool alike."""
    results: list[list[tuple[float, float, float]]] = [[] for _ in tools]
    empty: list[list[tuple[float, float, float]]] = [[] for _ in tools]
    for _ in range(runs):
        for i, tool in enumerate(tools):
            results[i].append(_run(tool.cmd, corpus, tool.env, tool.cwd))
            empty[i].append(_run(tool.cmd, Path(os.devnull), tool.env, tool.cwd))
    mb = corpus.stat().st_size / 1e6
    rows = []
    for tool, timed, idle in zip(tools, results, empty):
        wall, cpu, startup = min(r[0] for r in timed), min(r[1] for r in timed), min(r[0] for r in idle)
        rows.append(Row(tool.name, mb / wall, mb / max(cpu, 1e-9), mb / max(wall - startup, 1e-9), startup,
                        max(r[2] for r in timed), f"best of {runs}, interleaved, full corpus"))
    return rows


def _check_count(corpus: Path, injected: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with corpus.open("rb") as stdin:
        proc = subprocess.run([_codex(), "mask", "--check", "--report", "json"], stdin=stdin, capture_output=True,
                              check=False, env=env)
    found = proc.stderr.count(b'"rule"')
    status = "OK" if found == injected else "MISMATCH"
    print(f"secrets masked by codex mask: {found} of {injected} injected ({status})")


def _detect_secrets(corpus: Path, work: Path, mb: float) -> Row:
    exe = _detect_secrets_exe()
    if exe is None:
        nan = float("nan")
        return Row("detect-secrets scan", nan, nan, nan, nan, nan, "unavailable (could not install it in its venv)")
    part = work / "slice.txt"
    with corpus.open("rb") as src, part.open("wb") as dst:
        dst.write(src.read(int(mb * 1e6)))
    seconds, cpu, peak = _run([str(exe), "scan", "--all-files", str(part)], Path(os.devnull), cwd=str(work))
    size = part.stat().st_size / 1e6
    return Row("detect-secrets scan", size / seconds, size / cpu, float("nan"), float("nan"), peak,
               f"first {mb:g} MB, extrapolated")


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


def _hostile(work: Path, mb: int, runs: int) -> None:
    """Worst cases: a stream of nothing but "sk-" (an anchor at every third byte), nothing but "password=" lines
    with no value (a name-keyed anchor on every 10-byte line), and password=<12 random characters>! lines (every
    23-byte line a secret to decide and mask: ~87,000 secrets per 2 MB, the per-secret cost laid bare). The
    target, >= 10 MB/s, is the default engine's (Hyperscan); the pure-Python engine is the fallback where no
    Hyperscan wheel exists, shown for scale."""
    size = mb * 1_000_000
    rng = random.Random(SEED)
    inputs = {"sk-": b"sk-" * (size // 3), "password= lines": (b"password=\n" * (size // 10 + 1))[:size]}
    lines = [f"password={''.join(rng.choices(string.ascii_letters + string.digits, k=12))}!\n".encode()
             for _ in range(4096)]
    inputs["password=<secret>"] = (b"".join(lines) * (size // sum(map(len, lines)) + 1))[:size]
    print(f"\nhostile inputs, {mb} MB each (best of {runs}, engines in turns; 1 thread)")
    print(f"{'input':<18} {'engine':<10} {'MB/s wall':>10} {'MB/s CPU':>9} {'secrets/s':>10} {'peak RSS MB':>11}  "
          "target >= 10 MB/s (default engine)")
    for name, data in inputs.items():
        path = work / f"hostile-{name.split()[0].strip('=-<>').replace('=<', '-')}.txt"
        path.write_bytes(data)
        secrets = data.count(b"!\n")
        engines = [engine for engine in ("hyperscan", "python") if _engine_available(engine)]
        tools = [Tool(engine, [_codex(), "mask"], {"CODEX_MASK_ENGINE": engine}) for engine in engines]
        for engine, row in zip(engines, _interleaved(tools, path, runs)):
            verdict = ("met" if row.wall >= 10 else "NOT met") if engine == "hyperscan" else "(fallback)"
            rate = f"{secrets * row.wall / (len(data) / 1e6):>10.0f}" if secrets else f"{'-':>10}"
            print(f"{name:<18} {engine:<10} {row.wall:>10.1f} {row.cpu:>9.1f} {rate} {row.rss:>11.1f}  {verdict}")


def _print_table(rows: list[Row]) -> None:
    cat, ds = rows[0].wall, rows[-1].wall
    print(f"\n{'tool':<24} {'MB/s wall':>10} {'MB/s CPU':>9} {'MB/s -startup':>13} {'startup s':>9} {'x cat':>6} "
          f"{'x detect-secrets':>16} {'peak RSS MB':>11}  threads  input")
    for row in rows:
        vs_ds = row.wall / ds if ds == ds and ds > 0 else float("nan")
        print(f"{row.name:<24} {row.wall:>10.1f} {row.cpu:>9.1f} {row.steady:>13.1f} {row.startup:>9.2f} "
              f"{row.wall / cat:>6.3f} {vs_ds:>16.1f} {row.rss:>11.1f}  {1:>7}  {row.note}")
    print("x cat and x detect-secrets compare wall-clock MB/s; 'MB/s -startup' subtracts the time the same "
          "command takes on empty input.")


if __name__ == "__main__":
    main()
