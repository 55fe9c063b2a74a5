"""Cases from trufflehog's detector tests: the ``[]struct{…}`` pattern tables of ``pkg/detectors/<name>/*_test.go``.

Each table row's ``input`` is a case, a tp when the row expects results (``want``), else an fp; the tables are
evaluated with the Go evaluator (:mod:`peers.golang`). A tp's secret is the expected result when it occurs in
the input, else its credential (the JSON value, or the longest non-URL part of what the detector reports).
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
from typing import Any, Optional

from peers.cases import SEED, Case, Problem
from peers.git import Git
from peers.golang import Failed, GoError, GoFunc, Interp, Scope, StructVal, split_top, text_of

# fnmatch patterns over pkg/detectors/*; a detector takes the family of the first pattern that matches it. The
# issue's Azure families are storage keys, SAS tokens and Entra (AD) credentials; trufflehog's other Azure
# detectors (Batch, Cosmos DB, API Management, Container Registry, ...) are scored apart as "azure-other".
TRUFFLEHOG_DETECTORS = ["groq", "xai", "replicate", "huggingface", "anthropic", "azure_storage", "azuresastoken",
                        "azure_entra", "azure*"]
TRUFFLEHOG_FAMILY = {"azure_storage": "azure", "azuresastoken": "azure", "azure_entra": "azure",
                     "azure*": "azure-other"}


def _pieces_in(want: str, text: str) -> list[str]:
    """Split ``want`` greedily into the longest consecutive pieces that occur in ``text``."""
    pieces, pos = [], 0
    while pos < len(want):
        size = 0
        while pos + size < len(want) and want[pos:pos + size + 1] in text:
            size += 1
        if size:
            pieces.append(want[pos:pos + size])
        pos += max(size, 1)
    return pieces


def _want_secret(want: str, text: str) -> tuple[Optional[str], str]:
    """The credential inside ``text`` for a detector's expected RawV2 (often JSON or URL + key)."""
    if want in text:
        return want, ""
    try:
        obj = json.loads(want)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        values = [(k, v) for k, v in obj.items() if isinstance(v, str) and v and v in text]
        keyed = [v for k, v in values if re.search(r"(?i)key|pass|secret|token", k)]
        best = keyed or [v for _, v in values]
        if best:
            return max(best, key=len), "want is JSON; secret = its credential value"
    runs = [r for piece in _pieces_in(want, text) for r in re.findall(r"[^\s'\"<>{}]{8,}", piece)]
    not_urls = [r for r in runs if "://" not in r and not re.match(r"[\w.-]+\.(?:net|com|io|org)(?:/|$)", r)]
    if runs:
        return max(not_urls or runs, key=len), "want joins several values; secret = its longest non-URL part"
    return None, "want not found in input"


def _secret_of_wants(wants: list[str], text: str) -> tuple[Optional[str], str]:
    """The first expected result whose credential is not a URL (some detectors report URL + key)."""
    found = [_want_secret(w, text) for w in wants]
    for secret, how in found:
        if secret is not None and "://" not in secret:
            return secret, how
    return found[0]


def _table_rows(it: Interp, func: GoFunc) -> list[tuple[str, list]]:
    """Evaluate ``tests := []struct{…}{…}`` tables in a test function (other statements quietly, best effort)."""
    file, toks = func.file, func.file.toks
    scope = Scope(file.package.scope)
    tables = []
    for s, e in split_top(toks, func.body[0], func.body[1], ";"):
        assigns = s + 1 < e and toks[s + 1].kind == "op" and toks[s + 1].val in (":=", "=")
        if not (assigns or toks[s].val in ("var", "const")):
            continue
        is_table = assigns and [t.val for t in toks[s + 2:s + 5]] == ["[", "]", "struct"]
        try:
            it.exec_stmt(file, s, e, scope, tolerant=False)
        except GoError as err:
            if is_table:
                it.problem(file, err.line or toks[s].line, f"{func.name}: test table not evaluated: {err}")
            scope.vars[toks[s].val] = Failed(str(err))
            continue
        if is_table:
            tables.append((toks[s].val, scope.vars[toks[s].val]))
    return tables


def _trufflehog_row(it: Interp, func: GoFunc, row: Any, detector: str, family: str) -> Optional[Case]:
    try:
        text = text_of(row.get("input"))
        want = row.get("want") if "want" in row.fields else None
        name = text_of(row.get("name")) if "name" in row.fields else "?"
    except GoError as e:
        it.problem(func.file, e.line or func.line, f"{func.name}: test row dropped: {e}")
        return None
    note = f"{func.name} / {name}"
    if not want:
        return Case("trufflehog", func.file.path, detector, family, "fp", text, None, note)
    secret, how = _secret_of_wants([text_of(w) for w in want], text)
    extra = f"; {len(want)} expected results, secret from the first that is not a URL" if len(want) > 1 else ""
    note += (f"; {how}" if how else "") + extra
    return Case("trufflehog", func.file.path, detector, family, "tp", text, secret, note)


def _trufflehog_file(git: Git, path: str, detector: str, family: str, seed: int,
                     problems: list[Problem]) -> list[Case]:
    it = Interp("trufflehog", seed, problems)
    it.rng = random.Random(f"{seed}:{path}")
    package = it.load_package("test", {path: git.show(path)})
    cases: list[Case] = []
    for func in package.funcs.values():
        for table, rows in _table_rows(it, func):
            if not rows or not all(isinstance(r, StructVal) and "input" in r.fields for r in rows):
                it.problem(package.files[0], func.line, f"{func.name}: table {table} has no `input` field, skipped")
                continue
            cases.extend(c for c in (_trufflehog_row(it, func, r, detector, family) for r in rows) if c)
    if not cases:  # fall back to validPattern / invalidPattern style variables
        for name in package.scope.vars:
            if "pattern" in name.lower():
                try:
                    value = text_of(package.scope.lookup(name)[1])
                except GoError as e:
                    it.problem(package.files[0], e.line, f"{name}: {e}")
                    continue
                kind = "fp" if name.lower().startswith("invalid") else "tp"
                cases.append(Case("trufflehog", path, detector, family, kind, value, value if kind == "tp" else None,
                                  f"package variable {name}"))
    return cases


def trufflehog_cases(repo: str, detectors: Optional[list[str]] = None,
                     problems: Optional[list[Problem]] = None, seed: int = SEED) -> list[Case]:
    """Cases from the pattern test tables of trufflehog detectors (fnmatch patterns over pkg/detectors/*)."""
    problems = [] if problems is None else problems
    detectors = TRUFFLEHOG_DETECTORS if detectors is None else detectors
    git = Git(repo)
    names = sorted(p.rsplit("/", 1)[-1] for p in git.ls("pkg/detectors", recursive=False))
    cases: list[Case] = []
    taken: set[str] = set()
    for pattern in detectors:
        matched = fnmatch.filter(names, pattern)
        if not matched:
            problems.append(Problem("trufflehog", "pkg/detectors", 0, f"no detector directory matches {pattern!r}"))
        family = TRUFFLEHOG_FAMILY.get(pattern, pattern)
        for name in matched:
            if name in taken:
                continue
            taken.add(name)
            for path in git.ls(f"pkg/detectors/{name}"):
                if path.endswith("_test.go") and not path.endswith("_integration_test.go"):
                    cases.extend(_trufflehog_file(git, path, name, family, seed, problems))
    return cases
