"""Startup time of `codex --help` and `echo x | codex mask` against `python -c "import typer"`.

The "empty Typer app --help" row is the floor of any rich Typer help screen (two commands, no
code of ours), to tell codex's own cost from rich's. Runs each command N times interleaved (so
machine noise hits all of them alike), with bytecode caches on (PYTHONDONTWRITEBYTECODE is dropped
from the children's environment and a warm-up run writes the .pyc files), and prints the best and
median wall times and their ratios against the `import typer` floor, with the load average.
Target (issue 10): best of 15 <= 1.5x.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _codex() -> str:
    exe = Path(sys.executable).with_name("codex")
    return str(exe) if exe.exists() else (shutil.which("codex") or "codex")


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str], stdin: bytes) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    empty_app = ("import typer\napp = typer.Typer()\n@app.command()\ndef a() -> None: 'a'\n"
                 "@app.command()\ndef b() -> None: 'b'\napp()")
    cases = {
        'python -c "import typer"': ([sys.executable, "-c", "import typer"], b""),
        "empty Typer app --help": ([sys.executable, "-c", empty_app, "--help"], b""),
        "codex --help": ([_codex(), "--help"], b""),
        "echo x | codex mask": ([_codex(), "mask"], b"x\n"),
        "codex config show": ([_codex(), "config", "show"], b""),
    }
    editable = any("__editable__" in p.name for p in Path(sys.prefix).glob("lib/python*/site-packages/*"))
    env_note = (f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, torch threads n/a (torch is never "
                f"imported), {'editable' if editable else 'regular'} install")
    for cmd, stdin in cases.values():  # warm the page cache and .pyc files
        subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (cmd, stdin) in cases.items():
            times[name].append(_time(cmd, stdin))
    base = statistics.median(times['python -c "import typer"'])
    best = min(times['python -c "import typer"'])
    print(f"startup, {args.runs} interleaved runs ({env_note}); load average {_loadavg()}")
    print(f"{'command':<28} {'best ms':>8} {'best ratio':>10} {'median ms':>10} {'median ratio':>12}")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:<28} {min(samples) * 1000:>8.1f} {min(samples) / best:>9.2f}x {med * 1000:>10.1f} "
              f"{med / base:>11.2f}x")
    print(f"load average after: {_loadavg()}; target (issue 10): echo x | codex mask, best ratio <= 1.5x")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"

if __name__ == "__main__":
    main()
