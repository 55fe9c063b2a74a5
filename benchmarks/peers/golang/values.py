"""Go values as the evaluator holds them: strings that remember their generated parts, lazy struct fields and
package-level vars, scopes, and the few library objects (strings.Builder, strings.NewReplacer) test files use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from peers.golang.errors import GoError

if TYPE_CHECKING:
    from peers.golang.interp import Interp
    from peers.golang.source import GoFile, GoFunc

@dataclass(frozen=True)
class GStr:
    """A Go string that remembers which parts came from ``secrets.NewSecret`` and whether it is a sample."""

    text: str
    gens: tuple = ()  # ((start, end, regex), ...) produced by secrets.NewSecret
    sample: Optional[str] = None  # the secret given to utils.GenerateSampleSecret(s)

    def __add__(self, other: "GStr") -> "GStr":
        shift = len(self.text)
        return GStr(self.text + other.text, self.gens + tuple((s + shift, e + shift, r) for s, e, r in other.gens))


@dataclass
class Failed:
    """A variable whose definition could not be evaluated."""

    message: str


@dataclass
class QName:
    """A qualified name such as ``fmt.Sprintf`` or ``utils.Hex`` that is not a variable."""

    name: str


@dataclass
class FuncRef:
    func: "GoFunc"


@dataclass
class BoundMethod:
    obj: Any
    name: str


class Builder:
    """strings.Builder."""

    def __init__(self) -> None:
        self.value = GStr("")


class Replacer:
    """strings.NewReplacer: one left-to-right pass, earlier pairs win at the same position."""

    def __init__(self, pairs: list[GStr]):
        olds = [p.text for p in pairs[0::2]]
        self.table = dict(zip(olds, (p.text for p in pairs[1::2])))
        self.pattern = re.compile("|".join(re.escape(o) for o in olds))

    def replace(self, s: GStr) -> GStr:
        return GStr(self.pattern.sub(lambda m: self.table[m.group(0)], s.text))


@dataclass
class RuleResult:
    """What a gitleaks rule function hands to utils.Validate."""

    rule: "StructVal"
    tps: list
    fps: list


class Lazy:
    """An unevaluated expression (package-level var, struct field): evaluated on first use."""

    def __init__(self, interp: "Interp", file: "GoFile", start: int, end: int, scope: "Scope"):
        self.interp, self.file, self.start, self.end, self.scope = interp, file, start, end, scope

    def force(self) -> Any:
        return self.interp.eval(self.file, self.start, self.end, self.scope)


class StructVal:
    """A struct composite literal whose fields are evaluated only when read."""

    def __init__(self, type_name: str, fields: dict):
        self.type_name, self.fields = type_name, fields

    def get(self, name: str) -> Any:
        if name not in self.fields:
            raise GoError(f"{self.type_name} has no field {name}")
        value = self.fields[name]
        if isinstance(value, Lazy):
            value = self.fields[name] = value.force()
        return value


class Scope:
    def __init__(self, parent: Optional["Scope"] = None):
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def lookup(self, name: str) -> tuple[bool, Any]:
        scope: Optional[Scope] = self
        while scope is not None:
            if name in scope.vars:
                value = scope.vars[name]
                if isinstance(value, Lazy):
                    scope.vars[name] = Failed("defined in terms of itself")
                    value = scope.vars[name] = _force_or_fail(value)
                if isinstance(value, Failed):
                    raise GoError(f"{name} is unavailable: {value.message}")
                return True, value
            scope = scope.parent
        return False, None

    def assign(self, name: str, value: Any) -> None:
        scope: Optional[Scope] = self
        while scope is not None:
            if name in scope.vars:
                scope.vars[name] = value
                return
            scope = scope.parent
        self.vars[name] = value


def _force_or_fail(lazy: Lazy) -> Any:
    try:
        return lazy.force()
    except GoError as e:
        return Failed(f"{e} (line {e.line or lazy.file.toks[lazy.start].line})")


def text_of(value: Any) -> str:
    if isinstance(value, GStr):
        return value.text
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return str(value)
