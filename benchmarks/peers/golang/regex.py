"""Go (RE2) regular expressions read with Python's ``re``: the rewrite and the compile.

Go's flag groups, ``\\z``, named groups and POSIX classes are rewritten to their Python spellings; what has
no Python equivalent (Unicode classes, ``(?U)``) raises :class:`GoError` rather than change meaning.
"""

from __future__ import annotations

import re
import warnings

from peers.golang.errors import GoError

_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z", "space": r"\s",
    "xdigit": "0-9a-fA-F", "word": r"\w", "punct": r"!-/:-@\[-`{-~", "blank": r" \t", "cntrl": r"\x00-\x1f\x7f",
    "print": r" -~", "graph": r"!-~", "ascii": r"\x00-\x7f",
}


def _class_end(pat: str, i: int) -> int:
    """Index just past the character class that starts at ``pat[i] == '['``."""
    j = i + 1
    if j < len(pat) and pat[j] == "^":
        j += 1
    if j < len(pat) and pat[j] == "]":
        j += 1
    while j < len(pat):
        if pat[j] == "\\":
            j += 2
        elif pat.startswith("[:", j) and ":]" in pat[j + 2:]:
            j = pat.index(":]", j + 2) + 2
        elif pat[j] == "]":
            return j + 1
        else:
            j += 1
    raise GoError(f"unterminated character class in {pat!r}")


def _convert_class(cls: str) -> str:
    def posix(m: re.Match) -> str:
        name = m.group(2)
        if name not in _POSIX_CLASSES or m.group(1):
            raise GoError(f"POSIX class [:{m.group(1)}{name}:] not supported")
        return _POSIX_CLASSES[name]

    if re.search(r"\\[pP]", cls):
        raise GoError(f"Unicode class in {cls!r} not supported")
    return re.sub(r"\[:(\^?)(\w+):\]", posix, cls)


class _FlagFrame:
    """Flags set by ``(?i)``-style groups inside one Go group; they last until the group closes."""

    def __init__(self) -> None:
        self.on: set[str] = set()
        self.off: set[str] = set()
        self.open = 0

    def apply(self, spec: str) -> None:
        on, _, off = spec.partition("-")
        if "U" in spec:
            raise GoError("the (?U) flag has no Python equivalent")
        self.on = (self.on - set(off)) | set(on)
        self.off = (self.off - set(on)) | set(off)

    def opener(self) -> str:
        if not self.on and not self.off:
            return ""
        self.open += 1
        off = "-" + "".join(sorted(self.off)) if self.off else ""
        return f"(?{''.join(sorted(self.on))}{off}:"


def go_regex_to_py(pat: str) -> str:
    """Rewrite a Go (RE2) pattern so Python's ``re`` reads it with the same meaning.

    Python only accepts a global flag group such as ``(?i)`` at the very start, while Go lets it appear
    anywhere and apply to the rest of the enclosing group (across ``|``); such groups become scoped
    ``(?i:…)`` groups. ``\\z`` becomes ``\\Z``, ``(?<name>`` becomes ``(?P<name>`` and POSIX classes are
    expanded. Unicode classes and ``(?U)`` raise :class:`GoError`.
    """
    out: list[str] = []
    stack = [_FlagFrame()]
    i = 0
    while i < len(pat):
        c = pat[i]
        if c == "\\":
            i = _convert_escape(pat, i, out)
        elif c == "[":
            j = _class_end(pat, i)
            out.append(_convert_class(pat[i:j]))
            i = j
        elif c == "(":
            i = _convert_group_open(pat, i, out, stack)
        elif c in "|)":
            frame = stack[-1]
            out.append(")" * frame.open + c)
            frame.open = 0
            if c == "|":
                out.append(frame.opener())
            elif len(stack) > 1:
                stack.pop()
            i += 1
        else:
            out.append(c)
            i += 1
    out.append(")" * stack[0].open)
    return "".join(out)


def _convert_group_open(pat: str, i: int, out: list[str], stack: list[_FlagFrame]) -> int:
    """Convert the ``(`` at ``pat[i]``; a Go flag group becomes (part of) a scoped Python flag group."""
    m = re.match(r"\(\?([imsU-]+)\)", pat[i:])
    if m and i == 0:  # leading flags are global in both languages
        out.append(m.group(0))
    elif m:
        frame = stack[-1]
        frame.apply(m.group(1))
        out.append(")" * frame.open)
        frame.open = 0
        out.append(frame.opener())
    elif re.match(r"\(\?<[A-Za-z_]", pat[i:]):
        out.append("(?P<")
        stack.append(_FlagFrame())
        return i + 3
    else:
        out.append("(")
        stack.append(_FlagFrame())
    return i + (len(m.group(0)) if m else 1)


def _convert_escape(pat: str, i: int, out: list[str]) -> int:
    nxt = pat[i + 1:i + 2]
    if nxt == "z":
        out.append(r"\Z")
    elif nxt in ("p", "P", "Q", "C"):
        raise GoError(f"regex escape \\{nxt} not supported")
    elif nxt == "x" and pat[i + 2:i + 3] == "{":
        end = pat.index("}", i)
        out.append(re.escape(chr(int(pat[i + 3:end], 16))))
        return end + 1
    else:
        out.append(pat[i:i + 2])
    return i + 2


def compile_go_regex(pat: str) -> re.Pattern:
    """Compile a Go pattern with Python's ``re`` (ASCII classes, as in Go)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return re.compile(go_regex_to_py(pat), re.ASCII)
        except re.error as e:
            raise GoError(f"regex does not compile in Python ({e}): {pat!r}") from None
