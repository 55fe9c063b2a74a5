"""True-positive and false-positive test cases taken from peer secret scanners' own test suites.

    python benchmarks/peer_cases.py --gitleaks DIR --detect-secrets DIR --trufflehog DIR --out cases.jsonl

The recall measurement of ``codex mask`` needs inputs that other people wrote. The ``peers`` package reads them at
run time from local git checkouts of three peers and never copies their text into this repository:

- gitleaks (MIT): ``git clone https://github.com/gitleaks/gitleaks``. Each rule in
  ``cmd/generate/config/rules/*.go`` builds its ``tps``/``fps`` lists in Go. A small Go tokenizer and
  interpreter evaluates the subset those files use (string literals, ``+``, composite literals, ``append``,
  ``fmt.Sprintf``, ``var``/``:=``, ``if``, ``for … range``) and runs the helpers in
  ``cmd/generate/config/utils/{generate,patterns}.go`` from the checkout itself. ``secrets.NewSecret(regex)``
  is replaced by a seeded sampler that walks Python's parse of the (converted) Go regex the way gitleaks'
  reggen generator does with its limit of 1: a repeat ``{n,m}`` with ``n >= 1`` gives ``n`` copies, ``?``,
  ``*`` and ``{0,m}`` give zero or one. Go map iteration is random, so maps are iterated sorted by key.
- detect-secrets (Apache-2.0): ``git clone https://github.com/Yelp/detect-secrets``. ``tests/plugins/*_test.py``
  are parsed with ``ast`` (never imported) and their ``@pytest.mark.parametrize`` rows evaluated with a
  restricted evaluator; ``randint`` is replaced by its lower bound.
- trufflehog (AGPL-3.0): ``git clone https://github.com/trufflesecurity/trufflehog``. The ``[]struct{…}``
  test tables (``input``/``want``) of ``pkg/detectors/<name>/*_test.go`` are evaluated with the same Go
  interpreter.

``Case.secret`` (tp only, None when unknown): for gitleaks the argument of ``GenerateSampleSecret(s)``, else
what the rule's own regex reports (its SecretGroup, else the first non-empty unnamed group, wrapping quotes
dropped), else the generated part; for detect-secrets the test's expected secret (flag-only rows: None); for
trufflehog the expected result when it occurs in the input, else its credential (JSON value or longest
non-URL part). A gitleaks fp that is another rule's tp text is dropped; one that a sibling rule of the same
file matches with enough entropy becomes that sibling's tp.

Every case is a :class:`Case`; ``--out`` writes one JSON object per line after a first ``{"meta": …}`` line
that records each source's commit, licence, the constructs that could not be evaluated (with file:line) and
notes (fps reclassified as credentials, rules re-run because a generated value failed the rule itself).
Output is deterministic for a seed (default 1234). Standard library only.
"""


from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from typing import Any, Optional

from peers import CLONE_URLS, LICENSES, SEED, Case, Problem, all_cases, spot_check
from peers.git import Git


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
