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
import threading
from typing import Callable, Optional

from codex_cli.errors import UsageError
from codex_cli.masking.rules import ANCHORS, HS_PATTERNS, Anchor, HsPattern

ENGINE_ENV = "CODEX_MASK_ENGINE"
# A finder maps (buffer, min_end) to (anchor start, anchor index) pairs, in no particular order:
# one for every rule match that may end after min_end (a superset of them; duplicates allowed).
Finder = Callable[[bytes, int], list[tuple[int, int]]]
_LOOKBACK = 64  # longer than any anchor or prefilter match


def python_finder(anchors: tuple[Anchor, ...] = ANCHORS) -> Finder:
    """The pure-Python finder: one ``bytes.find`` loop per anchor (on a lowered copy if caseless)."""
    plain = [(i, a.literal) for i, a in enumerate(anchors) if not a.caseless]
    caseless = [(i, a.literal.lower()) for i, a in enumerate(anchors) if a.caseless]

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        lowered = buf.lower() if caseless else buf
        for groups, hay in ((plain, buf), (caseless, lowered)):
            for index, literal in groups:
                at = hay.find(literal, max(0, min_end - len(literal) + 1))
                while at >= 0:
                    found.append((at, index))
                    at = hay.find(literal, at + 1)
        return found

    return find


def hyperscan_finder(patterns: tuple[HsPattern, ...] = HS_PATTERNS) -> Optional[Finder]:
    """A Hyperscan finder over the stricter prefilter patterns, or None without ``hyperscan``."""
    try:
        import hyperscan
    except ImportError:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=[p.regex for p in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[(hyperscan.HS_FLAG_SOM_LEFTMOST if p.som else 0) | (hyperscan.HS_FLAG_CASELESS if p.caseless else 0)
               for p in patterns],
    )
    local = threading.local()  # Hyperscan scratch space must not be shared between threads
    index = {a.literal: i for i, a in enumerate(ANCHORS)}
    table = [(index[p.anchor], p.back, p.som) for p in patterns]

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
    _FINDERS[choice] = ("hyperscan", fast) if fast is not None else ("python", python_finder())
    return _FINDERS[choice]
