"""Seeded random strings that match a Go regex, as gitleaks' ``secrets.NewSecret`` (reggen) makes them.

The sampler walks Python's parse of the converted pattern (``re._parser``, private but stable within a
Python version) with reggen's ``Generate(1)`` repeat counts: a repeat ``{n,m}`` with ``n >= 1`` gives ``n``
copies; ``?``, ``*`` and ``{0,m}`` give zero or one. ``.``, negated classes and the like draw from reggen's
printable alphabet. Lookarounds and anchors emit nothing, so a caller checks the result with ``fullmatch``.
"""

from __future__ import annotations

import random
import re
import string
import sys
import warnings

from peers.golang.errors import GoError
from peers.golang.regex import go_regex_to_py

if sys.version_info >= (3, 11):  # the regex parser the sampler walks (private, stable within a version)
    import re._constants as _sre_constants
    import re._parser as _sre_parse
else:
    import sre_constants as _sre_constants
    import sre_parse as _sre_parse

# reggen's alphabet for '.', negated classes and the like.
_PRINTABLE = string.digits + string.ascii_letters + string.punctuation + " \t\n\r"
_PRINTABLE_NO_NL = _PRINTABLE[:-2]
_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_WORD": string.ascii_letters + string.digits + "_",
    "CATEGORY_SPACE": " \t\n\r\f\v",
}


class RegexSampler:
    """Seeded random strings that match a Go regex, with reggen's ``Generate(1)`` repeat counts."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._parse = _sre_parse.parse
        self._c = _sre_constants

    def sample(self, go_pattern: str) -> str:
        py = go_regex_to_py(go_pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = self._parse(py, re.ASCII)
            except re.error as e:
                raise GoError(f"regex does not parse in Python ({e}): {go_pattern!r}") from None
        return self._gen(list(parsed), parsed.state.flags, {})

    def _gen(self, items: list, flags: int, groups: dict) -> str:
        c = self._c
        out = []
        for op, av in items:
            if op is c.LITERAL:
                out.append(chr(av))
            elif op is c.NOT_LITERAL:
                out.append(self.rng.choice([ch for ch in _PRINTABLE_NO_NL if ord(ch) != av]))
            elif op is c.ANY:
                out.append(self.rng.choice(_PRINTABLE if flags & c.SRE_FLAG_DOTALL else _PRINTABLE_NO_NL))
            elif op is c.IN:
                out.append(self._gen_class(av))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                lo, hi, sub = av
                count = self.rng.randrange(2) if lo == 0 and hi >= 1 else lo
                out.extend(self._gen(list(sub), flags, groups) for _ in range(count))
            elif op is c.SUBPATTERN:
                gid, add, remove, sub = av
                text = self._gen(list(sub), (flags | add) & ~remove, groups)
                if gid:
                    groups[gid] = text
                out.append(text)
            elif op is c.BRANCH:
                out.append(self._gen(list(self.rng.choice(av[1])), flags, groups))
            elif op is c.GROUPREF:
                out.append(groups.get(av, ""))
            elif op not in (c.AT, c.ASSERT, c.ASSERT_NOT):
                raise GoError(f"regex construct {op} not supported by the sampler")
        return "".join(out)

    def _gen_class(self, items: list) -> str:
        c = self._c
        chars: set[str] = set()
        negate = False
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                chars.add(chr(av))
            elif op is c.RANGE:
                chars.update(chr(x) for x in range(av[0], av[1] + 1))
            elif op is c.CATEGORY:
                name = str(av)
                base = _CATEGORY_CHARS[name.replace("NOT_", "")]
                chars.update(base if "NOT_" not in name else (ch for ch in _PRINTABLE if ch not in base))
            else:
                raise GoError(f"class item {op} not supported by the sampler")
        pool = [ch for ch in _PRINTABLE if ch not in chars] if negate else sorted(chars)
        if not pool:
            raise GoError("empty character class")
        return self.rng.choice(pool)
