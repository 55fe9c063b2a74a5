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
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from codex_cli.errors import UsageError
from codex_cli.masking.engine import Engine, anchor_key, engine
from codex_cli.masking.rules.base import HsPattern, max_width

ENGINE_ENV = "CODEX_MASK_ENGINE"


class Finder(NamedTuple):
    """Maps (buffer, min_end) to (anchor start, anchor index) pairs, in no particular order: one for every
    rule match that may end after min_end (a superset of them; duplicates allowed). ``tail`` is how many
    bytes at a stream's end may still become part of an anchor (or prefilter match) once more arrives."""

    name: str
    find: Callable[[bytes, int], list[tuple[int, int]]]
    tail: int
    # How many bytes at the end of this buffer may still become part of a secret (at most ``tail``), where the
    # finder can tell from the bytes themselves; None: always ``tail``.
    hold: Optional[Callable[[bytes], int]] = None


def python_finder(eng: Optional[Engine] = None) -> Finder:
    """The pure-Python finder: one pass per first byte of the anchors (``bytes.find``, or one ``re`` pass
    that reports every anchor at every position, overlapping ones included)."""
    eng = eng or engine()
    passes = [(caseless, first, group, _Pass(group)) for (caseless, first), group in _by_first_byte(eng).items()]
    probes = [(i, len(a.literal), _Probe(a.probe)) for i, a in enumerate(eng.anchors) if a.probe]
    lookback = max(len(a.literal) + (max_width(a.probe.decode("latin-1")) if a.probe else 0) for a in eng.anchors)
    any_caseless = any(a.caseless for a in eng.anchors)

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        lowered = buf.lower() if any_caseless else buf
        for caseless, first, group, lazy in passes:
            hay = lowered if caseless else buf
            if len(group) > 1:  # anchors sharing a first byte: one regex pass instead of several finds
                start = max(0, min_end - lookback)
                if hay.find(first, start) < 0:
                    continue  # (its regex is compiled only once the byte shows up)
                regex = lazy.regex()
                m = regex.search(hay, start)
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
        for index, size, probe in probes:  # (each match ends with its anchor; matches cannot overlap one)
            found.extend((m.end() - size, index) for m in probe.regex().finditer(buf, max(0, min_end - lookback))
                         if m.end() > min_end)
        return found

    # A secret starts at most max(offsets) before its anchor, and an anchor not yet complete at the end
    # starts at most len(literal) - 1 before it (a probe's match ends at its anchor: it adds nothing here).
    tail = max(len(a.literal) + max(a.offsets) for a in eng.anchors) - 1
    return Finder("python", find, tail, _holder(eng))


_SPACE = frozenset(b" \t\r\n\f\v")


def _holder(eng: Engine) -> Callable[[bytes], int]:
    """How much of a buffer's end a stream must hold back, read from the bytes: an anchor's beginning at the very
    end (``…hf_``), with up to max(offsets) bytes before it; and, for an anchor yet to come, up to max(offsets)
    bytes, no further back than the last whitespace, since every rule's bytes before its anchor are one run of
    non-space bytes (Mailchimp's 32 hex digits before ``-us``, a Discord bot token's first 26 characters, the
    ``https://`` before ``hooks.slack.com``). Streamed text that ends in a space or a short word is released
    almost whole, where a fixed tail would hold back its last 43 bytes."""
    before = max(max(a.offsets) for a in eng.anchors)
    partial: dict[bytes, int] = {}  # a proper prefix of an anchor (lower-cased for a caseless one) -> its offset
    for a in eng.anchors:
        literal = a.literal.lower() if a.caseless else a.literal
        for j in range(1, len(literal)):
            key = (literal[:j], a.caseless)
            partial[key] = max(partial.get(key, 0), max(a.offsets))
    longest = max(len(a.literal) for a in eng.anchors) - 1

    def hold(buf: bytes) -> int:
        n = len(buf)

        def run_before(end: int, most: int) -> int:  # non-space bytes just before ``end``, at most ``most``
            k = 0
            while k < most and end - k > 0 and buf[end - 1 - k] not in _SPACE:
                k += 1
            return k

        need = run_before(n, before)  # an anchor after the end: its earlier bytes can only be in the last run
        end = buf[max(0, n - longest):]
        lowered = end.lower()
        for j in range(min(longest, n), 0, -1):  # an anchor begun at n - j
            for piece, caseless in ((end[-j:], False), (lowered[-j:], True)):
                offset = partial.get((piece, caseless))
                if offset is not None:
                    need = max(need, j + run_before(n - j, offset))
        return need

    return hold


def _by_first_byte(eng: Engine) -> dict[tuple[bool, bytes], list[tuple[int, bytes]]]:
    groups: dict[tuple[bool, bytes], list[tuple[int, bytes]]] = {}
    for i, a in enumerate(eng.anchors):
        if not a.probe:
            groups.setdefault((a.caseless, a.literal[:1]), []).append((i, a.literal))
    return groups


class _Probe:
    """An anchor's probe regex, compiled on first use."""

    def __init__(self, source: bytes) -> None:
        self._source, self._regex = source, None

    def regex(self) -> "re.Pattern[bytes]":
        if self._regex is None:
            self._regex = re.compile(self._source)
        return self._regex


class _Pass:
    """The regex that finds any of several anchors with one first byte, compiled on first need."""

    def __init__(self, group: list[tuple[int, bytes]]) -> None:
        self._literals = sorted({literal for _, literal in group}, key=len, reverse=True)
        self._regex: Optional[re.Pattern[bytes]] = None

    def regex(self) -> "re.Pattern[bytes]":
        if self._regex is None:
            self._regex = re.compile(b"|".join(re.escape(x) for x in self._literals))
        return self._regex


def hs_patterns(eng: Engine) -> list[tuple[HsPattern, tuple[int, ...]]]:
    """Every distinct Hyperscan prefilter regex with the indices of the anchors it locates (a bare literal
    where a rule gives none); one regex shared by several rules' anchors is compiled once."""
    out: list[tuple[HsPattern, int]] = []
    for rule in eng.rules:
        given = {p.anchor for p in rule.hs}
        for a in rule.anchors:
            if a.literal not in given:
                assert not a.probe, f"rule {rule.id}: an anchor with a probe needs a Hyperscan pattern"
                out.append((HsPattern(re.escape(a.literal), a.literal, len(a.literal), caseless=a.caseless),
                            eng.anchor_index[anchor_key(a.literal, a.caseless, a.probe)]))
        for p in rule.hs:
            out.append((p, eng.anchor_index[anchor_key(p.anchor, p.caseless, p.probe)]))
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
    database, reaches = _database(hyperscan, patterns)
    local = threading.local()  # Hyperscan scratch space must not be shared between threads
    table = [(p.back, p.expand, p.caseless, reach, [(i, eng.anchors[i].literal) for i in indices])
             for (p, indices), reach in zip(patterns, reaches)]
    lookback = max(reaches) + 1
    longest = [max(len(eng.anchors[i].literal) for i in indices) for _, indices in patterns]
    offsets = [max(max(eng.anchors[i].offsets) for i in indices) for _, indices in patterns]

    def find(buf: bytes, min_end: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        base = max(0, min_end - lookback)
        # Per pattern, where its last window ended: Hyperscan reports matches in the order of their ends, so a
        # window only needs searching past the last one (less a literal's length), not again from its start.
        searched: dict[int, int] = {}

        def on_match(pattern: int, _start: int, end: int, _flags: int, _context: object) -> None:
            end += base
            if end <= min_end:
                return
            back, expand, caseless, reach, anchors = table[pattern]
            if not expand:
                found.extend((end - back, anchor) for anchor, _ in anchors)
                return
            # the anchor is somewhere in the regex's longest width before the end
            lo = max(0, end - reach, searched.get(pattern, 0) - longest[pattern] + 1)
            searched[pattern] = end
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


_BOUNDED = re.compile(rb"\{([0-9]+),([0-9]+)\}")


def hs_expression(p: HsPattern) -> bytes:
    """What Hyperscan compiles for ``p``: with ``unbounded`` (an ``expand`` pattern only), its long bounded repeats
    made unbounded (``{0,48}`` -> ``*``). Every match of the original is still a match with the same end, so the
    prefilter stays a superset; the anchor is still looked for only within the original's longest width before the
    end (``_reach``). Whether it pays was measured per pattern (instructions per byte under callgrind): for the
    name-keyed patterns it cuts the whole scan's by 12%; for Discord's it adds as much."""
    if not (p.expand and p.unbounded):
        return p.regex
    return _BOUNDED.sub(lambda m: m.group(0) if int(m.group(2)) < 8 else b"{%s,}" % m.group(1), p.regex)


def _database(hyperscan, patterns: list[tuple[HsPattern, int]]) -> tuple[object, list[int]]:
    """The compiled database and each pattern's reach, loaded from the cache when this rule set and hyperscan
    version built them before (parsing the patterns for their reach costs as much as loading the database)."""
    import json  # only once Hyperscan is in use: `echo x | codex mask` never gets here

    expressions = [hs_expression(p) for p, _ in patterns]
    flags = [hyperscan.HS_FLAG_CASELESS if p.caseless else 0 for p, _ in patterns]
    # (what the reaches come from as well as what is compiled: a pattern's reach depends on back and expand)
    key = hashlib.sha256(repr(([(p.regex, p.back, p.expand) for p, _ in patterns], expressions, flags,
                               getattr(hyperscan, "__version__", ""), sys.version_info[:2])).encode()).hexdigest()[:32]
    path = _cache_dir() / f"hyperscan-{key}.db"
    reaches_path = path.with_suffix(".json")
    try:
        reaches = json.loads(reaches_path.read_text())
        if not (isinstance(reaches, list) and len(reaches) == len(patterns) and all(type(r) is int for r in reaches)):
            raise ValueError("not this rule set's reaches")
        return hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK), reaches
    except (OSError, ValueError, hyperscan.error):
        pass  # not cached yet (or from another CPU, or damaged): compile it and cache it below
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions),
                     flags=flags)
    reaches = [_reach(p) for p, _ in patterns]
    _write_atomically(path, hyperscan.dumpb(database))
    _write_atomically(reaches_path, json.dumps(reaches).encode())
    return database, reaches


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


def engine_choice() -> str:
    """``$CODEX_MASK_ENGINE``: auto (default), hyperscan or python; anything else is a usage error."""
    choice = os.environ.get(ENGINE_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "hyperscan", "python"):
        raise UsageError(f"{ENGINE_ENV} must be auto, hyperscan or python, got {choice!r}")
    return choice


def default_finder() -> Finder:
    """The finder ``$CODEX_MASK_ENGINE`` selects (auto: Hyperscan if installed)."""
    choice = engine_choice()
    if choice in _FINDERS:
        return _FINDERS[choice]
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


def cached_python_finder() -> Finder:
    """The pure-Python finder, built once: for text streamed piece by piece (a server's output), which it holds
    back only a few bytes of (Hyperscan's longer prefilter patterns would hold back more), and for small inputs,
    which it scans without loading Hyperscan. The output is the same either way."""
    if "python-cached" not in _FINDERS:
        _FINDERS["python-cached"] = python_finder()
    return _FINDERS["python-cached"]
