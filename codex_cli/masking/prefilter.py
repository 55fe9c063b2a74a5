"""Find every occurrence of every rule anchor: Hyperscan when installed, else ``bytes.find``.

Both return a superset of the positions where a rule can match (every anchor occurrence, or only
those that Hyperscan's stricter prefilter patterns allow), so the masked output never depends on
which one ran; ``tests/test_masking_engines.py`` checks that. Hyperscan
(x86-64 only) makes ``codex mask`` several times faster; set ``CODEX_MASK_ENGINE=python`` to use
the pure-Python finder, or ``hyperscan`` to require the fast one.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Callable, Optional

from codex_cli.errors import UsageError
from codex_cli.masking.rules import ANCHORS, HS_PATTERNS

ENGINE_ENV = "CODEX_MASK_ENGINE"
# A finder maps (buffer, min_end) to (anchor start, index in ANCHORS) pairs, in no particular order:
# one for every rule match that may end after min_end (a superset of them; duplicates allowed).
Finder = Callable[[bytes, int], list[tuple[int, int]]]
_LOOKBACK = 64  # longer than any anchor or prefilter match


def python_finder() -> Finder:
    """The pure-Python finder: one pass per first byte of the anchors (``bytes.find`` or ``re``)."""
    passes = [_pass(caseless, group) for (caseless, _), group in _by_first_byte().items()]

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        lowered = buf.lower()
        for caseless, lookup, literal, regex in passes:
            hay = lowered if caseless else buf
            start = max(0, min_end - len(literal) + 1)
            if regex is not None:  # anchors sharing a first byte: one regex pass instead of several finds
                found.extend((m.start(), lookup[m.group()]) for m in regex.finditer(hay, max(0, min_end - _LOOKBACK))
                             if m.end() > min_end)
                continue
            at = hay.find(literal, start)
            while at >= 0:
                found.append((at, lookup[literal]))
                at = hay.find(literal, at + 1)
        return found

    return find


def _by_first_byte() -> dict[tuple[bool, bytes], list[tuple[int, bytes]]]:
    groups: dict[tuple[bool, bytes], list[tuple[int, bytes]]] = {}
    for i, a in enumerate(ANCHORS):
        literal = a.literal.lower() if a.caseless else a.literal
        groups.setdefault((a.caseless, literal[:1]), []).append((i, literal))
    return groups


def _pass(caseless: bool, group: list[tuple[int, bytes]]
          ) -> tuple[bool, dict[bytes, int], bytes, Optional[re.Pattern[bytes]]]:
    # finditer skips an occurrence overlapping the previous one; harmless, since every rule behind
    # a grouped anchor requires a non-alphanumeric byte right before it (the property tests check).
    lookup = {literal: i for i, literal in group}
    if len(group) == 1:
        return caseless, lookup, group[0][1], None
    literals = sorted(lookup, key=len, reverse=True)
    return caseless, lookup, b"", re.compile(b"|".join(re.escape(x) for x in literals))


def hyperscan_finder() -> Optional[Finder]:
    """A Hyperscan finder over the stricter prefilter patterns, or None without ``hyperscan``."""
    try:
        import hyperscan
    except ImportError:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=[p.regex for p in HS_PATTERNS],
        ids=list(range(len(HS_PATTERNS))),
        elements=len(HS_PATTERNS),
        flags=[(hyperscan.HS_FLAG_SOM_LEFTMOST if p.som else 0) | (hyperscan.HS_FLAG_CASELESS if p.caseless else 0)
               for p in HS_PATTERNS],
    )
    local = threading.local()  # Hyperscan scratch space must not be shared between threads
    index = {a.literal: i for i, a in enumerate(ANCHORS)}
    table = [(index[p.anchor], p.back, p.som) for p in HS_PATTERNS]

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        base = max(0, min_end - _LOOKBACK)

        def on_match(pattern: int, start: int, end: int, _flags: int, _context: object) -> None:
            if base + end > min_end:
                anchor, back, som = table[pattern]
                found.append((base + (start + back if som else end - back), anchor))

        if len(buf) > base:
            if not hasattr(local, "scratch"):
                local.scratch = hyperscan.Scratch(database)
            database.scan(memoryview(buf)[base:] if base else buf, match_event_handler=on_match, scratch=local.scratch)
        return found

    return find


_FINDERS: dict[str, tuple[str, Finder]] = {}


def hyperscan_expected() -> bool:
    """Whether codex-cli installs hyperscan on this platform (see pyproject.toml's marker)."""
    return sys.platform == "linux" and os.uname().machine == "x86_64"


def default_finder() -> tuple[str, Finder]:
    """The finder ``$CODEX_MASK_ENGINE`` selects (auto: Hyperscan if installed), with its name."""
    choice = os.environ.get(ENGINE_ENV, "auto").strip().lower() or "auto"
    if choice in _FINDERS:
        return _FINDERS[choice]
    if choice not in ("auto", "hyperscan", "python"):
        raise UsageError(f"{ENGINE_ENV} must be auto, hyperscan or python, got {choice!r}")
    fast = hyperscan_finder() if choice != "python" else None
    if choice == "hyperscan" and fast is None:
        raise UsageError(f"{ENGINE_ENV}=hyperscan but the hyperscan package is not installed; pip install hyperscan")
    if fast is None and choice == "auto" and hyperscan_expected():
        import logging  # only on this rare path: start-up of `codex mask` matters

        logging.getLogger("codex.masking").warning(
            "codex: note: hyperscan is not importable here, so masking uses the pure-Python engine "
            "(same output, several times slower); reinstall codex-cli to get it back")
    _FINDERS[choice] = ("hyperscan", fast) if fast is not None else ("python", python_finder())
    return _FINDERS[choice]
