"""Seeded random strings that match a regex: test tokens for every rule, built from its own pattern.

Walks Python's parsed form of the pattern (literals, classes, repeats, groups, alternations);
lookarounds are skipped, so a sample may still need a rule's lookahead (a digit, an upper-case
letter) to hold: ``sample`` retries until ``re.fullmatch`` agrees.
"""

from __future__ import annotations

import random
import re
import sys

if sys.version_info >= (3, 11):
    from re import _constants as C
    from re import _parser as P
else:  # pragma: no cover
    import sre_constants as C
    import sre_parse as P

_ANY = [chr(c) for c in range(33, 127)]
_CATEGORIES = {
    C.CATEGORY_DIGIT: "0123456789", C.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    C.CATEGORY_SPACE: " ", C.CATEGORY_NOT_SPACE: "".join(_ANY),
}


def _class(items, rng: random.Random) -> str:
    negate = any(op is C.NEGATE for op, _ in items)
    chars: list[str] = []
    for op, av in items:
        if op is C.LITERAL:
            chars.append(chr(av))
        elif op is C.RANGE:
            chars.extend(chr(c) for c in range(av[0], av[1] + 1))
        elif op is C.CATEGORY:
            chars.extend(_CATEGORIES.get(av, ""))
    if negate:
        chars = [c for c in _ANY if c not in chars and c not in "\"'`\\"]
    return rng.choice(chars)


def _emit(tree, rng: random.Random, cap: int) -> str:
    out: list[str] = []
    for op, av in tree:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.NOT_LITERAL:
            out.append(rng.choice([c for c in _ANY if ord(c) != av]))
        elif op is C.ANY:
            out.append(rng.choice(_ANY))
        elif op is C.IN:
            out.append(_class(av, rng))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            hi = lo + min(cap, (hi if hi != C.MAXREPEAT else lo + cap) - lo)
            out.extend(_emit(sub, rng, cap) for _ in range(rng.randint(lo, hi)))
        elif op is C.SUBPATTERN:
            out.append(_emit(av[-1], rng, cap))
        elif op is C.BRANCH:
            out.append(_emit(rng.choice(av[1]), rng, cap))
        elif op is C.CATEGORY:
            out.append(rng.choice(_CATEGORIES.get(av, "x")))
    return "".join(out)


def sample(pattern: str, rng: random.Random, cap: int = 8, tries: int = 200) -> str:
    """A string that fully matches ``pattern`` (repeats beyond their minimum grow by at most ``cap``)."""
    tree = P.parse(pattern)
    compiled = re.compile(pattern)
    for _ in range(tries):
        text = _emit(tree, rng, cap)
        if compiled.fullmatch(text):
            return text
    raise ValueError(f"no sample found for {pattern!r}")
