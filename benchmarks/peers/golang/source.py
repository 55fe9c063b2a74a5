"""Go files and packages: their imports, functions (as token ranges) and package-level names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from peers.golang.tokens import Tok, match_close, split_top
from peers.golang.values import Scope


@dataclass
class GoFunc:
    name: str
    params: list[str]
    file: "GoFile"
    body: tuple[int, int]  # token range inside the braces
    result: str  # the result type, as text
    line: int


@dataclass
class GoFile:
    path: str
    toks: list[Tok]
    imports: dict[str, str] = field(default_factory=dict)  # alias -> canonical package name
    package: Optional["GoPackage"] = None


@dataclass
class GoPackage:
    name: str
    scope: Scope = field(default_factory=Scope)
    funcs: dict[str, GoFunc] = field(default_factory=dict)
    files: list[GoFile] = field(default_factory=list)


def parse_imports(toks: list[Tok], s: int, e: int, imports: dict[str, str]) -> None:
    if toks[s + 1].kind == "op" and toks[s + 1].val == "(":
        specs = split_top(toks, s + 2, match_close(toks, s + 1), ";")
    else:
        specs = [(s + 1, e)]
    for a, b in specs:
        path = toks[b - 1].val
        alias = toks[a].val if b - a == 2 else path.rsplit("/", 1)[-1]
        imports[alias] = path.rsplit("/", 1)[-1]


def parse_func(file: GoFile, s: int, e: int) -> Optional[GoFunc]:
    toks = file.toks
    i = s + 1
    if toks[i].kind == "op" and toks[i].val == "(":  # a method: not needed here
        return None
    name = toks[i].val
    close = match_close(toks, i + 1)
    params = []
    for a, b in split_top(toks, i + 2, close, ","):
        variadic = any(t.kind == "op" and t.val == "..." for t in toks[a:b])
        params.append("..." + toks[a].val if variadic else toks[a].val)
    j = close + 1
    while j < e and not (toks[j].kind == "op" and toks[j].val == "{"):
        j += 1
    if j >= e:
        return None
    result = "".join(str(t.val) for t in toks[close + 1:j])
    return GoFunc(name, params, file, (j + 1, match_close(toks, j)), result, toks[s].line)
