"""A restricted evaluator for the Python expressions in detect-secrets' tests, which are parsed, never imported.

It knows literals, names bound earlier in the module, ``+ * %``, unary minus, indexing and slicing, a few
``str``/``bytes`` methods, ``str``, ``len``, ``int``, ``base64.b64encode/b64decode``, ``textwrap.dedent`` and
``randint`` (replaced by its lower bound, so a run is deterministic). Anything else raises :class:`PyError`.
"""

from __future__ import annotations

import ast
import base64
import textwrap
from dataclasses import dataclass
from typing import Any, Callable


class PyError(Exception):
    """A Python expression outside the restricted evaluator."""


@dataclass
class PyFailed:
    """A module-level name whose value could not be evaluated: using it raises :class:`PyError`."""

    message: str


_STR_METHODS = {"format", "encode", "decode", "upper", "lower", "strip", "replace", "join"}


def py_eval(node: ast.AST, env: dict) -> Any:
    """Evaluate literals, names, + * %, slicing, str methods, base64/textwrap/str/randint (its lower bound)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise PyError(f"undefined name {node.id}")
        if isinstance(env[node.id], PyFailed):
            raise PyError(f"{node.id} unavailable: {env[node.id].message}")
        return env[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [py_eval(e, env) for e in node.elts]
        return tuple(values) if isinstance(node, ast.Tuple) else values
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult, ast.Mod)):
        left, right = py_eval(node.left, env), py_eval(node.right, env)
        return {ast.Add: lambda: left + right, ast.Mult: lambda: left * right, ast.Mod: lambda: left % right}[
            type(node.op)]()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -py_eval(node.operand, env)
    if isinstance(node, ast.Subscript):
        value = py_eval(node.value, env)
        sl = node.slice
        if isinstance(sl, ast.Slice):
            parts = [None if p is None else py_eval(p, env) for p in (sl.lower, sl.upper, sl.step)]
            return value[slice(*parts)]
        return value[py_eval(sl, env)]
    if isinstance(node, ast.Call):
        return _py_call(node, env)
    raise PyError(f"unsupported expression {type(node).__name__}")


def _py_call(node: ast.Call, env: dict) -> Any:
    args = [py_eval(a, env) for a in node.args]
    if node.keywords:
        raise PyError("keyword arguments not supported")
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in _STR_METHODS and not (
            isinstance(func.value, ast.Name) and func.value.id in ("base64", "textwrap")):
        target = py_eval(func.value, env)
        if not isinstance(target, (str, bytes)):
            raise PyError(f".{func.attr}() on {type(target).__name__}")
        return getattr(target, func.attr)(*args)
    name = ast.unparse(func)
    library: dict[str, Callable] = {
        "str": str, "len": len, "int": int, "randint": lambda lo, hi: lo, "base64.b64encode": base64.b64encode,
        "base64.b64decode": base64.b64decode, "textwrap.dedent": textwrap.dedent,
    }
    if name not in library:
        raise PyError(f"call of {name} not supported")
    return library[name](*args)


def module_env(tree: ast.Module) -> tuple[dict, dict]:
    """A module's top-level ``name = value`` assignments: (evaluated values, their unevaluated nodes)."""
    env: dict = {}
    assigns: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            assigns[name] = node.value
            try:
                env[name] = py_eval(node.value, env)
            except PyError as e:
                env[name] = PyFailed(f"{e} (line {node.lineno})")
    return env, assigns
