"""The records every extractor returns (:class:`Case`, :class:`Problem`), the sources they come from, and the
invariants a case keeps.

``Case.secret`` (tp only, None when unknown): for gitleaks the argument of ``GenerateSampleSecret(s)``, else
what the rule's own regex reports (its SecretGroup, else the first non-empty unnamed group, wrapping quotes
dropped), else the generated part; for detect-secrets the test's expected secret (flag-only rows: None); for
trufflehog the expected result when it occurs in the input, else its credential (JSON value or longest
non-URL part).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

SEED = 1234

LICENSES = {"gitleaks": "MIT", "detect-secrets": "Apache-2.0", "trufflehog": "AGPL-3.0"}
CLONE_URLS = {
    "gitleaks": "https://github.com/gitleaks/gitleaks",
    "detect-secrets": "https://github.com/Yelp/detect-secrets",
    "trufflehog": "https://github.com/trufflesecurity/trufflehog",
}


@dataclass(frozen=True)
class Case:
    """One test input of a peer scanner: a credential ("tp") or a look-alike that is not one ("fp")."""

    source: str  # "gitleaks" | "detect-secrets" | "trufflehog"
    file: str  # path inside the peer repo
    rule: str  # the peer's rule id / plugin / detector name
    family: str  # codex family name
    kind: str  # "tp" (a credential) or "fp" (not a credential)
    text: str  # the test input text (may be multi-line)
    secret: Optional[str]  # the credential inside text when known (tp only), else None
    note: str = ""


@dataclass(frozen=True)
class Problem:
    """A construct that could not be evaluated, so its cases are missing from the output."""

    source: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.file}:{self.line}: {self.message}"


def spot_check(cases: list[Case]) -> list[str]:
    """Failures of the invariants: a tp's secret is inside its text, an fp has no secret."""
    failures = []
    for c in cases:
        if c.kind == "tp" and c.secret is not None and c.secret not in c.text:
            failures.append(f"{c.source} {c.rule}: secret {c.secret[:40]!r} not in text")
        if c.kind == "fp" and c.secret is not None:
            failures.append(f"{c.source} {c.rule}: fp with a secret")
    return failures
