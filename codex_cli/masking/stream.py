"""The streaming masker: bytes in, bytes out, constant memory, secrets split across chunks caught.

A candidate is a position where some rule could match (an anchor occurrence minus the rule's
offset). Text before the first undecided candidate is safe to emit; a candidate is decided once
the stream holds its rules' longest match after it, or earlier when its rules cannot look further
(a token rule at the next whitespace, a line rule at the next newline, a key block at its END
line). Custom rules (``mask.rules``) run on whole lines, so with them text is released line by
line. The result is identical to one full scan of the whole input, whatever the chunking.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple, Optional

from codex_cli.masking.custom import Policy
from codex_cli.masking.engine import Engine, Verdict, engine
from codex_cli.masking.prefilter import Finder, cached_python_finder, default_finder, engine_choice
from codex_cli.masking.rules import ALLOW_MARKER, ALLOW_REACH, LINE, LINES, REACH, TOKEN

DEFAULT_REPLACEMENT = "[SECRET]"
SMALL_INPUT = 64 * 1024  # bytes scanned by the pure-Python finder before the default finder takes over
WHITESPACE = re.compile(rb"[ \t\n\r\f\v]")


class Finding(NamedTuple):
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
                 finder: Optional[Finder] = None, on_finding: Optional[Callable[[Finding], None]] = None,
                 policy: Optional[Policy] = None) -> None:
        self._engine: Engine = engine()
        # Without a finder named, small input is scanned by the pure-Python finder and the default one (Hyperscan)
        # takes over past SMALL_INPUT bytes: `echo x | codex mask` never loads Hyperscan; the output is the same.
        self._adaptive = finder is None and engine_choice() == "auto"
        self._finder = finder if finder is not None else cached_python_finder() if self._adaptive else default_finder()
        self._policy = policy if policy is not None and (policy.rules or policy.allow) else None
        self._allow = self._policy.allow if self._policy else ()
        self._custom = self._policy.rules if self._policy else ()
        self._names = [(r.id, r.family) for r in self._engine.rules] + [(r.id, r.family) for r in self._custom]
        self._replace = [replacement_for(replacement, family, typed) for _, family in self._names]
        self._on_finding = on_finding  # lines are counted only for it
        self._buf = b"\n"  # a virtual newline before the stream: "start of line" for every check
        self._base = -1  # stream offset of _buf[0]
        self._emitted = 0  # stream offset up to which output has been returned
        self._last_end = 0  # stream offset where the last masked secret ended
        self._scanned = -1  # anchors ending at or before this stream offset are in _pending already
        self._pending: dict[int, tuple[int, int]] = {}  # candidate stream offset -> (strictest kind, rule mask)
        self._custom_pending: dict[int, tuple[int, int, int]] = {}  # match offset -> (start, end, rule)
        self._lines_done = 0  # custom rules have run on every line before this stream offset
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
        if self._adaptive and base + len(buf) > SMALL_INPUT:
            self._finder, self._adaptive = default_finder(), False
        self._find_candidates(buf, base)
        if self._custom:
            self._run_custom(buf, base, final)
        view = memoryview(buf)
        pieces: list[memoryview | bytes] = []
        out = self._emitted - base
        hold = self._finder.tail if self._finder.hold is None else self._finder.hold(buf)
        stop = len(buf) if final else max(out, len(buf) - hold)
        if self._custom and not final:
            stop = max(out, min(stop, self._lines_done - base))
        candidates = sorted(self._pending.keys() | self._custom_pending.keys()) if self._custom_pending \
            else sorted(self._pending)
        for c in candidates:
            local = c - base
            if local >= stop:
                break
            if c < self._last_end:
                self._pending.pop(c, None)
                self._custom_pending.pop(c, None)
                continue
            verdict = self._verdict(buf, c, local, final)
            if verdict is None:
                stop = local
                break
            if verdict is False or _allowed(buf, local):
                continue
            rule, start, end = verdict
            pieces.append(view[out:start])
            pieces.append(self._replace[rule])
            self._record(buf, base, rule, start, end)
            out = end
            self._last_end = base + end
        if out < stop:
            pieces.append(view[out:stop])
            out = stop
        self._emitted = base + out
        self._trim()
        return pieces

    def _verdict(self, buf: bytes, c: int, local: int, final: bool) -> "tuple[int, int, int] | bool | None":
        """The secret at stream offset c as (rule, local start, local end), False for none, None if undecided."""
        found: Optional[Verdict] = None
        pending = self._pending.get(c)
        if pending is not None:
            decided = self._decide(buf, local, pending[0], pending[1], final)
            if decided is None:
                return None
            del self._pending[c]
            found = decided or None
        custom = self._custom_pending.get(c)
        if custom is not None:
            if found is None and not final and buf.find(b"\n", local) < 0 and local + ALLOW_REACH > len(buf):
                return None  # the allow marker could still come later on this line
            del self._custom_pending[c]
            if found is None:
                start, end, index = custom
                return len(self._engine.rules) + index, start - self._base, end - self._base
        if found is None:
            return False
        return found.rule, found.start, found.end

    def _find_candidates(self, buf: bytes, base: int) -> None:
        anchors = self._engine.anchors
        pending = self._pending
        for at, index in self._finder.find(buf, self._scanned - base):
            anchor = anchors[index]
            for offset in anchor.offsets:
                c = base + at - offset
                if c >= self._emitted:
                    kind, mask = pending.get(c, (TOKEN, 0))
                    pending[c] = (max(kind, anchor.kind), mask | anchor.rules)
        self._scanned = base + len(buf)

    def _run_custom(self, buf: bytes, base: int, final: bool) -> None:
        """Run the custom rules on every line (or REACH-long piece of a longer line) now complete."""
        pos, n = self._lines_done - base, len(buf)
        while pos < n:
            newline = buf.find(b"\n", pos, pos + REACH)
            if newline >= 0:
                end, after = newline, newline + 1
            elif pos + REACH <= n or final:
                end = after = min(n, pos + REACH)
            else:
                break
            if end > pos and buf[end - 1] == 13:  # a CRLF line ends before its \r
                end -= 1
            for at, start, stop, index in self._policy.matches(buf[pos:end]):
                self._custom_pending.setdefault(base + pos + at, (base + pos + start, base + pos + stop, index))
            pos = after
        self._lines_done = base + pos

    def _decide(self, buf: bytes, c: int, kind: int, mask: int, final: bool) -> "Verdict | bool | None":
        """The verdict at c (False: none), or None while more input could still change the answer."""
        regex, width = self._engine.regex_for(mask)
        n = len(buf)
        match = regex.match(buf, c)
        if not (final or c + width <= n):
            if kind == TOKEN:
                decided = WHITESPACE.search(buf, c) is not None
            elif kind == LINE:
                decided = buf.find(b"\n", c) >= 0
            elif kind == LINES:
                newline = buf.find(b"\n", c)
                decided = newline >= 0 and buf.find(b"\n", newline + 1) >= 0
            else:
                decided = self._engine.block_decided(buf, c, match)
            if not decided:
                return None
        if match is None:
            return False
        if not final and buf.find(b"\n", c) < 0 and c + ALLOW_REACH > n:
            return None  # the allow marker could still come later on this line
        return self._engine.verdict(buf, c, match, mask, self._allow) or False

    def _record(self, buf: bytes, base: int, rule: int, start: int, end: int) -> None:
        self.count += 1
        if self._on_finding is None:
            return
        self._count_lines(buf, base, start)
        rule_id, family = self._names[rule]
        self._on_finding(Finding(rule_id, family, base + start, end - start, self._line,
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


def _allowed(buf: bytes, c: int) -> bool:
    """Whether the line of position c (within ALLOW_REACH either side) carries the allow marker."""
    lo = max(0, c - ALLOW_REACH)
    line_start = buf.rfind(b"\n", lo, c) + 1 or lo
    line_end = buf.find(b"\n", c, c + ALLOW_REACH)
    if line_end < 0:
        line_end = c + ALLOW_REACH
    return buf.find(ALLOW_MARKER, line_start, line_end) >= 0
