"""The interpreter: loads Go packages, runs functions and statements, and provides the library functions
peer test files call (fmt.Sprintf, strings.*, base64, append, secrets.NewSecret through the sampler)."""

from __future__ import annotations

import base64
import json
import random
import re
from collections import Counter
from typing import Any, Callable, Optional

from peers.cases import Problem
from peers.golang.errors import GoError
from peers.golang.expr import Expr, binary_op
from peers.golang.regex import compile_go_regex
from peers.golang.sample import RegexSampler
from peers.golang.source import GoFile, GoFunc, GoPackage, parse_func, parse_imports
from peers.golang.tokens import Tok, go_tokenize, match_close, split_top
from peers.golang.values import (
    BoundMethod,
    Builder,
    Failed,
    FuncRef,
    GStr,
    Lazy,
    QName,
    Replacer,
    RuleResult,
    Scope,
    text_of,
)


class _Ret:
    def __init__(self, value: Any):
        self.value = value


def _sprintf(fmt: GStr, args: list, line: int) -> GStr:
    out = GStr("")
    parts = re.split(r"(%[-+# 0-9.]*[a-zA-Z%])", fmt.text)
    args = list(args)
    for part in parts:
        if not part.startswith("%") or len(part) < 2:
            out = out + GStr(part)
        elif part == "%%":
            out = out + GStr("%")
        elif part[-1] in "svdq" and args:
            out = out + _format_verb(part, args.pop(0))
        else:
            raise GoError(f"fmt.Sprintf verb {part} not supported", line)
    return out


def _format_verb(verb: str, arg: Any) -> GStr:
    if verb in ("%s", "%v") and isinstance(arg, GStr):
        return arg
    if isinstance(arg, bool):
        arg = GStr("true" if arg else "false")
    if verb[-1] == "q":
        return GStr(json.dumps(text_of(arg)))
    if verb[-1] == "d":
        return GStr(("%" + verb[1:-1] + "d") % arg)
    return GStr(("%" + verb[1:-1] + "s") % text_of(arg))


class Interp:
    """Runs the subset of Go that peer test files use, with a few library functions in Python."""

    def __init__(self, source: str, seed: int, problems: list[Problem]):
        self.source, self.seed, self.problems = source, seed, problems
        self.rng = random.Random(seed)
        self.packages: dict[str, GoPackage] = {}
        self.overrides: dict[str, Callable] = {}
        self.stats: Counter = Counter()
        self.generated_failures: list[str] = []

    def problem(self, file: GoFile, line: int, message: str) -> None:
        self.problems.append(Problem(self.source, file.path, line, message))

    # -- loading ---------------------------------------------------------------------------------------
    def load_package(self, name: str, sources: dict[str, str]) -> GoPackage:
        """Parse files of one Go package: its functions and (lazily evaluated) package-level vars/consts."""
        package = self.packages.setdefault(name, GoPackage(name))
        for path, src in sources.items():
            file = GoFile(path, go_tokenize(src), package=package)
            package.files.append(file)
            for s, e in split_top(file.toks, 0, len(file.toks) - 1, ";"):
                self._top_level(file, s, e)
        return package

    def _top_level(self, file: GoFile, s: int, e: int) -> None:
        head = file.toks[s].val
        if head == "import":
            parse_imports(file.toks, s, e, file.imports)
        elif head in ("var", "const"):
            for name, (a, b) in self._specs(file, s, e):
                file.package.scope.vars[name] = Lazy(self, file, a, b, file.package.scope)
        elif head == "func":
            func = parse_func(file, s, e)
            if func is not None:
                file.package.funcs[func.name] = func

    def _specs(self, file: GoFile, s: int, e: int) -> list[tuple[str, tuple[int, int]]]:
        """``var``/``const`` specs as (name, value token range); a spec without a value gets its type's zero."""
        toks = file.toks
        if toks[s + 1].kind == "op" and toks[s + 1].val == "(":
            specs = split_top(toks, s + 2, match_close(toks, s + 1), ";")
        else:
            specs = [(s + 1, e)]
        out = []
        for a, b in specs:
            eq = next((i for i in range(a, b) if toks[i].kind == "op" and toks[i].val == "="), None)
            if any(toks[i].kind == "op" and toks[i].val == "," for i in range(a, eq or b)):
                raise GoError("multiple names in one var spec", toks[a].line)
            out.append((toks[a].val, (eq + 1, b) if eq is not None else (-(a + 1), b)))
        return out

    # -- evaluation ------------------------------------------------------------------------------------
    def eval(self, file: GoFile, start: int, end: int, scope: Scope) -> Any:
        if start < 0:  # a `var x T` spec: the zero value of T
            return self.zero_value(Expr(self, file, -start, end, scope).parse_type() if -start < end else None)
        ex = Expr(self, file, start, end, scope)
        value = ex.expr()
        if ex.pos != end:
            raise GoError(f"unexpected {ex.peek().val!r} after expression", ex.peek().line)
        return value

    @staticmethod
    def zero_value(typ: Optional[tuple]) -> Any:
        if typ == ("named", "strings.Builder"):
            return Builder()
        if typ == ("named", "string"):
            return GStr("")
        if typ in (("named", "int"), ("named", "float64")):
            return 0
        return False if typ == ("named", "bool") else None

    def call(self, target: Any, args: list, spread: bool, file: GoFile, line: int) -> Any:
        if spread:
            if not isinstance(args[-1], (list, type(None))):
                raise GoError("... applied to a non-slice", line)
            args = args[:-1] + list(args[-1] or [])
        if isinstance(target, FuncRef):
            name = target.func.name
            return self.overrides[name](args, line) if name in self.overrides else self.call_func(target.func, args)
        if isinstance(target, BoundMethod):
            return self.call_method(target, args, line)
        if not isinstance(target, QName):
            raise GoError(f"call of a {type(target).__name__}", line)
        name = target.name
        if name in self.overrides:
            return self.overrides[name](args, line)
        pkg, _, func = name.partition(".")
        if pkg in self.packages and func in self.packages[pkg].funcs:
            return self.call_func(self.packages[pkg].funcs[func], args)
        if name in _LIBRARY:
            return _LIBRARY[name](self, args, line)
        raise GoError(f"call of unsupported function {name}", line)

    def call_func(self, func: GoFunc, args: list) -> Any:
        scope = Scope(func.file.package.scope)
        for i, param in enumerate(func.params):
            if param.startswith("..."):  # variadic: the rest of the arguments as a slice
                scope.vars[param[3:]] = list(args[i:])
            else:
                scope.vars[param] = args[i] if i < len(args) else None
        ret = self.exec_block(func.file, func.body[0], func.body[1], scope)
        return ret.value if ret is not None else None

    def call_method(self, bound: BoundMethod, args: list, line: int) -> Any:
        obj, name = bound.obj, bound.name
        if isinstance(obj, Builder) and name == "WriteString":
            obj.value = obj.value + args[0]
            return None
        if isinstance(obj, Builder) and name == "String":
            return obj.value
        if isinstance(obj, Replacer) and name == "Replace":
            return obj.replace(args[0])
        if isinstance(obj, GStr) and name == "String":
            return obj
        if isinstance(obj, GStr) and name == "MatchString":
            return bool(compile_go_regex(obj.text).search(text_of(args[0])))
        raise GoError(f"method {type(obj).__name__}.{name} not supported", line)

    # -- statements ------------------------------------------------------------------------------------
    def exec_block(self, file: GoFile, start: int, end: int, scope: Scope, tolerant: bool = False) -> Optional[_Ret]:
        """Run statements; ``tolerant`` records a failing statement as a problem and goes on."""
        for s, e in split_top(file.toks, start, end, ";"):
            try:
                ret = self.exec_stmt(file, s, e, scope, tolerant)
            except GoError as err:
                if not tolerant:
                    raise
                self.problem(file, err.line or file.toks[s].line, f"statement skipped: {err}")
                for name in self._assigned_names(file, s, e):
                    scope.vars[name] = Failed(str(err))
                continue
            if ret is not None:
                return ret
        return None

    @staticmethod
    def _assigned_names(file: GoFile, s: int, e: int) -> list[str]:
        toks = file.toks
        if s + 1 < e and toks[s].kind == "ident" and toks[s + 1].kind == "op" and toks[s + 1].val in (":=", "="):
            return [toks[s].val]
        return []

    def exec_stmt(self, file: GoFile, s: int, e: int, scope: Scope, tolerant: bool) -> Optional[_Ret]:
        toks = file.toks
        head = toks[s]
        if head.kind == "ident" and head.val == "return":
            if tolerant and self._is_validate(toks, s + 1, e):
                return _Ret(self._tolerant_validate(file, s + 1, e, scope))
            return _Ret(self.eval(file, s + 1, e, scope) if s + 1 < e else None)
        if head.kind == "ident" and head.val in ("var", "const"):
            for name, (a, b) in self._specs(file, s, e):
                try:
                    scope.vars[name] = self.eval(file, a, b, scope)
                except GoError as err:
                    if not tolerant:
                        raise
                    self.problem(file, err.line or toks[abs(a)].line, f"{name} not evaluated: {err}")
                    scope.vars[name] = Failed(str(err))
            return None
        if head.kind == "ident" and head.val == "if":
            return self.exec_if(file, s, e, scope)
        if head.kind == "ident" and head.val == "for":
            return self.exec_for(file, s, e, scope)
        i = s
        while i < e:
            t = toks[i]
            if t.kind == "op" and t.val in ("(", "[", "{"):
                i = match_close(toks, i)
            elif t.kind == "op" and t.val in (":=", "=", "+="):
                self.exec_assign(file, s, i, e, scope)
                return None
            i += 1
        self.eval(file, s, e, scope)
        return None

    def exec_assign(self, file: GoFile, s: int, op_index: int, e: int, scope: Scope) -> None:
        toks = file.toks
        op = toks[op_index].val
        if any(t.kind == "op" and t.val == "," for t in toks[s:op_index]):
            raise GoError("multiple assignment not supported", toks[s].line)
        value = self.eval(file, op_index + 1, e, scope)
        name = toks[s].val
        if op_index - s > 1:  # x[i] = v
            if not (toks[s + 1].kind == "op" and toks[s + 1].val == "["):
                raise GoError("unsupported assignment target", toks[s].line)
            container = scope.lookup(name)[1]
            container[self.eval(file, s + 2, op_index - 1, scope)] = value
        elif name == "_":
            pass
        elif op == ":=":
            scope.vars[name] = value
        elif op == "+=":
            scope.assign(name, binary_op("+", scope.lookup(name)[1], value, toks[s].line))
        else:
            scope.assign(name, value)

    def _header(self, file: GoFile, start: int, end: int, scope: Scope) -> tuple[Any, int, int]:
        """Evaluate an if/for header up to its block; returns (value, block start, block end)."""
        toks, depth, i = file.toks, 0, start
        while i < end and not (depth == 0 and toks[i].kind == "op" and toks[i].val == "{"):
            if toks[i].kind == ";" and depth == 0:
                raise GoError("if/for header with an init statement not supported", toks[i].line)
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(toks[i].val, 0) if toks[i].kind == "op" else 0
            i += 1
        ex = Expr(self, file, start, end, scope)
        ex.no_literal = True
        value = ex.expr()
        if not ex.at("{"):
            raise GoError("unsupported if/for header", file.toks[start].line)
        close = match_close(file.toks, ex.pos)
        return value, ex.pos + 1, close

    def exec_if(self, file: GoFile, s: int, e: int, scope: Scope) -> Optional[_Ret]:
        toks = file.toks
        cond, a, b = self._header(file, s + 1, e, scope)
        if cond:
            return self.exec_block(file, a, b, Scope(scope))
        if b + 1 < e and toks[b + 1].val == "else":
            if toks[b + 2].val == "if":
                return self.exec_if(file, b + 2, e, scope)
            return self.exec_block(file, b + 3, match_close(toks, b + 2), Scope(scope))
        return None

    def exec_for(self, file: GoFile, s: int, e: int, scope: Scope) -> Optional[_Ret]:
        toks = file.toks
        rng = next((i for i in range(s, e) if toks[i].kind == "ident" and toks[i].val == "range"), None)
        if rng is None or toks[rng - 1].val not in (":=", "="):
            raise GoError("only `for k, v := range x` loops are supported", toks[s].line)
        names = [t.val for t in toks[s + 1:rng - 1] if t.kind == "ident"]
        seq, a, b = self._header(file, rng + 1, e, scope)
        if isinstance(seq, dict):  # Go's map order is random: iterate sorted by key
            items = sorted(seq.items(), key=lambda kv: text_of(kv[0]))
        elif isinstance(seq, GStr):
            items = list(enumerate(seq.text))
        else:
            items = list(enumerate(seq or []))
        for key, value in items:
            body = Scope(scope)
            for name, v in zip(names, (key, value)):
                if name != "_":
                    body.vars[name] = v
            ret = self.exec_block(file, a, b, body)
            if ret is not None:
                return ret
        return None

    @staticmethod
    def _is_validate(toks: list[Tok], s: int, e: int) -> bool:
        return e - s > 3 and toks[s].val == "utils" and toks[s + 2].val in ("Validate", "ValidateWithPaths")

    def _tolerant_validate(self, file: GoFile, s: int, e: int, scope: Scope) -> Any:
        """``return utils.Validate(r, tps, fps)``: evaluate each argument on its own so one failure keeps the rest."""
        if file.toks[s + 2].val == "ValidateWithPaths":
            return "paths"
        args = []
        for a, b in split_top(file.toks, s + 4, e - 1, ","):
            try:
                args.append(self.eval(file, a, b, scope))
            except GoError as err:
                self.problem(file, err.line or file.toks[a].line, f"validate argument dropped: {err}")
                args.append(None)
        return RuleResult(args[0], args[1] or [], args[2] or [])

    # -- secrets.NewSecret --------------------------------------------------------------------------------
    def new_secret(self, regex: str, line: int) -> GStr:
        """A random string matching ``regex`` (checked with re.fullmatch, up to 100 tries)."""
        sampler = RegexSampler(self.rng)
        compiled = compile_go_regex(regex)
        for _ in range(100):
            value = sampler.sample(regex)
            if compiled.fullmatch(value):
                self.stats["generated_fullmatch"] += 1
                return GStr(value, ((0, len(value), regex),))
        self.stats["generated_no_fullmatch"] += 1
        self.generated_failures.append(regex)
        return GStr(value, ((0, len(value), regex),))


def _lib_append(it: Interp, args: list, line: int) -> list:
    base = args[0]
    if base is not None and not isinstance(base, list):
        raise GoError("append to a non-slice", line)
    return list(base or []) + list(args[1:])


def _lib_make(it: Interp, args: list, line: int) -> Any:
    typ = args[0]
    if typ[0] == "map":
        return {}
    return [Interp.zero_value(typ[1])] * (args[1] if len(args) > 1 else 0)


def _lib_b64(encode: Callable[[bytes], bytes], pad: bool) -> Callable:
    def run(it: Interp, args: list, line: int) -> GStr:
        data = text_of(args[0]).encode()
        out = encode(data).decode()
        return GStr(out if pad else out.rstrip("="))

    return run


_LIBRARY: dict[str, Callable[[Interp, list, int], Any]] = {
    "append": _lib_append,
    "make": _lib_make,
    "len": lambda it, a, line: len(a[0].text if isinstance(a[0], GStr) else a[0] or []),
    "string": lambda it, a, line: a[0] if isinstance(a[0], GStr) else GStr(chr(a[0]) if isinstance(a[0], int)
                                                                          else text_of(a[0])),
    "fmt.Sprintf": lambda it, a, line: _sprintf(a[0], a[1:], line),
    "strings.ToUpper": lambda it, a, line: GStr(a[0].text.upper()),
    "strings.ToLower": lambda it, a, line: GStr(a[0].text.lower()),
    "strings.Repeat": lambda it, a, line: GStr(a[0].text * a[1]),
    "strings.Join": lambda it, a, line: GStr(a[1].text.join(x.text for x in a[0])),
    "strings.NewReplacer": lambda it, a, line: Replacer(a),
    "regexp.MustCompile": lambda it, a, line: a[0],
    "secrets.NewSecret": lambda it, a, line: it.new_secret(a[0].text, line),
    "base64.StdEncoding.EncodeToString": _lib_b64(base64.b64encode, True),
    "base64.RawStdEncoding.EncodeToString": _lib_b64(base64.b64encode, False),
    "base64.URLEncoding.EncodeToString": _lib_b64(base64.urlsafe_b64encode, True),
    "base64.RawURLEncoding.EncodeToString": _lib_b64(base64.urlsafe_b64encode, False),
}
