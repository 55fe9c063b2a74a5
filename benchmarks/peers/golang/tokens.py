"""Go source as tokens, with the semicolons Go inserts at line ends, and bracket-aware splitting of token runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from peers.golang.errors import GoError


@dataclass(frozen=True)
class Tok:
    kind: str  # ident | str | num | char | op | ; | eof
    val: Any
    line: int


_GO_OPS = sorted(
    ["...", "<<=", ">>=", "&^=", ":=", "==", "!=", "<=", ">=", "&&", "||", "<-", "++", "--", "+=", "-=", "*=",
     "/=", "%=", "|=", "&=", "^=", "<<", ">>", "&^"] + list("+-*/%&|^<>=!()[]{},;.:~"),
    key=len, reverse=True,
)
_SEMI_KEYWORDS = {"return", "break", "continue", "fallthrough"}
_GO_KEYWORDS = {
    "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough", "for", "func", "go",
    "goto", "if", "import", "interface", "map", "package", "range", "return", "select", "struct", "switch",
    "type", "var",
}
_GO_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}
_NUMBER = re.compile(r"0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[^\W\d]\w*")


def _go_unquote(body: str, line: int) -> str:
    """Decode the body of a Go interpreted string or rune literal (escapes are bytes, joined as UTF-8)."""
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        esc = body[i + 1]
        if esc in _GO_ESCAPES:
            out.append(_GO_ESCAPES[esc])
            i += 2
        elif esc == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif esc in "uU":
            width = 4 if esc == "u" else 8
            out += chr(int(body[i + 2:i + 2 + width], 16)).encode()
            i += 2 + width
        elif esc in "01234567":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            raise GoError(f"unknown escape \\{esc}", line)
    return out.decode("utf-8", errors="replace")


def _needs_semicolon(last: Optional[Tok]) -> bool:
    if last is None:
        return False
    if last.kind == "ident":
        return last.val not in _GO_KEYWORDS or last.val in _SEMI_KEYWORDS
    return last.kind in ("str", "num", "char") or (last.kind == "op" and last.val in (")", "]", "}", "++", "--"))


def go_tokenize(src: str) -> list[Tok]:
    """Tokens of a Go source file, with the semicolons Go inserts at line ends."""
    toks: list[Tok] = []
    i, line, n = 0, 1, len(src)

    def newline() -> None:
        if _needs_semicolon(toks[-1] if toks else None):
            toks.append(Tok(";", ";", line))

    while i < n:
        ch = src[i]
        if ch == "\n":
            newline()
            line += 1
            i += 1
        elif ch in " \t\r\f":
            i += 1
        elif src.startswith("//", i):
            i = src.find("\n", i) if "\n" in src[i:] else n
        elif src.startswith("/*", i):
            end = src.index("*/", i + 2)
            if "\n" in src[i:end]:
                newline()
                line += src.count("\n", i, end)
            i = end + 2
        elif ch == "`":
            end = src.index("`", i + 1)
            toks.append(Tok("str", src[i + 1:end].replace("\r", ""), line))
            line += src.count("\n", i, end)
            i = end + 1
        elif ch in "\"'":
            i = _scan_quoted(src, i, line, toks)
        else:
            i = _scan_word_or_op(src, i, line, toks)
    newline()
    toks.append(Tok("eof", None, line))
    return toks


def _scan_quoted(src: str, i: int, line: int, toks: list[Tok]) -> int:
    quote = src[i]
    j = i + 1
    while src[j] != quote:
        if src[j] == "\n":
            raise GoError("newline in string literal", line)
        j += 2 if src[j] == "\\" else 1
    body = _go_unquote(src[i + 1:j], line)
    toks.append(Tok("str" if quote == '"' else "char", body, line))
    return j + 1


def _scan_word_or_op(src: str, i: int, line: int, toks: list[Tok]) -> int:
    m = _NUMBER.match(src, i) if src[i].isdigit() or (src[i] == "." and src[i + 1:i + 2].isdigit()) else None
    if m:
        text = m.group(0).replace("_", "")
        value = int(text, 16) if text[:2].lower() == "0x" else (float(text) if re.search(r"[.eE]", text) else int(text))
        toks.append(Tok("num", value, line))
        return m.end()
    m = _IDENT.match(src, i)
    if m:
        toks.append(Tok("ident", m.group(0), line))
        return m.end()
    for op in _GO_OPS:
        if src.startswith(op, i):
            toks.append(Tok(";" if op == ";" else "op", op, line))
            return i + len(op)
    raise GoError(f"unexpected character {src[i]!r}", line)


def match_close(toks: list[Tok], i: int) -> int:
    """Index of the bracket that closes the one at ``toks[i]``."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opener, depth = toks[i].val, 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind == "op" and t.val == opener:
            depth += 1
        elif t.kind == "op" and t.val == pairs[opener]:
            depth -= 1
            if depth == 0:
                return j
    raise GoError(f"unbalanced {opener!r}", toks[i].line)


def split_top(toks: list[Tok], start: int, end: int, sep: str) -> list[tuple[int, int]]:
    """Split ``toks[start:end]`` at ``sep`` tokens outside brackets (``;`` for statements, ``,`` for lists).

    The ``;`` of a ``for init; cond; post {`` or ``if init; cond {`` header does not end the statement.
    """
    parts, depth, s, header = [], 0, start, False
    for i in range(start, end):
        t = toks[i]
        if i == s and t.kind == "ident" and t.val in ("for", "if", "switch"):
            header = True
        if t.kind == "op" and t.val in ("(", "[", "{"):
            header = header and not (t.val == "{" and depth == 0)
            depth += 1
        elif t.kind == "op" and t.val in (")", "]", "}"):
            depth -= 1
        elif t.val == sep and t.kind in ("op", ";") and depth == 0 and not header:
            if i > s:
                parts.append((s, i))
            s = i + 1
    if s < end:
        parts.append((s, end))
    return parts
