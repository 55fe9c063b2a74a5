"""Your own rules and allow list (``mask.rules``, ``mask.allow``): what the built-in rules do not know.

A custom rule is a regex (with optional keywords and a secret group) matched line by line: a
match never spans lines, and lines longer than 64 KiB are matched in 64 KiB pieces. Keywords
(case-insensitive) let a line be skipped without running the regex. The allow list is a set of
regexes: a secret, built-in or custom, whose masked bytes match one is left alone. Patterns match
the input's UTF-8 bytes.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple, Optional, Sequence, Union


class CustomRule(NamedTuple):
    """One user rule, compiled."""

    id: str
    family: str
    regex: "re.Pattern[bytes]"
    keywords: tuple[bytes, ...]
    secret_group: Union[int, str, None]
    description: str


class Policy(NamedTuple):
    """The user's additions to the built-in rules: their rules and their allow list."""

    rules: tuple[CustomRule, ...] = ()
    allow: tuple["re.Pattern[bytes]", ...] = ()

    def matches(self, segment: bytes) -> list[tuple[int, int, int, int]]:
        """(match start, secret start, secret end, rule index) for every custom match in one line segment."""
        found: list[tuple[int, int, int, int]] = []
        lowered: Optional[bytes] = None
        for index, rule in enumerate(self.rules):
            if rule.keywords:
                lowered = segment.lower() if lowered is None else lowered
                if not any(k in lowered for k in rule.keywords):
                    continue
            for m in rule.regex.finditer(segment):
                start, end = m.span(rule.secret_group) if rule.secret_group is not None else m.span()
                if start < 0 or end <= start:
                    continue
                if self.allow and any(p.search(segment[start:end]) for p in self.allow):
                    continue
                found.append((m.start(), start, end, index))
        return found

    def identity(self) -> str:
        """What these additions change in masked text, as a stable digest (for caches)."""
        import hashlib
        import json

        payload = [[r.id, r.family, r.regex.pattern.decode("utf-8", "surrogateescape"),
                    list(map(bytes.hex, r.keywords)), r.secret_group] for r in self.rules]
        payload.append([p.pattern.decode("utf-8", "surrogateescape") for p in self.allow])
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


class RuleError(ValueError):
    """A user rule that cannot work; ``field`` names the part that is wrong (regex or secret_group)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def compile_rule(name: str, regex: str, family: Optional[str] = None, keywords: Sequence[str] = (),
                 secret_group: Union[int, str, None] = None, description: str = "") -> CustomRule:
    """Compile one user rule; raises RuleError with a sentence for a bad regex or secret group."""
    pattern = compile_pattern(regex)
    if pattern.search(b"") is not None:
        raise RuleError("regex", "matches the empty string; make it match the secret itself")
    if isinstance(secret_group, int) and not 0 <= secret_group <= pattern.groups:
        raise RuleError("secret_group", f"is {secret_group}, but the regex has {pattern.groups} group(s)")
    if isinstance(secret_group, str) and secret_group not in pattern.groupindex:
        raise RuleError("secret_group", f"is {secret_group!r}, which is not a named group of the regex")
    return CustomRule(name, family or "custom", pattern, tuple(k.lower().encode() for k in keywords if k),
                      secret_group, description)


def compile_pattern(regex: str) -> "re.Pattern[bytes]":
    """A user regex, compiled over bytes; raises ValueError naming what is wrong."""
    try:
        return re.compile(regex.encode("utf-8"))
    except re.error as e:
        raise RuleError("regex", f"is not a valid regex ({e})") from e


@functools.lru_cache(maxsize=32)
def _policy(rules: tuple, allow: tuple[str, ...]) -> Policy:
    compiled = tuple(compile_rule(name, regex, family, keywords, group, description)
                     for name, regex, family, keywords, group, description in rules)
    return Policy(compiled, tuple(compile_pattern(p) for p in allow))


def policy_for(mask: object) -> Optional[Policy]:
    """The policy a ``mask`` config section asks for (None when it adds nothing); compiled once per value."""
    rules = tuple((r.name, r.regex, r.family, tuple(r.keywords or ()), r.secret_group, r.description)
                  for r in getattr(mask, "rules", None) or ())
    allow = tuple(getattr(mask, "allow", None) or ())
    if not rules and not allow:
        return None
    return _policy(rules, allow)
