"""Cases from detect-secrets' plugin tests: the rows of ``@pytest.mark.parametrize`` in ``tests/plugins/*_test.py``.

The test files are parsed with ``ast``, never imported, and their rows evaluated with the restricted
evaluator of :mod:`peers.pyliteral`. A row's kind comes from its ``should_flag``/``expected_secret``/
``expected_output`` argument (or the test's ``assert not``); its secret is the test's expected secret
(flag-only rows: None). The same line under several file types is one case; the test file's comments on a
row are kept in the case's note.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Optional

from peers.cases import Case, Problem
from peers.git import Git
from peers.pyliteral import PyError, module_env, py_eval

# detect-secrets tests/plugins/<stem>_test.py -> codex family
DETECT_SECRETS_FAMILY = {
    "keyword": "credential", "basic_auth": "uri", "stripe_key": "stripe", "twilio": "twilio",
    "sendgrid": "sendgrid", "npm": "npm", "pypi_token": "pypi", "gitlab_token": "gitlab", "discord": "discord",
    "telegram_token": "telegram", "azure_storage_key": "azure", "square_oauth": "square", "openai": "openai",
    "aws_key": "aws", "github_token": "github", "slack": "slack", "jwt": "jwt", "private_key": "private-key",
    "mailchimp_key": "mailchimp",
}

_DS_TEXT_ARGS = ("payload", "line", "file_content", "content")  # parametrize names that hold the scanned text


def _comments_by_line(src: str) -> dict[int, str]:
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            text = re.sub(r"\s*#\s*noqa.*$", "", tok.string.lstrip("#").strip())
            if text and not re.match(r"(noqa|pragma: allowlist)", text):
                out[tok.start[0]] = text
    return out


@dataclass
class _Row:
    values: tuple
    node: ast.AST
    first_line: int  # first source line whose comments belong to this row
    origin: str = ""  # "<list name> <file extension>" for keyword_test's parse_test_cases


def _row_values(node: ast.AST, width: int, env: dict) -> tuple:
    if width == 1:
        return (py_eval(node, env),)
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.param":
        return tuple(py_eval(a, env) for a in node.args)
    if not isinstance(node, ast.Tuple) or len(node.elts) != width:
        raise PyError(f"row is not a {width}-tuple")
    return tuple(py_eval(e, env) for e in node.elts)


def _rows_of(list_node: ast.AST, width: int, env: dict, origin: str = "", prefix: tuple = ()) -> list[_Row]:
    if not isinstance(list_node, (ast.List, ast.Tuple)):
        raise PyError(f"parametrize values are a {type(list_node).__name__}")
    rows, prev_end = [], list_node.lineno
    for elt in list_node.elts:
        rows.append(_Row(prefix + _row_values(elt, width - len(prefix), env), elt, prev_end + 1, origin))
        prev_end = elt.end_lineno
    return rows


def _parametrize_rows(deco: ast.Call, env: dict, assigns: dict) -> tuple[list[str], list[_Row]]:
    """argnames and rows of ``@pytest.mark.parametrize``; keyword_test's parse_test_cases([...]) is unrolled."""
    names = py_eval(deco.args[0], env)
    argnames = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    values = deco.args[1]
    if isinstance(values, ast.Call) and ast.unparse(values.func) == "parse_test_cases":
        rows: list[_Row] = []
        for pair in values.args[0].elts:
            ext, list_name = py_eval(pair.elts[0], env), pair.elts[1].id
            rows.extend(_rows_of(assigns[list_name], len(argnames), env, f"{list_name} {ext}", (ext,)))
        return argnames, rows
    return argnames, _rows_of(values, len(argnames), env)


def _ds_classify(argnames: list[str], values: tuple, func_src: str) -> tuple[str, Optional[str], str]:
    """(kind, secret, note) for one parametrize row."""
    row = dict(zip(argnames, values))
    text = next(row[k] for k in _DS_TEXT_ARGS if k in row)
    if "should_flag" in row:
        return ("tp" if row["should_flag"] else "fp"), None, ""
    if "expected_secret" in row:
        secret = row["expected_secret"]
        return ("tp", secret, "") if secret else ("fp", None, "")
    if "expected_output" in row:
        out = list(row["expected_output"] or [])
        single = out[0] if len(out) == 1 and out[0] in text else None
        return ("tp" if out else "fp"), single, f"expected {len(out)} values" if len(out) > 1 else ""
    if len(argnames) == 1:
        kind = "fp" if "assert not" in func_src else "tp"
        return kind, None, "single-argument parametrize; kind from the test's assert"
    raise PyError(f"parametrize names {argnames} not understood")


@dataclass
class _DsCase:
    """A detect-secrets row before duplicates (one line under several file types) are merged."""

    text: str
    kind: str
    secret: Optional[str]
    tests: list[str]
    origins: dict[str, list[str]]  # list name -> file extensions (keyword_test)
    notes: list[str]


# Parametrized tests that do not test detection: their inputs are no detector cases.
_DS_NOT_DETECTION = {
    "test_get_secret_access_key": "it tests the verification helper that looks for a secret key near a key id "
                                  "already found, not the detector",
}


def _ds_file(path: str, plugin: str, family: str, src: str, problems: list[Problem]) -> list[Case]:
    tree = ast.parse(src)
    env, assigns = module_env(tree)
    comments = _comments_by_line(src)
    merged: dict[tuple, _DsCase] = {}
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        if func.name in _DS_NOT_DETECTION:
            problems.append(Problem("detect-secrets", path, func.lineno, f"{func.name}: skipped, "
                                    f"{_DS_NOT_DETECTION[func.name]}"))
            continue
        for deco in func.decorator_list:
            if not (isinstance(deco, ast.Call) and ast.unparse(deco.func) == "pytest.mark.parametrize"):
                continue
            try:
                argnames, rows = _parametrize_rows(deco, env, assigns)
            except (PyError, KeyError, AttributeError) as e:
                problems.append(Problem("detect-secrets", path, deco.lineno, f"{func.name}: parametrize skipped: {e}"))
                continue
            func_src = ast.get_source_segment(src, func) or ""
            for row in rows:
                try:
                    kind, secret, note = _ds_classify(argnames, row.values, func_src)
                except (PyError, StopIteration) as e:
                    problems.append(Problem("detect-secrets", path, row.node.lineno, f"{func.name}: row skipped: {e}"))
                    continue
                text = next(v for k, v in zip(argnames, row.values) if k in _DS_TEXT_ARGS)
                said = " / ".join(comments[i] for i in range(row.first_line, row.node.end_lineno + 1) if i in comments)
                entry = merged.setdefault((text, kind, secret), _DsCase(text, kind, secret, [], {}, []))
                _add_unique(entry.tests, func.name)
                if row.origin:
                    list_name, _, ext = row.origin.partition(" ")
                    entry.origins.setdefault(list_name, []).append(ext)
                for extra in (note, f"comment: {said}" if said else ""):
                    if extra:
                        _add_unique(entry.notes, extra)
    return [_ds_case(path, plugin, family, entry, merged) for entry in merged.values()]


def _add_unique(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _ds_case(path: str, plugin: str, family: str, entry: _DsCase, merged: dict) -> Case:
    parts = list(entry.tests)
    parts += [f"{name} [ext {', '.join(exts)}]" for name, exts in entry.origins.items()]
    parts += entry.notes
    if entry.kind == "fp" and any(k[0] == entry.text and k[1] == "tp" for k in merged):
        parts.append("CONFLICT: the same line is a tp under other file types")
    return Case("detect-secrets", path, plugin, family, entry.kind, entry.text, entry.secret, "; ".join(parts))


def detect_secrets_cases(repo: str, problems: Optional[list[Problem]] = None) -> list[Case]:
    """Cases from detect-secrets' plugin tests (see DETECT_SECRETS_FAMILY), parsed with ast, never imported."""
    problems = [] if problems is None else problems
    git = Git(repo)
    present = set(git.ls("tests/plugins"))
    cases: list[Case] = []
    for plugin, family in DETECT_SECRETS_FAMILY.items():
        path = f"tests/plugins/{plugin}_test.py"
        if path not in present:
            problems.append(Problem("detect-secrets", path, 0, "test file not in this checkout"))
            continue
        cases.extend(_ds_file(path, plugin, family, git.show(path), problems))
    return cases
