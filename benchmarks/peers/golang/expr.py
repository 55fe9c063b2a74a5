"""Recursive-descent evaluation of one Go expression: operands, calls, indexing, selectors, composite literals.

A list or map element that fails is recorded as a problem and dropped, so one construct the evaluator cannot
run costs one case, not the file. Struct fields stay unevaluated (:class:`Lazy`) until they are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from peers.golang.errors import GoError
from peers.golang.source import GoFile
from peers.golang.tokens import Tok, match_close
from peers.golang.values import BoundMethod, FuncRef, GStr, Lazy, QName, Scope, StructVal, text_of

if TYPE_CHECKING:
    from peers.golang.interp import Interp

# Predeclared functions and conversions that resolve to library calls (see interp.py's _LIBRARY).
BUILTINS = {"append", "len", "make", "new", "string", "byte", "rune", "int", "float64"}

_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4, "|": 4, "^": 4, "*": 5, "/": 5, "%": 5,
}


class Expr:
    """Recursive-descent evaluation of one Go expression in ``toks[pos:end]``."""

    def __init__(self, interp: "Interp", file: GoFile, start: int, end: int, scope: Scope):
        self.it, self.file, self.toks, self.pos, self.end, self.scope = interp, file, file.toks, start, end, scope
        self.no_literal = False  # inside if/for headers, `x {` starts a block, not a composite literal

    def peek(self, k: int = 0) -> Tok:
        i = self.pos + k
        return self.toks[i] if i < self.end else Tok("eof", None, self.toks[self.end - 1].line)

    def take(self) -> Tok:
        tok = self.peek()
        self.pos += 1
        return tok

    def at(self, val: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == "op" and tok.val == val

    def expect(self, val: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.val != val:
            raise GoError(f"expected {val!r}, found {tok.val!r}", tok.line)

    def expr(self, min_prec: int = 1) -> Any:
        left = self.unary()
        while True:
            tok = self.peek()
            prec = _BINARY_PRECEDENCE.get(tok.val) if tok.kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            self.take()
            left = binary_op(tok.val, left, self.expr(prec + 1), tok.line)

    def unary(self) -> Any:
        tok = self.peek()
        if tok.kind == "op" and tok.val in ("&", "*", "+", "-", "!"):
            self.take()
            value = self.unary()
            return -value if tok.val == "-" else (not value) if tok.val == "!" else value
        return self.primary()

    def primary(self) -> Any:
        value = self.operand()
        while True:
            tok = self.peek()
            if tok.kind != "op":
                return value
            if tok.val == "(":
                value = self.call(value, tok.line)
            elif tok.val == "[":
                value = self.index(value)
            elif tok.val == ".":
                self.take()
                value = self.select(value, self.take().val)
            elif tok.val == "{" and isinstance(value, QName) and not self.no_literal:
                value = self.composite(("named", value.name))
            else:
                return value

    def operand(self) -> Any:
        tok = self.take()
        if tok.kind == "str":
            return GStr(tok.val)
        if tok.kind in ("num", "char"):
            return tok.val
        if tok.kind == "op" and tok.val == "(":
            saved, self.no_literal = self.no_literal, False
            value = self.expr()
            self.expect(")")
            self.no_literal = saved
            return value
        if (tok.kind == "op" and tok.val == "[") or (tok.kind == "ident" and tok.val in ("map", "struct")):
            self.pos -= 1
            return self.after_type(self.parse_type())
        if tok.kind == "ident":
            return self.name(tok)
        raise GoError(f"unexpected {tok.val!r}", tok.line)

    def name(self, tok: Tok) -> Any:
        literals = {"true": True, "false": False, "nil": None}
        if tok.val in literals:
            return literals[tok.val]
        found, value = self.scope.lookup(tok.val)
        if found:
            return value
        if tok.val in self.file.imports:
            return QName(self.file.imports[tok.val])
        package = self.file.package
        if package is not None and tok.val in package.funcs:
            return FuncRef(package.funcs[tok.val])
        if tok.val in BUILTINS:
            return QName(tok.val)
        if self.at("{") and not self.no_literal:
            return self.composite(("named", tok.val))
        raise GoError(f"undefined: {tok.val}", tok.line)

    def parse_type(self) -> tuple:
        tok = self.take()
        if tok.kind == "op" and tok.val == "[":
            if self.at("]"):
                self.take()
                return ("slice", self.parse_type())
            self.expr()
            self.expect("]")
            return ("slice", self.parse_type())
        if tok.kind == "op" and tok.val == "*":
            return ("ptr", self.parse_type())
        if tok.kind == "ident" and tok.val == "map":
            self.expect("[")
            key = self.parse_type()
            self.expect("]")
            return ("map", key, self.parse_type())
        if tok.kind == "ident" and tok.val in ("struct", "interface"):
            self.pos = match_close(self.toks, self.pos) + 1
            return ("struct", tok.val)
        if tok.kind == "ident":
            name = tok.val
            while self.at(".") and self.peek(1).kind == "ident":
                self.take()
                name += "." + self.take().val
            return ("named", name)
        raise GoError(f"unsupported type starting at {tok.val!r}", tok.line)

    def after_type(self, typ: tuple) -> Any:
        if self.at("{") and not self.no_literal:
            return self.composite(typ)
        if self.at("("):  # conversion such as []byte(s): the value is unchanged
            self.take()
            value = self.expr()
            self.expect(")")
            return value
        raise GoError(f"type {typ} used as a value", self.peek().line)

    def composite(self, typ: tuple) -> Any:
        while typ[0] == "ptr":
            typ = typ[1]
        self.expect("{")
        if typ[0] == "slice":
            return self.slice_elements(typ[1])
        if typ[0] == "map":
            return self.map_elements(typ[2])
        return self.struct_elements(typ[1] if typ[0] == "named" else "struct")

    def element(self, typ: tuple) -> Any:
        return self.composite(typ) if self.at("{") else self.expr()

    def skip_element(self) -> None:
        depth = 0
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                raise GoError("unterminated composite literal", tok.line)
            if tok.kind == "op" and tok.val in ("(", "[", "{"):
                depth += 1
            elif tok.kind == "op" and tok.val in (")", "]", "}"):
                if depth == 0:
                    return
                depth -= 1
            elif tok.kind == "op" and tok.val == "," and depth == 0:
                return
            self.take()

    def end_element(self) -> bool:
        """Consume the ``,`` after an element; True when the literal's ``}`` was reached (and consumed)."""
        if self.at(","):
            self.take()
        if self.at("}"):
            self.take()
            return True
        if self.peek().kind == "eof":
            raise GoError("unterminated composite literal", self.peek().line)
        return False

    def slice_elements(self, elem: tuple) -> list:
        out: list = []
        if self.at("}"):
            self.take()
            return out
        while True:
            line = self.peek().line
            try:
                out.append(self.element(elem))
            except GoError as e:
                self.it.problem(self.file, e.line or line, f"list element dropped: {e}")
                self.skip_element()
            if self.end_element():
                return out

    def map_elements(self, value_type: tuple) -> dict:
        out: dict = {}
        if self.at("}"):
            self.take()
            return out
        while True:
            key = self.expr()
            self.expect(":")
            line = self.peek().line
            try:
                out[key] = self.element(value_type)
            except GoError as e:
                self.it.problem(self.file, e.line or line, f"map entry {text_of(key)!r} dropped: {e}")
                self.skip_element()
            if self.end_element():
                return out

    def struct_elements(self, type_name: str) -> StructVal:
        fields: dict = {}
        index = 0
        if self.at("}"):
            self.take()
            return StructVal(type_name, fields)
        while True:
            name: Any = index
            if self.peek().kind == "ident" and self.at(":", 1):
                name = self.take().val
                self.take()
            start = self.pos
            self.skip_element()
            fields[name] = Lazy(self.it, self.file, start, self.pos, self.scope)
            index += 1
            if self.end_element():
                return StructVal(type_name, fields)

    def index(self, value: Any) -> Any:
        self.expect("[")
        saved, self.no_literal = self.no_literal, False
        lo = None if self.at(":") else self.expr()
        if self.at(":"):
            self.take()
            hi = None if self.at("]") else self.expr()
            self.expect("]")
            self.no_literal = saved
            text = value.text if isinstance(value, GStr) else value
            sliced = text[lo:hi]
            return GStr(sliced) if isinstance(value, GStr) else sliced
        self.expect("]")
        self.no_literal = saved
        if isinstance(value, GStr):
            return ord(value.text[lo])
        return value[lo]

    def select(self, value: Any, attr: str) -> Any:
        if isinstance(value, QName):
            return QName(f"{value.name}.{attr}")
        if isinstance(value, StructVal) and attr in value.fields:
            return value.get(attr)
        return BoundMethod(value, attr)

    def call(self, target: Any, line: int) -> Any:
        self.expect("(")
        saved, self.no_literal = self.no_literal, False
        args: list = []
        spread = False
        while not self.at(")"):
            if isinstance(target, QName) and target.name in ("make", "new") and not args:
                args.append(self.parse_type())
            else:
                args.append(self.expr())
            if self.at("..."):
                self.take()
                spread = True
            if self.at(","):
                self.take()
        self.take()
        self.no_literal = saved
        return self.it.call(target, args, spread, self.file, line)


def binary_op(op: str, left: Any, right: Any, line: int) -> Any:
    if op == "+" and isinstance(left, GStr) and isinstance(right, GStr):
        return left + right
    if isinstance(left, GStr) and isinstance(right, GStr):
        left, right = left.text, right.text
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "||": lambda a, b: a or b, "&&": lambda a, b: a and b, "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b, "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a // b if isinstance(a, int) and isinstance(b, int) else a / b,
        "%": lambda a, b: a % b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
    }
    try:
        return ops[op](left, right)
    except (TypeError, ZeroDivisionError) as e:
        raise GoError(f"operator {op} on {type(left).__name__} and {type(right).__name__}: {e}", line) from None
