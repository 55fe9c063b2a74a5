"""True-positive and false-positive test cases taken from peer secret scanners' own test suites.

    python benchmarks/peers --gitleaks DIR --detect-secrets DIR --trufflehog DIR --out cases.jsonl

Prints the cases per family and source, per file, the notes (files absent, fps reclassified, rules re-run)
and the constructs that could not be evaluated. ``--out`` writes one JSON object per line after a first
``{"meta": …}`` line that records each source's commit, licence, the constructs that could not be evaluated
(with file:line) and those notes. Output is deterministic for a seed (default 1234).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

if not __package__:  # run as `python benchmarks/peers`: import the package by name, not its modules as top-level
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from peers import CLONE_URLS, LICENSES, SEED, Case, Problem, all_cases, spot_check  # noqa: E402
from peers.git import Git  # noqa: E402


def _print_report(cases: list[Case], problems: list[Problem], stats: Counter, info: list[str],
                  out: Any = sys.stdout) -> None:
    by_family = Counter((c.source, c.family, c.kind) for c in cases)
    print(f"{'source':<15} {'family':<14} {'tp':>5} {'fp':>5}", file=out)
    for source, family in sorted({(s, f) for s, f, _ in by_family}):
        print(f"{source:<15} {family:<14} {by_family[source, family, 'tp']:>5} {by_family[source, family, 'fp']:>5}",
              file=out)
    totals = Counter((c.source, c.kind) for c in cases)
    for source in sorted({s for s, _ in totals}):
        print(f"{source:<15} {'(total)':<14} {totals[source, 'tp']:>5} {totals[source, 'fp']:>5}", file=out)
    print("\ncases per file:", file=out)
    per_file = Counter((c.file, c.kind) for c in cases)
    for path in sorted({p for p, _ in per_file}):
        print(f"  {path:<75} tp {per_file[path, 'tp']:>4}  fp {per_file[path, 'fp']:>4}", file=out)
    tps = [c for c in cases if c.kind == "tp"]
    print(f"\ntp with a known secret: {sum(c.secret is not None for c in tps)}/{len(tps)}", file=out)
    print(f"notes: files absent, fps reclassified, rules re-run ({len(info)}):", file=out)
    for line in info:
        print(f"  {line}", file=out)
    print(f"generated values that fullmatch their regex: {stats['generated_fullmatch']}, "
          f"that do not: {stats['generated_no_fullmatch']}", file=out)
    failures = spot_check(cases)
    print(f"spot check (secret in text): {'ok' if not failures else f'{len(failures)} failures'}", file=out)
    for f in failures:
        print(f"  {f}", file=out)
    print(f"\nconstructs not evaluated ({len(problems)}):", file=out)
    for p in problems:
        print(f"  {p}", file=out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gitleaks", help="checkout of " + CLONE_URLS["gitleaks"])
    parser.add_argument("--detect-secrets", help="checkout of " + CLONE_URLS["detect-secrets"])
    parser.add_argument("--trufflehog", help="checkout of " + CLONE_URLS["trufflehog"])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", help="write the cases here as JSON lines (first line: meta)")
    args = parser.parse_args(argv)
    repos = {"gitleaks": args.gitleaks, "detect-secrets": args.detect_secrets, "trufflehog": args.trufflehog}
    if not any(repos.values()):
        parser.error("give at least one of --gitleaks, --detect-secrets, --trufflehog")
    problems: list[Problem] = []
    stats: Counter = Counter()
    info: list[str] = []
    cases = all_cases(args.gitleaks, args.detect_secrets, args.trufflehog, args.seed, problems, stats, info)
    commits = {name: Git(repo).commit() for name, repo in repos.items() if repo}
    _print_report(cases, problems, stats, info)
    if args.out:
        meta = {
            "seed": args.seed,
            "sources": {n: {"commit": commits[n], "license": LICENSES[n], "url": CLONE_URLS[n]} for n in commits},
            "counts": {f"{s}/{k}": n for (s, k), n in sorted(Counter((c.source, c.kind) for c in cases).items())},
            "problems": [str(p) for p in problems],
            "notes": info,
        }
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"meta": meta}) + "\n")
            for case in cases:
                fh.write(json.dumps({**asdict(case), "commit": commits[case.source]}, ensure_ascii=False) + "\n")
        print(f"\nwrote {len(cases)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
