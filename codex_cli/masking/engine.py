"""The rules compiled for matching: the anchor table, one regex per set of candidate rules, and the verdict.

A candidate position comes with the set of rules whose anchors put it there (a bit mask). Its
regex is those rules' patterns as one alternation, in rule order, so the first rule that matches
is found in one call; a rule's check may then veto it (a placeholder, a name that is no
credential), and the next rules in the set are tried in turn. The verdict is the first rule whose
pattern matches at the position and whose check and the allow list accept it: exactly what one
left-to-right scan of the whole input with every rule would find.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple, Optional, Sequence

from codex_cli.masking.rules import REACH, RULES, Hit, Rule
from codex_cli.masking.rules.base import max_width
from codex_cli.masking.rules.keys import BLOCK_HEADER, BLOCK_HEADER_REACH, TERMINATED_BLOCKS
from codex_cli.masking.rules.published import LENGTHS as PUBLISHED_LENGTHS
from codex_cli.masking.rules.published import published

# Lookarounds may peek this far past a match's longest width (the OpenAI rule's digit lookahead is inside it).
LOOKAHEAD_SLACK = 128
_GROUP = re.compile(r"\(\?P([<=])([A-Za-z_][A-Za-z0-9_]*)")
_SECRET_GROUP = re.compile(r"\(\?P<(secret[0-9]*)>")


class AnchorEntry(NamedTuple):
    """One distinct anchor literal (lower-cased when caseless) and the rules it stands for."""

    literal: bytes
    caseless: bool
    offsets: tuple[int, ...]
    kind: int
    rules: int  # bit mask of rule indices
    probe: bytes = b""


class Verdict(NamedTuple):
    """A decided secret: which rule, and the span of the bytes to mask."""

    rule: int
    start: int
    end: int


class Engine:
    """The built-in rules, compiled once per process (see ``engine()``)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._widths: dict[int, int] = {}
        self.anchors = _anchor_table(self.rules)
        self.anchor_index = {(a.literal, a.caseless, a.probe): i for i, a in enumerate(self.anchors)}
        self.terminated = frozenset(f"r{i}" for i, r in enumerate(self.rules) if r.id in TERMINATED_BLOCKS)
        self._single: dict[int, re.Pattern[bytes]] = {}
        self._bits: dict[int, list[int]] = {}
        self._by_mask: dict[int, tuple[re.Pattern[bytes], int]] = {}

    @functools.cached_property
    def alternatives(self) -> list[str]:
        """Each rule's pattern as one named alternative, its groups renamed apart (built on first use)."""
        return [f"(?P<r{i}>{_prefixed(r.regex, f'r{i}_')})" for i, r in enumerate(self.rules)]

    @functools.cached_property
    def secret_groups(self) -> list[tuple[str, ...]]:
        return [tuple(f"r{i}_{g}" for g in _SECRET_GROUP.findall(r.regex)) for i, r in enumerate(self.rules)]

    def regex_for(self, mask: int) -> tuple["re.Pattern[bytes]", int]:
        """The alternation of the rules in ``mask`` (in rule order), and the longest match any of them makes."""
        found = self._by_mask.get(mask)
        if found is None:
            indices = _bits(mask)
            pattern = re.compile("|".join(self.alternatives[i] for i in indices).encode("ascii"))
            found = self._by_mask[mask] = (pattern, max(self.width(i) for i in indices) + LOOKAHEAD_SLACK)
        return found

    def width(self, index: int) -> int:
        """The longest match rule ``index`` can make."""
        width = self._widths.get(index)
        if width is None:
            width = self._widths[index] = min(REACH, max_width(self.rules[index].regex))
        return width

    def single(self, index: int) -> "re.Pattern[bytes]":
        pattern = self._single.get(index)
        if pattern is None:
            pattern = self._single[index] = re.compile(self.alternatives[index].encode("ascii"))
        return pattern

    def verdict(self, buf: bytes, c: int, match: "re.Match[bytes]", mask: int,
                allow: Sequence["re.Pattern[bytes]"] = ()) -> Optional[Verdict]:
        """The first rule of ``mask`` that matches at ``c`` and is accepted (``match``: the alternation's match)."""
        first = int(match.lastgroup[1:])
        found = self._accept(first, buf, match, allow)
        if found is not None:
            return found
        indices = self._bits.get(mask)
        if indices is None:
            indices = self._bits[mask] = _bits(mask)
        for index in indices:
            if index <= first:
                continue
            m = self.single(index).match(buf, c)
            if m is not None:
                found = self._accept(index, buf, m, allow)
                if found is not None:
                    return found
        return None

    def _accept(self, index: int, buf: bytes, match: "re.Match[bytes]", allow: Sequence["re.Pattern[bytes]"]
                ) -> Optional[Verdict]:
        span = match.span(f"r{index}")
        for group in self.secret_groups[index]:
            if match.start(group) >= 0:
                span = match.span(group)
                break
        check = self.rules[index].check
        if check is not None:
            span = check(Hit(buf, match, f"r{index}_"), span)
            if span is None:
                return None
        if span[1] - span[0] in PUBLISHED_LENGTHS and published(buf[span[0]:span[1]]):
            return None  # an example key that ships in public SDKs (rules/published.py)
        if allow and allowed(buf[span[0]:span[1]], allow):
            return None
        return Verdict(index, span[0], span[1])

    def block_decided(self, buf: bytes, c: int, match: Optional["re.Match[bytes]"]) -> bool:
        """A key-block candidate is decided on its END line, or once its first bytes are no key header."""
        n = len(buf)
        return ((match is not None and match.lastgroup in self.terminated and match.end() < n)
                or (n - c >= BLOCK_HEADER_REACH and BLOCK_HEADER().match(buf, c) is None))


def allowed(value: bytes, allow: Sequence["re.Pattern[bytes]"]) -> bool:
    """Whether a secret's bytes match one of the ``mask.allow`` patterns (never masked)."""
    return any(p.search(value) is not None for p in allow)


def _prefixed(pattern: str, prefix: str) -> str:
    """Rename a rule's named groups (and back-references) so many rules fit in one regex."""
    return _GROUP.sub(lambda m: f"(?P{m.group(1)}{prefix}{m.group(2)}", pattern)


def _bits(mask: int) -> list[int]:
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def _anchor_table(rules: Sequence[Rule]) -> tuple[AnchorEntry, ...]:
    merged: dict[tuple[bytes, bool, bytes], list] = {}
    for index, rule in enumerate(rules):
        for a in rule.anchors:
            entry = merged.setdefault(anchor_key(a.literal, a.caseless, a.probe), [set(), 0, 0])
            entry[0].update(a.offsets)
            entry[1] = max(entry[1], a.kind)
            entry[2] |= 1 << index
    return tuple(AnchorEntry(lit, caseless, tuple(sorted(offs)), kind, mask, probe)
                 for (lit, caseless, probe), (offs, kind, mask) in merged.items())


def anchor_key(literal: bytes, caseless: bool, probe: bytes = b"") -> tuple[bytes, bool, bytes]:
    """How an anchor is looked up: its literal (lower-cased when caseless), caseless, and its probe."""
    return (literal.lower() if caseless else literal, caseless, probe)


@functools.cache
def engine() -> Engine:
    """The built-in rules, compiled on first use (input with no candidate never pays for it)."""
    return Engine(RULES)

