"""Find every occurrence of every rule anchor: Hyperscan when installed, else ``bytes.find``.

Both return a superset of the positions where a rule can match (every anchor occurrence, or only
those that Hyperscan's stricter prefilter patterns allow), so the masked output never depends on
which one ran; ``tests/test_masking_engines.py`` checks that. Hyperscan (x86-64 only) makes
``codex mask`` several times faster; its compiled database is cached (keyed by the patterns and
the hyperscan version) so start-up does not pay for compiling it. Set ``CODEX_MASK_ENGINE=python``
to use the pure-Python finder, or ``hyperscan`` to require the fast one.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from codex_cli.errors import UsageError
from codex_cli.masking.engine import Engine, engine
from codex_cli.masking.rules.base import HsPattern, max_width

ENGINE_ENV = "CODEX_MASK_ENGINE"


@dataclass(frozen=True)
class Finder:
    """Maps (buffer, min_end) to (anchor start, anchor index) pairs, in no particular order: one for every
    rule match that may end after min_end (a superset of them; duplicates allowed). ``tail`` is how many
    bytes at a stream's end may still become part of an anchor (or prefilter match) once more arrives."""

    name: str
    find: Callable[[bytes, int], list[tuple[int, int]]]
    tail: int


def python_finder(eng: Optional[Engine] = None) -> Finder:
    """The pure-Python finder: one pass per first byte of the anchors (``bytes.find``, or one ``re`` pass
    that reports every anchor at every position, overlapping ones included)."""
    eng = eng or engine()
    passes = [_pass(caseless, group) for (caseless, _), group in _by_first_byte(eng).items()]
    lookback = max(len(a.literal) for a in eng.anchors)
    any_caseless = any(a.caseless for a in eng.anchors)

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        lowered = buf.lower() if any_caseless else buf
        for caseless, group, regex in passes:
            hay = lowered if caseless else buf
            if regex is not None:  # anchors sharing a first byte: one regex pass instead of several finds
                m = regex.search(hay, max(0, min_end - lookback))
                while m is not None:
                    at = m.start()
                    found.extend((at, i) for i, literal in group
                                 if at + len(literal) > min_end and hay.startswith(literal, at))
                    m = regex.search(hay, at + 1)  # one byte on: overlapping anchors are all seen
                continue
            ((index, literal),) = group
            at = hay.find(literal, max(0, min_end - len(literal) + 1))
            while at >= 0:
                found.append((at, index))
                at = hay.find(literal, at + 1)
        return found

    tail = max(len(a.literal) + max(a.offsets) for a in eng.anchors) - 1
    return Finder("python", find, tail)


def _by_first_byte(eng: Engine) -> dict[tuple[bool, bytes], list[tuple[int, bytes]]]:
    groups: dict[tuple[bool, bytes], list[tuple[int, bytes]]] = {}
    for i, a in enumerate(eng.anchors):
        groups.setdefault((a.caseless, a.literal[:1]), []).append((i, a.literal))
    return groups


def _pass(caseless: bool, group: list[tuple[int, bytes]]
          ) -> tuple[bool, list[tuple[int, bytes]], Optional[re.Pattern[bytes]]]:
    if len(group) == 1:
        return caseless, group, None
    literals = sorted({literal for _, literal in group}, key=len, reverse=True)
    return caseless, group, re.compile(b"|".join(re.escape(x) for x in literals))


def hs_patterns(eng: Engine) -> list[tuple[HsPattern, tuple[int, ...]]]:
    """Every distinct Hyperscan prefilter regex with the indices of the anchors it locates (a bare literal
    where a rule gives none); one regex shared by several rules' anchors is compiled once."""
    out: list[tuple[HsPattern, int]] = []
    for rule in eng.rules:
        given = {p.anchor for p in rule.hs}
        for a in rule.anchors:
            if a.literal not in given:
                out.append((HsPattern(re.escape(a.literal), a.literal, len(a.literal), caseless=a.caseless),
                            eng.anchor_index[(a.literal.lower() if a.caseless else a.literal, a.caseless)]))
        for p in rule.hs:
            key = (p.anchor.lower() if p.caseless else p.anchor, p.caseless)
            out.append((p, eng.anchor_index[key]))
    grouped: dict[tuple[bytes, bool, int, bool], tuple[HsPattern, list[int]]] = {}
    for p, index in out:
        entry = grouped.setdefault((p.regex, p.caseless, p.back, p.expand), (p, []))
        if index not in entry[1]:
            entry[1].append(index)
    return [(p, tuple(indices)) for p, indices in grouped.values()]


def _reach(p: HsPattern) -> int:
    return max_width(p.regex.decode("latin-1")) if p.expand else p.back


def hyperscan_finder(eng: Optional[Engine] = None) -> Optional[Finder]:
    """A Hyperscan finder over the stricter prefilter patterns, or None without ``hyperscan``."""
    try:
        import hyperscan
    except ImportError:
        return None
    eng = eng or engine()
    patterns = hs_patterns(eng)
    database = _database(hyperscan, patterns)
    local = threading.local()  # Hyperscan scratch space must not be shared between threads
    reaches = [_reach(p) for p, _ in patterns]
    table = [(p.back, p.expand, p.caseless, reach, [(i, eng.anchors[i].literal) for i in indices])
             for (p, indices), reach in zip(patterns, reaches)]
    lookback = max(reaches) + 1
    offsets = [max(max(eng.anchors[i].offsets) for i in indices) for _, indices in patterns]

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        base = max(0, min_end - lookback)

        def on_match(pattern: int, _start: int, end: int, _flags: int, _context: object) -> None:
            end += base
            if end <= min_end:
                return
            back, expand, caseless, reach, anchors = table[pattern]
            if not expand:
                found.extend((end - back, anchor) for anchor, _ in anchors)
                return
            lo = max(0, end - reach)  # the anchor is somewhere in the regex's longest width before the end
            region = buf[lo:end].lower() if caseless else buf[lo:end]
            for anchor, literal in anchors:
                at = region.find(literal)
                while at >= 0:
                    found.append((lo + at, anchor))
                    at = region.find(literal, at + 1)

        if len(buf) > base:
            if not hasattr(local, "scratch"):
                local.scratch = hyperscan.Scratch(database)
            database.scan(memoryview(buf)[base:] if base else buf, match_event_handler=on_match, scratch=local.scratch)
        return found

    tail = max(r + o for r, o in zip(reaches, offsets)) - 1
    return Finder("hyperscan", find, tail)


def _database(hyperscan, patterns: list[tuple[HsPattern, int]]):
    """The compiled database, loaded from the cache when this rule set and hyperscan version built it before."""
    expressions = [p.regex for p, _ in patterns]
    flags = [hyperscan.HS_FLAG_CASELESS if p.caseless else 0 for p, _ in patterns]
    key = hashlib.sha256(repr((expressions, flags, getattr(hyperscan, "__version__", ""), sys.version_info[:2]))
                         .encode()).hexdigest()[:32]
    path = _cache_dir() / f"hyperscan-{key}.db"
    try:
        return hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
    except (OSError, hyperscan.error):
        pass  # not cached yet (or from another CPU): compile it and cache it below
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions),
                     flags=flags)
    _write_atomically(path, hyperscan.dumpb(database))
    return database


def _cache_dir() -> Path:
    root = os.environ.get("CODEX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "codex")
    return Path(root) / "mask"


def _write_atomically(path: Path, data: bytes) -> None:
    """Best effort: a cache that cannot be written only costs the next start-up a compile."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        return


_FINDERS: dict[str, Finder] = {}


def hyperscan_expected() -> bool:
    """Whether codex-cli installs hyperscan on this platform (see pyproject.toml's marker)."""
    return sys.platform == "linux" and os.uname().machine == "x86_64"


def default_finder() -> Finder:
    """The finder ``$CODEX_MASK_ENGINE`` selects (auto: Hyperscan if installed)."""
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
    _FINDERS[choice] = fast if fast is not None else python_finder()
    return _FINDERS[choice]


def stream_finder() -> Finder:
    """The finder for text streamed piece by piece (a server's output): the pure-Python one, which holds back
    only a few bytes at the end (Hyperscan's longer prefilter patterns would hold back more); same output."""
    if "stream" not in _FINDERS:
        _FINDERS["stream"] = python_finder()
    return _FINDERS["stream"]
