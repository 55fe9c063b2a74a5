"""Find every occurrence of every rule anchor: Hyperscan when installed, else ``bytes.find``.

Both finders return the same complete list (overlapping occurrences included), so the masked
output never depends on which one ran; ``tests/test_masking_engines.py`` checks that. Hyperscan
(x86-64 only) makes ``codex mask`` several times faster; set ``CODEX_MASK_ENGINE=python`` to use
the pure-Python finder, or ``hyperscan`` to require the fast one.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Callable, Optional

from codex_cli.errors import UsageError
from codex_cli.masking.rules import ANCHORS, Anchor

ENGINE_ENV = "CODEX_MASK_ENGINE"
# A finder maps (buffer, start, min_end) to the (position, anchor index) of every anchor occurrence
# lying in buffer[start:] whose end is beyond min_end, in no particular order.
Finder = Callable[[bytes, int, int], list[tuple[int, int]]]


def python_finder(anchors: tuple[Anchor, ...] = ANCHORS) -> Finder:
    """The pure-Python finder: one ``bytes.find`` loop per anchor (on a lowered copy if caseless)."""
    plain = [(i, a.literal) for i, a in enumerate(anchors) if not a.caseless]
    caseless = [(i, a.literal.lower()) for i, a in enumerate(anchors) if a.caseless]

    def find(buf: bytes, start: int, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for groups, hay in ((plain, buf), (caseless, buf.lower() if caseless else buf)):
            for index, literal in groups:
                first = max(start, min_end - len(literal) + 1)
                at = hay.find(literal, first)
                while at >= 0:
                    found.append((at, index))
                    at = hay.find(literal, at + 1)
        return found

    return find


def hyperscan_finder(anchors: tuple[Anchor, ...] = ANCHORS) -> Optional[Finder]:
    """A Hyperscan literal finder, or None when the ``hyperscan`` package cannot be imported."""
    try:
        import hyperscan
    except ImportError:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=[re.escape(a.literal) for a in anchors],
        ids=list(range(len(anchors))),
        elements=len(anchors),
        flags=[hyperscan.HS_FLAG_CASELESS if a.caseless else 0 for a in anchors],
    )
    local = threading.local()  # Hyperscan scratch space must not be shared between threads
    lengths = [len(a.literal) for a in anchors]

    def find(buf: bytes, start: int, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        base = start

        def on_match(index: int, _from: int, to: int, _flags: int, _context: object) -> None:
            if base + to > min_end:
                found.append((base + to - lengths[index], index))

        data = buf if start == 0 else buf[start:]
        if data:
            if not hasattr(local, "scratch"):
                local.scratch = hyperscan.Scratch(database)
            database.scan(data, match_event_handler=on_match, scratch=local.scratch)
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
