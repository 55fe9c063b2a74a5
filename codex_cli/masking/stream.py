"""The streaming masker: bytes in, bytes out, constant memory, secrets split across chunks caught.

A candidate is a position where some rule could match (an anchor occurrence minus the rule's
offset). Text before the first undecided candidate is safe to emit; a candidate is decided once
the stream holds ``REACH`` bytes after it, or earlier when its rule cannot look further (a token
rule at the next whitespace, a line rule at the next newline, a key block at its END line).
The result is identical to one full regex scan of the whole input, whatever the chunking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

from codex_cli.masking.prefilter import Finder, default_finder
from codex_cli.masking.rules import (
    ALLOW_MARKER,
    ALLOW_REACH,
    ANCHORS,
    BLOCK_HEADER,
    BLOCK_HEADER_REACH,
    LINE,
    REACH,
    RULE_BY_GROUP,
    RULES,
    TAIL,
    TERMINATED_BLOCKS,
    TOKEN,
    WHITESPACE,
    combined,
)

_TERMINATED = frozenset(f"r{i}" for i, r in enumerate(RULES) if r.id in TERMINATED_BLOCKS)
DEFAULT_REPLACEMENT = "[SECRET]"


@dataclass(frozen=True)
class Finding:
    """One masked secret: its rule, and where the masked bytes were (never the bytes themselves)."""

    rule: str
    family: str
    offset: int  # byte offset of the masked part in the stream
    length: int  # bytes masked
    line: int  # 1-based line of the masked part
    column: int  # 1-based byte column on that line


def replacement_for(replacement: str, family: str, typed: bool) -> bytes:
    """The text a secret becomes: ``[SECRET]``, or ``[SECRET:github]`` when typed."""
    if typed:
        replacement = f"{replacement[:-1]}:{family}]" if replacement.endswith("]") else f"{replacement}:{family}"
    return replacement.encode("utf-8", "surrogatepass")


class ByteMasker:
    """Incremental masker over bytes: ``feed`` returns what is safe to emit, ``flush`` the rest."""

    def __init__(self, replacement: str = DEFAULT_REPLACEMENT, typed: bool = False, *,
                 finder: Optional[Finder] = None, on_finding: Optional[Callable[[Finding], None]] = None) -> None:
        self._finder = finder if finder is not None else default_finder()[1]
        self._replace = [replacement_for(replacement, r.family, typed) for r in RULES]
        self._on_finding = on_finding  # lines are counted only for it
        self._buf = b"\n"  # a virtual newline before the stream: "start of line" for every check
        self._base = -1  # stream offset of _buf[0]
        self._emitted = 0  # stream offset up to which output has been returned
        self._last_end = 0  # stream offset where the last masked secret ended
        self._scanned = -1  # anchors ending at or before this stream offset are in _pending already
        self._pending: dict[int, int] = {}  # candidate stream offset -> strictest kind
        self._line, self._line_pos, self._line_start = 1, 0, 0  # lines counted up to _line_pos
        self.count = 0

    def feed(self, data: bytes) -> bytes:
        """Add input; return the output that can no longer be part of a secret."""
        return b"".join(self.feed_pieces(data))

    def flush(self) -> bytes:
        """End of input: return everything not yet returned, masked."""
        return b"".join(self.flush_pieces())

    def feed_pieces(self, data: bytes) -> list[memoryview | bytes]:
        """``feed`` without joining: the output as pieces to write in order (no copy of the input)."""
        if data:
            self._buf = self._buf + data
        return self._advance(final=False)

    def flush_pieces(self) -> list[memoryview | bytes]:
        """``flush`` without joining."""
        return self._advance(final=True)

    def _advance(self, final: bool) -> list[memoryview | bytes]:
        buf, base = self._buf, self._base
        self._find_candidates(buf, base)
        view = memoryview(buf)
        pieces: list[memoryview | bytes] = []
        out = self._emitted - base
        stop = len(buf) if final else max(out, len(buf) - TAIL)
        for c in sorted(self._pending):
            local = c - base
            if local >= stop:
                break
            if c < self._last_end:
                del self._pending[c]
                continue
            match = self._decide(buf, local, self._pending[c], final)
            if match is None:
                stop = local
                break
            del self._pending[c]
            if match is False or _allowed(buf, local):
                continue
            start, end = _secret_span(match)
            pieces.append(view[out:start])
            pieces.append(self._replace[RULE_BY_GROUP[match.lastgroup][0]])
            self._record(buf, base, match, start, end)
            out = end
            self._last_end = base + end
        if out < stop:
            pieces.append(view[out:stop])
            out = stop
        self._emitted = base + out
        self._trim()
        return pieces

    def _find_candidates(self, buf: bytes, base: int) -> None:
        for at, index in self._finder(buf, self._scanned - base):
            anchor = ANCHORS[index]
            for offset in anchor.offsets:
                c = base + at - offset
                if c >= self._emitted:
                    self._pending[c] = max(anchor.kind, self._pending.get(c, TOKEN))
        self._scanned = base + len(buf)

    def _decide(self, buf: bytes, c: int, kind: int, final: bool) -> "re.Match[bytes] | bool | None":
        """The match at c (False: none), or None while more input could still change the answer."""
        n = len(buf)
        match = combined().match(buf, c)
        if final or c + REACH <= n:
            return match or False
        if kind == TOKEN:
            decided = WHITESPACE.search(buf, c) is not None
        elif kind == LINE:
            decided = buf.find(b"\n", c) >= 0
        else:
            decided = (match is not None and match.lastgroup in _TERMINATED and match.end() < n) or (
                n - c >= BLOCK_HEADER_REACH and BLOCK_HEADER.match(buf, c) is None)
        if not decided:
            return None
        if match is not None and buf.find(b"\n", c) < 0 and c + ALLOW_REACH > n:
            return None  # the allow marker could still come later on this line
        return match or False

    def _record(self, buf: bytes, base: int, match: "re.Match[bytes]", start: int, end: int) -> None:
        self.count += 1
        if self._on_finding is None:
            return
        self._count_lines(buf, base, start)
        _, rule = RULE_BY_GROUP[match.lastgroup]
        self._on_finding(Finding(rule.id, rule.family, base + start, end - start, self._line,
                                 base + start - self._line_start + 1))

    def _count_lines(self, buf: bytes, base: int, upto: int) -> None:
        frm = self._line_pos - base
        if upto > frm:
            newlines = buf.count(b"\n", frm, upto)
            if newlines:
                self._line += newlines
                self._line_start = base + buf.rfind(b"\n", frm, upto) + 1
            self._line_pos = base + upto

    def _trim(self) -> None:
        keep = max(0, self._emitted - self._base - ALLOW_REACH)
        if self._on_finding is not None:
            self._count_lines(self._buf, self._base, keep)
        if keep:
            self._buf = self._buf[keep:]
            self._base += keep


def _secret_span(match: "re.Match[bytes]") -> tuple[int, int]:
    group = "s" + match.lastgroup[1:]
    if group in match.re.groupindex and match.start(group) >= 0:
        return match.span(group)
    return match.span()


def _allowed(buf: bytes, c: int) -> bool:
    """Whether the line of position c (within ALLOW_REACH either side) carries the allow marker."""
    lo = max(0, c - ALLOW_REACH)
    line_start = buf.rfind(b"\n", lo, c) + 1 or lo
    line_end = buf.find(b"\n", c, c + ALLOW_REACH)
    if line_end < 0:
        line_end = c + ALLOW_REACH
    return buf.find(ALLOW_MARKER, line_start, line_end) >= 0
