"""What a rule is: a bounded bytes pattern, the literal anchors that locate it, and an optional check.

The invariant every rule keeps: each match starts at a fixed offset before one of the rule's
anchors (a literal such as ``AKIA`` or ``-----BEGIN``), so a literal prefilter finds every
position where the rule can match, and the exact pattern only ever runs there. Patterns are
bounded (no match is longer than ``REACH`` bytes), so a stream decides a candidate once it holds
enough bytes after it. A ``check`` may veto a match or narrow its secret span; it may look back at
most ``LOOKBEHIND`` bytes before the match and never past its end, so a stream can always run it.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from typing import Callable, NamedTuple, Optional

if sys.version_info >= (3, 11):
    from re import _parser
else:  # pragma: no cover - Python 3.10
    import sre_parse as _parser

# Longest possible match, in bytes; the allow marker is looked for ALLOW_REACH either side.
REACH = 65536
ALLOW_REACH = 4096
ALLOW_MARKER = b"codex: allow"
# How far a check may look back before a match's start (the stream keeps ALLOW_REACH there).
LOOKBEHIND = 256

# When a candidate near the end of a stream is decided (see stream.py): a token rule once
# whitespace follows, a line rule once a newline follows, a two-line rule once two do, a block rule
# only on its END line (and any of them once the stream holds its longest possible match after it).
TOKEN, LINE, LINES, BLOCK = 0, 1, 2, 3

TOKEN_CHARS = r"A-Za-z0-9_\-"


class Hit(NamedTuple):
    """A rule's match as its check sees it: the buffer, the match, and the rule's group-name prefix."""

    buf: bytes
    match: "re.Match[bytes]"
    prefix: str

    def group(self, name: str) -> Optional[bytes]:
        return self.match.group(self.prefix + name)

    def span(self, name: str) -> tuple[int, int]:
        return self.match.span(self.prefix + name)

    def start(self) -> int:
        return self.match.start()


Span = tuple[int, int]
# A check returns None to veto the match, or the span of the bytes to mask (usually ``hit.span("secret")``).
Check = Callable[[Hit, Span], Optional[Span]]


class Anchor(NamedTuple):
    """A literal every match of the rule contains, ``offsets`` bytes after the match start."""

    literal: bytes
    offsets: tuple[int, ...] = (0,)
    kind: int = TOKEN
    caseless: bool = False
    # For a literal too common alone (a "."): a regex whose every match ends with the anchor, which the
    # pure-Python finder scans for instead of the bare literal.
    probe: bytes = b""


class HsPattern(NamedTuple):
    """A Hyperscan prefilter regex for one anchor, stricter than the bare literal.

    Every match of the anchor's rules contains a match of ``regex`` that locates the anchor: at
    ``end - back`` for a fixed-length regex, or with ``expand`` at every occurrence of the anchor
    within the regex's longest width before the match's end (no start-of-match tracking, which
    would make Hyperscan several times slower).
    """

    regex: bytes
    anchor: bytes
    back: int = 0
    caseless: bool = False
    expand: bool = False
    probe: bytes = b""  # the probe of the anchor it locates, when that anchor has one
    # Compile with long repeats unbounded ({0,48} -> *): same matches with the same ends, so still a superset;
    # it pays for some patterns and costs for others (measured per pattern: see prefilter.hs_expression).
    unbounded: bool = False


class Rule(NamedTuple):
    """One credential format: ``pattern`` matches it; its ``secret`` groups (if any) are the part masked."""

    id: str
    family: str
    pattern: str
    anchors: tuple[Anchor, ...]
    description: str = ""
    secret: str = ""  # appended to pattern as the group (?P<secret>…); else groups named secret* mark it
    hs: tuple[HsPattern, ...] = ()  # Hyperscan patterns; an anchor without one is prefiltered as a bare literal
    check: Optional[Check] = None

    @property
    def regex(self) -> str:
        """The full pattern, secret group included."""
        return self.pattern + (f"(?P<secret>{self.secret})" if self.secret else "")


def fixed(regex: bytes, anchor: bytes, after: int, *, caseless: bool = False) -> HsPattern:
    """A prefilter regex that ends ``after`` bytes past a fixed-length anchor match."""
    return HsPattern(regex, anchor, len(anchor) + after, caseless=caseless)


def token_rule(id: str, family: str, prefixes: tuple[str, ...], body: str, description: str, *,
               before: str = "A-Za-z0-9_", after: str = "A-Za-z0-9_", probe: str = "",
               check: Optional[Check] = None) -> Rule:
    """A token that starts with one of the literal ``prefixes`` (not inside a longer word), then ``body``.

    Its Hyperscan prefilter is the prefix after a non-word byte, followed by ``probe`` (default: up to
    eight of the body's first character class), a fixed length, so no start-of-match tracking is needed.
    """
    alternatives = "|".join(re.escape(p) for p in prefixes)
    pattern = f"(?<![{before}])(?:{alternatives}){body}" + (f"(?![{after}])" if after else "")
    width = max_width(probe) if probe else 0
    if not probe:
        probe, width = _probe(body)
    anchors = tuple(Anchor(p.encode()) for p in prefixes)
    hs = tuple(fixed(f"[^{before}]".encode() + re.escape(p.encode()) + probe.encode(), p.encode(), width)
               for p in prefixes)
    return Rule(id, family, pattern, anchors, description, hs=hs, check=check)


def _probe(body: str) -> tuple[str, int]:
    """A short, Hyperscan-friendly prefix of a token body (its first character class, up to 8 times), its width."""
    match = re.match(r"(\[[^\]]+\])\{(\d+)", body)
    if match is None:
        return "", 0
    n = min(8, int(match.group(2)))
    return f"{match.group(1)}{{{n}}}", n


class lazy_pattern:  # noqa: N801 - used like re.compile
    """A regex compiled on first use: ``codex mask`` starts before any check needs one. Call it for the pattern."""

    __slots__ = ("_source", "_flags", "_compiled")

    def __init__(self, source: bytes, flags: int = 0) -> None:
        self._source, self._flags, self._compiled = source, flags, None

    def __call__(self) -> "re.Pattern[bytes]":
        if self._compiled is None:
            self._compiled = re.compile(self._source, self._flags)
        return self._compiled


class gated_pattern(lazy_pattern):  # noqa: N801
    """A lazy pattern whose ``found(text)`` runs the regex only where the text holds a gate: lower-case literals,
    one of which every match contains (lower-cased). Python's ``re`` tries every alternative of a long word list
    with lookarounds at every position (~20 us on a 100-byte token, 130 us on 400); one search for the bare gate
    literals in the lower-cased text costs 1-4 us, and a random token rarely holds one.
    ``tests/test_masking_values.py`` samples each pattern's matches and checks that every one passes its gate."""

    __slots__ = ("gates", "_gate")

    def __init__(self, source: bytes, gates: tuple[bytes, ...], flags: int = 0) -> None:
        super().__init__(source, flags)
        self.gates = gates
        self._gate: "Optional[re.Pattern[bytes]]" = None

    def found(self, text: bytes) -> bool:
        """Whether the pattern matches anywhere in ``text`` (``search``)."""
        if self._gate is None:
            self._gate = re.compile(b"|".join(re.escape(g) for g in sorted(self.gates, key=len, reverse=True)))
        return self._gate.search(text.lower()) is not None and self().search(text) is not None


def max_width(pattern: str) -> int:
    """The longest match a pattern can make (lookarounds excluded), from the regex parser."""
    return _parser.parse(pattern).getwidth()[1]


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte."""
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


# (xxxx in one case only: a random token holds "xXxX" now and then, a placeholder does not.) Words of six
# letters or more count anywhere: a random body of 100 characters holds a given one by chance about once in
# 10^9 tokens. Shorter ones count only as a camelCase or separated word (TokenHere, YOUR_).
_SHORT_WORDS = (b"here", b"your")
_PLACEHOLDER = gated_pattern(
    rb"xxxx|XXXX|(?i:\*{3}|\.{3}|0{8}|(?:your|my)[_-]?(?:api|secret|token|key|pass)|example|sample|"
    rb"placeholder|dummy|redacted|changeme|change[_-]me|insert[_-]?your|replace[_-]?me|random|string)|"
    + b"|".join(rb"(?<![A-Za-z])" + w + rb"(?![a-z])|(?<![A-Z])" + w.capitalize() + rb"(?![a-z])|(?<![A-Z])"
                + w.upper() + rb"(?![A-Z])" for w in _SHORT_WORDS),
    (b"xxxx", b"***", b"...", b"00000000", b"my", b"example", b"sample", b"placeholder", b"dummy", b"redacted",
     b"change", b"insert", b"replace", b"random", b"string") + _SHORT_WORDS)


_FILLER = lazy_pattern(rb"xxxx|XXXX|\*{3}|\.{3}")


_PLUS_ONE = bytes((c + 1) % 256 for c in range(256))


def sequence_runs(body: bytes, shortest: int) -> int:
    """How many bytes of ``body`` sit in runs of at least ``shortest`` consecutive characters (abcdefg, 1234567,
    klMnopq: each the one after the last, letters in either case)."""
    lowered = body.lower()
    n = len(lowered)
    if n < shortest:
        return 0
    # Quick answer for a random token: a run needs shortest - 1 steps of +1 in a row. Bytes plus one, XOR the next
    # bytes, as integers: a zero byte is such a step (C speed; the loop below costs ~0.2 us a byte).
    steps = (int.from_bytes(lowered[:-1].translate(_PLUS_ONE), "big") ^ int.from_bytes(lowered[1:], "big"))
    if b"\0" * (shortest - 1) not in steps.to_bytes(n - 1, "big"):
        return 0
    covered, run, last = 0, 1, -2
    for c in lowered:
        run = run + 1 if c == last + 1 and (48 <= c <= 57 or 97 <= c <= 122) else 1
        if run == shortest:
            covered += shortest
        elif run > shortest:
            covered += 1
        last = c
    return covered


def plausible_token(body: bytes, min_entropy: float = 2.0, words: bool = True) -> bool:
    """Random enough to be a real token: not a placeholder (``xxxx``, ``***``, with ``words`` also ``example``,
    ``your_key``, ``TokenHere``), not one character repeated. (Runs such as ``abcdefg`` do not veto a token in
    its provider's format: the peers' own test keys are full of them.)"""
    if entropy(body) < min_entropy:
        return False
    if not words:
        return _FILLER().search(body) is None
    return not _PLACEHOLDER.found(body)


def token_check(prefixes: tuple[str, ...] = (), min_entropy: float = 2.0, words: bool = True) -> Check:
    """Veto placeholder tokens: the masked span, less whichever of ``prefixes`` starts it, must look random."""
    encoded = sorted((p.encode() for p in prefixes), key=len, reverse=True)

    def check(hit: Hit, span: Span) -> Optional[Span]:
        body = hit.buf[span[0]:span[1]]
        for prefix in encoded:
            if body.startswith(prefix):
                body = body[len(prefix):]
                break
        return span if plausible_token(body, min_entropy, words) else None

    return check
