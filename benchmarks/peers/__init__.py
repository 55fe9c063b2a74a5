"""True-positive and false-positive test cases from peer secret scanners' own test suites, for
``benchmarks/mask_recall.py``.

The recall measurement of ``codex mask`` needs inputs that other people wrote. This package reads them at
run time from local git checkouts of three peers (the files of HEAD, through ``git show``; the work tree is
never touched) and stores nothing of theirs in this repository: no case, rule or test file is copied here.

- gitleaks (MIT), ``git clone https://github.com/gitleaks/gitleaks``: the ``tps``/``fps`` lists that each
  rule in ``cmd/generate/config/rules/*.go`` builds in Go, run with a small Go evaluator
  (:mod:`peers.gitleaks`, :mod:`peers.golang`);
- detect-secrets (Apache-2.0), ``git clone https://github.com/Yelp/detect-secrets``: the
  ``@pytest.mark.parametrize`` rows of ``tests/plugins/*_test.py``, parsed with ``ast``, never imported
  (:mod:`peers.detect_secrets`, :mod:`peers.pyliteral`);
- trufflehog (AGPL-3.0), ``git clone https://github.com/trufflesecurity/trufflehog``: the ``[]struct{…}``
  test tables of ``pkg/detectors/<name>/*_test.go``, run with the same Go evaluator (:mod:`peers.trufflehog`).

Written against gitleaks b58d3f10, detect-secrets 5e141933 and trufflehog 3ab759fe. Another commit may
add, drop or change cases; what cannot be evaluated there is recorded as a :class:`Problem` (with file and
line) in the ``problems`` list a caller passes, and the command line prints them. Each peer module maps
the peer's rules to codex families.

Every case is a :class:`Case`; :func:`all_cases` gathers them. Output is deterministic for a seed (default
1234). Standard library only. ``python benchmarks/peers --help`` (``__main__.py``) prints the cases per
family and source and writes them as JSON lines.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from peers.cases import CLONE_URLS, LICENSES, SEED, Case, Problem, spot_check
from peers.detect_secrets import detect_secrets_cases
from peers.gitleaks import gitleaks_cases
from peers.trufflehog import trufflehog_cases

__all__ = [
    "CLONE_URLS", "LICENSES", "SEED", "Case", "Problem", "all_cases", "detect_secrets_cases", "gitleaks_cases",
    "spot_check", "trufflehog_cases",
]


def all_cases(gitleaks: Optional[str], detect_secrets: Optional[str], trufflehog: Optional[str], seed: int = SEED,
              problems: Optional[list[Problem]] = None, stats: Optional[Counter] = None,
              info: Optional[list[str]] = None) -> list[Case]:
    """Cases of every source whose checkout is given (None skips a source)."""
    problems = [] if problems is None else problems
    cases: list[Case] = []
    if gitleaks:
        cases.extend(gitleaks_cases(gitleaks, seed, problems, stats, info))
    if detect_secrets:
        cases.extend(detect_secrets_cases(detect_secrets, problems))
    if trufflehog:
        cases.extend(trufflehog_cases(trufflehog, None, problems, seed))
    return cases
