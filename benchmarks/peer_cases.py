"""True-positive and false-positive test cases taken from peer secret scanners' own test suites.

    python benchmarks/peer_cases.py --gitleaks DIR --detect-secrets DIR --trufflehog DIR --out cases.jsonl

The recall measurement of ``codex mask`` needs inputs that other people wrote. This module reads them at
run time from local git checkouts of three peers and never copies their text into this repository:

- gitleaks (MIT): ``git clone https://github.com/gitleaks/gitleaks``. Each rule in
  ``cmd/generate/config/rules/*.go`` builds its ``tps``/``fps`` lists in Go. A small Go tokenizer and
  interpreter evaluates the subset those files use (string literals, ``+``, composite literals, ``append``,
  ``fmt.Sprintf``, ``var``/``:=``, ``if``, ``for … range``) and runs the helpers in
  ``cmd/generate/config/utils/{generate,patterns}.go`` from the checkout itself. ``secrets.NewSecret(regex)``
  is replaced by a seeded sampler that walks Python's parse of the (converted) Go regex the way gitleaks'
  reggen generator does with its limit of 1: a repeat ``{n,m}`` with ``n >= 1`` gives ``n`` copies, ``?``,
  ``*`` and ``{0,m}`` give zero or one. Go map iteration is random, so maps are iterated sorted by key.
- detect-secrets (Apache-2.0): ``git clone https://github.com/Yelp/detect-secrets``. ``tests/plugins/*_test.py``
  are parsed with ``ast`` (never imported) and their ``@pytest.mark.parametrize`` rows evaluated with a
  restricted evaluator; ``randint`` is replaced by its lower bound.
- trufflehog (AGPL-3.0): ``git clone https://github.com/trufflesecurity/trufflehog``. The ``[]struct{…}``
  test tables (``input``/``want``) of ``pkg/detectors/<name>/*_test.go`` are evaluated with the same Go
  interpreter.

``Case.secret`` (tp only, None when unknown): for gitleaks the argument of ``GenerateSampleSecret(s)``, else
what the rule's own regex reports (its SecretGroup, else the first non-empty unnamed group, wrapping quotes
dropped), else the generated part; for detect-secrets the test's expected secret (flag-only rows: None); for
trufflehog the expected result when it occurs in the input, else its credential (JSON value or longest
non-URL part). A gitleaks fp that is another rule's tp text is dropped; one that a sibling rule of the same
file matches with enough entropy becomes that sibling's tp.

Every case is a :class:`Case`; ``--out`` writes one JSON object per line after a first ``{"meta": …}`` line
that records each source's commit, licence, the constructs that could not be evaluated (with file:line) and
notes (fps reclassified as credentials, rules re-run because a generated value failed the rule itself).
Output is deterministic for a seed (default 1234). Standard library only.
"""


import argparse
import ast
import base64
import fnmatch
import io
import json
import math
import random
import re
import subprocess
import sys
import textwrap
import tokenize
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

from peers.cases import CLONE_URLS, LICENSES, SEED, Case, Problem, spot_check
from peers.golang import (
    Failed,
    GoError,
    GoFunc,
    GoPackage,
    GStr,
    Interp,
    RuleResult,
    Scope,
    StructVal,
    compile_go_regex,
    split_top,
    text_of,
)

GITLEAKS_RULES_DIR = "cmd/generate/config/rules"
GITLEAKS_UTILS_FILES = ("cmd/generate/config/utils/generate.go", "cmd/generate/config/utils/patterns.go")
# rule file -> codex family of its rules (a rule id listed in GITLEAKS_RULE_FAMILY wins).
GITLEAKS_FAMILY = {
    "huggingface.go": "huggingface", "anthropic.go": "anthropic", "stripe.go": "stripe", "npm.go": "npm",
    "pypi.go": "pypi", "gitlab.go": "gitlab", "twilio.go": "twilio", "sendgrid.go": "sendgrid",
    "azure.go": "azure", "mailgun.go": "mailgun", "digitalocean.go": "digitalocean", "shopify.go": "shopify",
    "doppler.go": "doppler", "databricks.go": "databricks", "discord.go": "discord", "telegram.go": "telegram",
    "atlassian.go": "atlassian", "heroku.go": "heroku", "square.go": "square", "linear.go": "linear",
    "hashicorp_vault.go": "hashicorp", "grafana.go": "grafana", "cloudflare.go": "cloudflare",
    "curl.go": "basic-auth", "generic.go": "credential", "openai.go": "openai", "aws.go": "aws",
    "gcp.go": "google", "github.go": "github", "slack.go": "slack", "jwt.go": "jwt",
    "privatekey.go": "private-key", "xai.go": "xai", "groq.go": "groq", "replicate.go": "replicate",
}
GITLEAKS_RULE_FAMILY = {"curl-auth-user": "basic-auth", "curl-auth-header": "http-auth"}
GITLEAKS_PACKAGE_EXTRA = ("stopwords.go",)  # DefaultStopWords, read by newPlausibleSecret

# detect-secrets tests/plugins/<stem>_test.py -> codex family
DETECT_SECRETS_FAMILY = {
    "keyword": "credential", "basic_auth": "uri", "stripe_key": "stripe", "twilio": "twilio",
    "sendgrid": "sendgrid", "npm": "npm", "pypi_token": "pypi", "gitlab_token": "gitlab", "discord": "discord",
    "telegram_token": "telegram", "azure_storage_key": "azure", "square_oauth": "square", "openai": "openai",
    "aws_key": "aws", "github_token": "github", "slack": "slack", "jwt": "jwt", "private_key": "private-key",
    "mailchimp_key": "mailchimp",
}

# fnmatch patterns over pkg/detectors/*; a detector takes the family of the first pattern that matches it. The
# issue's Azure families are storage keys, SAS tokens and Entra (AD) credentials; trufflehog's other Azure
# detectors (Batch, Cosmos DB, API Management, Container Registry, ...) are scored apart as "azure-other".
TRUFFLEHOG_DETECTORS = ["groq", "xai", "replicate", "huggingface", "anthropic", "azure_storage", "azuresastoken",
                        "azure_entra", "azure*"]
TRUFFLEHOG_FAMILY = {"azure_storage": "azure", "azuresastoken": "azure", "azure_entra": "azure",
                     "azure*": "azure-other"}




# ---------------------------------------------------------------------------------------------------------
# git access


class _Git:
    """Read files of HEAD from a checkout (bare or not) without touching its work tree."""

    def __init__(self, repo: str):
        self.repo = repo

    def _run(self, *args: str) -> str:
        proc = subprocess.run(["git", "-C", self.repo, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise FileNotFoundError(f"git {' '.join(args)} in {self.repo}: {proc.stderr.strip()}")
        return proc.stdout

    def commit(self) -> str:
        return self._run("rev-parse", "HEAD").strip()

    def show(self, path: str) -> str:
        return self._run("show", f"HEAD:{path}")

    def ls(self, subdir: str, recursive: bool = True) -> list[str]:
        args = ["ls-tree", "--name-only", "HEAD"] + (["-r"] if recursive else [])
        return [p for p in self._run(*args, subdir.rstrip("/") + "/").splitlines() if p]


# ---------------------------------------------------------------------------------------------------------
# gitleaks


@dataclass
class _Rule:
    """One evaluated gitleaks rule function."""

    file: str
    func: str
    line: int
    rule_id: str
    family: str
    regex: Optional[re.Pattern]
    secret_group: int
    entropy: float
    tps: list
    fps: list


@dataclass
class _Found:
    secret: str
    start: int
    end: int
    how: str


def _regex_secret(rx: Optional[re.Pattern], text: str, group: int = 0) -> Optional[_Found]:
    """The secret a gitleaks rule reports for ``text``: its SecretGroup, else the first non-empty unnamed group.

    Named groups (jwt-base64 names the JWT header it saw) are labels, not secrets. Quotes that wrap the whole
    group (curl ``--user 'a:b'``) are dropped.
    """
    m = rx.search(text) if rx is not None else None
    if m is None:
        return None
    if not group:
        named = set(rx.groupindex.values())
        group = next((i for i in range(1, rx.groups + 1) if i not in named and m.group(i)), 0)
    start, end = m.span(group)
    how = f"secret from rule regex (group {group})"
    value = text[start:end]
    if len(value) > 2 and value[0] == value[-1] and value[0] in "'\"`":
        start, end, how = start + 1, end - 1, how + ", outer quotes dropped"
    return _Found(text[start:end], start, end, how)


def _mark_sample(value: Any, secret: GStr) -> Any:
    """Tag a GenerateSampleSecret(s) result with its secret (and where the generated parts landed)."""
    if not isinstance(value, GStr):
        return value
    gens = []
    pos = value.text.find(secret.text) if secret.text else -1
    while pos >= 0:
        gens.extend((s + pos, e + pos, r) for s, e, r in secret.gens)
        pos = value.text.find(secret.text, pos + 1)
    return GStr(value.text, tuple(gens), secret.text)


def _install_gitleaks_overrides(it: Interp, rules: GoPackage) -> None:
    """GenerateSampleSecret(s) run from the checkout and tag their results; newPlausibleSecret runs in Python."""
    utils = it.packages["utils"]
    for name in ("GenerateSampleSecrets", "GenerateSampleSecret"):
        if name not in utils.funcs:
            continue

        def sample(args: list, line: int, func: GoFunc = utils.funcs[name]) -> Any:
            result = it.call_func(func, args)
            if isinstance(result, list):
                return [_mark_sample(x, args[1]) for x in result]
            return _mark_sample(result, args[1])

        it.overrides[f"utils.{name}"] = sample
    plausible = rules.funcs.get("newPlausibleSecret")
    if plausible is not None:
        body = {t.val for t in plausible.file.toks[plausible.body[0]:plausible.body[1]]}
        if not {"[1-9]", "ContainsStopWord", "DefaultStopWords"} <= body:
            it.problem(plausible.file, plausible.line, "newPlausibleSecret changed upstream: emulation may be stale")
        it.overrides["newPlausibleSecret"] = lambda args, line: _plausible_secret(it, rules, args[0].text, line)


def _plausible_secret(it: Interp, rules: GoPackage, regex: str, line: int) -> GStr:
    """generic.go's newPlausibleSecret: NewSecret until it has a digit 1-9 and no DefaultStopWords entry."""
    stop_words = [w.text.lower() for w in rules.scope.lookup("DefaultStopWords")[1]]
    for _ in range(10_000):
        value = it.new_secret(regex, line)
        lower = value.text.lower()
        if re.search("[1-9]", lower) and not any(w in lower for w in stop_words):
            return value
    raise GoError(f"newPlausibleSecret({regex!r}): nothing plausible in 10000 tries", line)


def _rule_field(it: Interp, func: GoFunc, rule: Any, name: str, default: Any) -> Any:
    if not isinstance(rule, StructVal) or name not in rule.fields:
        return default
    try:
        return rule.get(name)
    except GoError as e:
        it.problem(func.file, e.line or func.line, f"{func.name}: field {name} not evaluated: {e}")
        return default


def _run_rule(it: Interp, func: GoFunc, attempt: int = 0) -> Optional[_Rule]:
    """Execute one ``func X() *config.Rule`` and collect what it passes to utils.Validate."""
    it.rng = random.Random(f"{it.seed}:{func.file.path}:{func.name}" + (f":{attempt}" if attempt else ""))
    ret = it.exec_block(func.file, func.body[0], func.body[1], Scope(func.file.package.scope), tolerant=True)
    value = ret.value if ret is not None else None
    if value == "paths":
        it.problem(func.file, func.line, f"{func.name}: path-only rule (ValidateWithPaths), no text cases")
        return None
    if not isinstance(value, RuleResult):
        it.problem(func.file, func.line, f"{func.name}: no `return utils.Validate(r, tps, fps)` evaluated")
        return None
    rule_id = text_of(_rule_field(it, func, value.rule, "RuleID", GStr(func.name)))
    regex = None
    pattern = _rule_field(it, func, value.rule, "Regex", None)
    if pattern is not None:
        try:
            regex = compile_go_regex(text_of(pattern))
        except GoError as e:
            it.problem(func.file, func.line, f"{rule_id}: {e}")
    basename = func.file.path.rsplit("/", 1)[-1]
    family = GITLEAKS_RULE_FAMILY.get(rule_id, GITLEAKS_FAMILY[basename])
    lists = []
    for label, items in (("tps", value.tps), ("fps", value.fps)):
        kept = [x for x in items if isinstance(x, GStr)]
        if len(kept) != len(items):
            it.problem(func.file, func.line, f"{rule_id}: {len(items) - len(kept)} non-string {label} dropped")
        lists.append(kept)
    return _Rule(func.file.path, func.name, func.line, rule_id, family, regex,
                 int(_rule_field(it, func, value.rule, "SecretGroup", 0) or 0),
                 float(_rule_field(it, func, value.rule, "Entropy", 0) or 0), lists[0], lists[1])


def _undetected(rule: _Rule, x: GStr) -> bool:
    """Would gitleaks' own Validate reject this tp (no regex match, or a secret below the rule's entropy)?"""
    found = _regex_secret(rule.regex, x.text, rule.secret_group)
    return found is None or _shannon(found.secret) < rule.entropy


def _run_rule_validated(it: Interp, func: GoFunc, info: list[str], tries: int = 50) -> Optional[_Rule]:
    """Run a rule until its generated tps pass the rule itself, as gitleaks' Validate demands.

    A generated value can fail the rule (square.go samples ``[0-9A-Za-z\\-_]``, a class whose range ``\\-_``
    also holds ``\\ ] ^``); gitleaks would stop with a fatal error and be run again, so the rule is re-run
    with the next seed. A literal tp that fails points at this module's regex conversion and is reported.
    """
    for attempt in range(tries):
        mark = len(it.problems)
        rule = _run_rule(it, func, attempt)
        if rule is None or rule.regex is None:
            return rule
        misses = [x for x in rule.tps if _undetected(rule, x)]
        for x in (x for x in misses if not x.gens):
            message = f"{rule.rule_id}: literal tp not matched by the Python regex: {x.text[:60]!r}"
            it.problem(func.file, func.line, message)
        if not any(x.gens for x in misses):
            if attempt:
                info.append(f"{rule.file}: {rule.rule_id}: generated tps failed the rule, re-run {attempt} times")
            return rule
        del it.problems[mark:]
    it.problem(func.file, func.line, f"{func.name}: generated tps still fail the rule after {tries} runs")
    return rule


def _generated_note(x: GStr) -> str:
    regexes = list(dict.fromkeys(r for _, _, r in x.gens))
    return "generated from regex " + ", ".join(regexes) if regexes else ""


def _gitleaks_tp(rule: _Rule, x: GStr) -> Case:
    notes = []
    secret: Optional[str] = None
    found = _regex_secret(rule.regex, x.text, rule.secret_group)
    if x.sample is not None:
        secret = x.sample
        notes.append("secret = argument of GenerateSampleSecret(s)")
    elif x.gens:
        lo, hi = min(s for s, _, _ in x.gens), max(e for _, e, _ in x.gens)
        if found and found.start <= lo and hi <= found.end:
            secret, how = found.secret, found.how
        else:
            secret, how = x.text[lo:hi], "secret = the generated part"
        notes.append(how)
    elif found:
        secret = found.secret
        notes.append(found.how)
    else:
        notes.append("rule regex did not match, secret unknown")
    notes.append(_generated_note(x))
    note = "; ".join(n for n in notes if n)
    return Case("gitleaks", rule.file, rule.rule_id, rule.family, "tp", x.text, secret, note)


def _shannon(data: str) -> float:
    if not data:
        return 0.0
    counts = Counter(data.encode())
    return -sum(c / len(data.encode()) * math.log2(c / len(data.encode())) for c in counts.values())


def _reclassify_fp(rule: _Rule, text: str, tp_texts: dict, siblings: list[_Rule]) -> tuple[Optional[Case], str]:
    """Is this fp really a credential? (the tp case to emit or None, and a message when reclassified).

    An fp equal to another rule's tp text (cloudflare's three rules list each other's keys as fps) is dropped:
    that tp is already emitted. An fp that a sibling rule of the same file matches with enough entropy
    (anthropic-api-key lists an admin key) becomes a tp of that sibling.
    """
    other = tp_texts.get(text)
    if other is not None and other.rule != rule.rule_id:
        return None, f"{rule.file}: fp of {rule.rule_id} dropped: it is a tp of {other.rule}: {text[:60]!r}"
    for sib in siblings:
        found = _regex_secret(sib.regex, text, sib.secret_group)
        if sib.rule_id != rule.rule_id and found and _shannon(found.secret) >= sib.entropy:
            note = (f"fp of {rule.rule_id} reclassified: matches sibling rule {sib.rule_id} "
                    f"(entropy {_shannon(found.secret):.2f} >= {sib.entropy})")
            case = Case("gitleaks", rule.file, rule.rule_id, sib.family, "tp", text, found.secret, note)
            return case, f"{rule.file}: {note}: {text[:60]!r}"
    return None, ""


def _gitleaks_build_cases(rules: list[_Rule], info: list[str]) -> list[Case]:
    tp_cases = {id(r): [_gitleaks_tp(r, x) for x in r.tps] for r in rules}
    tp_texts: dict[str, Case] = {}
    for r in rules:
        for case in tp_cases[id(r)]:
            tp_texts.setdefault(case.text, case)
    out: list[Case] = []
    for r in rules:
        out.extend(tp_cases[id(r)])
        siblings = [s for s in rules if s.file == r.file]
        for x in r.fps:
            case, message = _reclassify_fp(r, x.text, tp_texts, siblings)
            if message:
                info.append(message)
                if case is not None:
                    out.append(case)
            else:
                out.append(Case("gitleaks", r.file, r.rule_id, r.family, "fp", x.text, None, _generated_note(x)))
    return out


def gitleaks_cases(repo: str, seed: int = SEED, problems: Optional[list[Problem]] = None,
                   stats: Optional[Counter] = None, info: Optional[list[str]] = None) -> list[Case]:
    """Cases from gitleaks' rule files (see GITLEAKS_FAMILY), generated deterministically for ``seed``.

    ``problems`` receives what could not be evaluated, ``stats`` generator counters and ``info`` the fps that
    were reclassified (see :func:`_reclassify_fp`).
    """
    problems = [] if problems is None else problems
    info = [] if info is None else info
    git = _Git(repo)
    it = Interp("gitleaks", seed, problems)
    it.load_package("utils", {p: git.show(p) for p in GITLEAKS_UTILS_FILES})
    present = {p.rsplit("/", 1)[-1] for p in git.ls(GITLEAKS_RULES_DIR)}
    names = [f for f in list(GITLEAKS_FAMILY) + list(GITLEAKS_PACKAGE_EXTRA) if f in present]
    missing = [f for f in GITLEAKS_FAMILY if f not in present]
    if missing:
        info.append(f"{GITLEAKS_RULES_DIR}: no rule file {', '.join(missing)} at this commit")
    paths = [f"{GITLEAKS_RULES_DIR}/{f}" for f in names]
    package = it.load_package("rules", {p: git.show(p) for p in paths})
    _install_gitleaks_overrides(it, package)
    rules = []
    for func in package.funcs.values():
        if func.file.path.rsplit("/", 1)[-1] in GITLEAKS_FAMILY and func.result == "*config.Rule" and not func.params:
            rule = _run_rule_validated(it, func, info)
            if rule is not None:
                rules.append(rule)
    if stats is not None:
        stats.update(it.stats)
        stats["rule_functions"] += len(rules)
        for regex in it.generated_failures:
            problems.append(Problem("gitleaks", GITLEAKS_RULES_DIR, 0, f"generated value never fullmatched {regex!r}"))
    return _gitleaks_build_cases(rules, info)


# ---------------------------------------------------------------------------------------------------------
# trufflehog


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


def _trufflehog_file(git: _Git, path: str, detector: str, family: str, seed: int,
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
    git = _Git(repo)
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


# ---------------------------------------------------------------------------------------------------------
# detect-secrets


class _PyError(Exception):
    """A Python expression outside the restricted evaluator."""


@dataclass
class _PyFailed:
    message: str


_DS_TEXT_ARGS = ("payload", "line", "file_content", "content")  # parametrize names that hold the scanned text
_STR_METHODS = {"format", "encode", "decode", "upper", "lower", "strip", "replace", "join"}


def _py_eval(node: ast.AST, env: dict) -> Any:
    """Evaluate literals, names, + * %, slicing, str methods, base64/textwrap/str/randint (its lower bound)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise _PyError(f"undefined name {node.id}")
        if isinstance(env[node.id], _PyFailed):
            raise _PyError(f"{node.id} unavailable: {env[node.id].message}")
        return env[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_py_eval(e, env) for e in node.elts]
        return tuple(values) if isinstance(node, ast.Tuple) else values
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult, ast.Mod)):
        left, right = _py_eval(node.left, env), _py_eval(node.right, env)
        return {ast.Add: lambda: left + right, ast.Mult: lambda: left * right, ast.Mod: lambda: left % right}[
            type(node.op)]()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_py_eval(node.operand, env)
    if isinstance(node, ast.Subscript):
        value = _py_eval(node.value, env)
        sl = node.slice
        if isinstance(sl, ast.Slice):
            parts = [None if p is None else _py_eval(p, env) for p in (sl.lower, sl.upper, sl.step)]
            return value[slice(*parts)]
        return value[_py_eval(sl, env)]
    if isinstance(node, ast.Call):
        return _py_call(node, env)
    raise _PyError(f"unsupported expression {type(node).__name__}")


def _py_call(node: ast.Call, env: dict) -> Any:
    args = [_py_eval(a, env) for a in node.args]
    if node.keywords:
        raise _PyError("keyword arguments not supported")
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in _STR_METHODS and not (
            isinstance(func.value, ast.Name) and func.value.id in ("base64", "textwrap")):
        target = _py_eval(func.value, env)
        if not isinstance(target, (str, bytes)):
            raise _PyError(f".{func.attr}() on {type(target).__name__}")
        return getattr(target, func.attr)(*args)
    name = ast.unparse(func)
    library: dict[str, Callable] = {
        "str": str, "len": len, "int": int, "randint": lambda lo, hi: lo, "base64.b64encode": base64.b64encode,
        "base64.b64decode": base64.b64decode, "textwrap.dedent": textwrap.dedent,
    }
    if name not in library:
        raise _PyError(f"call of {name} not supported")
    return library[name](*args)


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
        return (_py_eval(node, env),)
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.param":
        return tuple(_py_eval(a, env) for a in node.args)
    if not isinstance(node, ast.Tuple) or len(node.elts) != width:
        raise _PyError(f"row is not a {width}-tuple")
    return tuple(_py_eval(e, env) for e in node.elts)


def _rows_of(list_node: ast.AST, width: int, env: dict, origin: str = "", prefix: tuple = ()) -> list[_Row]:
    if not isinstance(list_node, (ast.List, ast.Tuple)):
        raise _PyError(f"parametrize values are a {type(list_node).__name__}")
    rows, prev_end = [], list_node.lineno
    for elt in list_node.elts:
        rows.append(_Row(prefix + _row_values(elt, width - len(prefix), env), elt, prev_end + 1, origin))
        prev_end = elt.end_lineno
    return rows


def _parametrize_rows(deco: ast.Call, env: dict, assigns: dict) -> tuple[list[str], list[_Row]]:
    """argnames and rows of ``@pytest.mark.parametrize``; keyword_test's parse_test_cases([...]) is unrolled."""
    names = _py_eval(deco.args[0], env)
    argnames = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    values = deco.args[1]
    if isinstance(values, ast.Call) and ast.unparse(values.func) == "parse_test_cases":
        rows: list[_Row] = []
        for pair in values.args[0].elts:
            ext, list_name = _py_eval(pair.elts[0], env), pair.elts[1].id
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
    raise _PyError(f"parametrize names {argnames} not understood")


def _module_env(tree: ast.Module) -> tuple[dict, dict]:
    env: dict = {}
    assigns: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            assigns[name] = node.value
            try:
                env[name] = _py_eval(node.value, env)
            except _PyError as e:
                env[name] = _PyFailed(f"{e} (line {node.lineno})")
    return env, assigns


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
    env, assigns = _module_env(tree)
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
            except (_PyError, KeyError, AttributeError) as e:
                problems.append(Problem("detect-secrets", path, deco.lineno, f"{func.name}: parametrize skipped: {e}"))
                continue
            func_src = ast.get_source_segment(src, func) or ""
            for row in rows:
                try:
                    kind, secret, note = _ds_classify(argnames, row.values, func_src)
                except (_PyError, StopIteration) as e:
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
    git = _Git(repo)
    present = set(git.ls("tests/plugins"))
    cases: list[Case] = []
    for plugin, family in DETECT_SECRETS_FAMILY.items():
        path = f"tests/plugins/{plugin}_test.py"
        if path not in present:
            problems.append(Problem("detect-secrets", path, 0, "test file not in this checkout"))
            continue
        cases.extend(_ds_file(path, plugin, family, git.show(path), problems))
    return cases


# ---------------------------------------------------------------------------------------------------------
# all sources, report, command line


def all_cases(gitleaks: Optional[str], detect_secrets: Optional[str], trufflehog: Optional[str], seed: int = SEED,
              problems: Optional[list[Problem]] = None, stats: Optional[Counter] = None,
              info: Optional[list[str]] = None) -> list[Case]:
    """Cases of every source whose checkout is given (None skips a source)."""
    problems = [] if problems is None else problems
    cases: list[Case] = []
    if gitleaks:
        cases.extend(gitleaks_cases(gitleaks, seed, problems, stats, info))
    if detect_secrets:
        cases.extend(detect_secrets_cases(detect_secrets, problems))
    if trufflehog:
        cases.extend(trufflehog_cases(trufflehog, None, problems, seed))
    return cases




def _print_report(cases: list[Case], problems: list[Problem], stats: Counter, info: list[str],
                  out: Any = sys.stdout) -> None:
    by_family = Counter((c.source, c.family, c.kind) for c in cases)
    print(f"{'source':<15} {'family':<14} {'tp':>5} {'fp':>5}", file=out)
    for source, family in sorted({(s, f) for s, f, _ in by_family}):
        print(f"{source:<15} {family:<14} {by_family[source, family, 'tp']:>5} {by_family[source, family, 'fp']:>5}",
              file=out)
    totals = Counter((c.source, c.kind) for c in cases)
    for source in sorted({s for s, _ in totals}):
        print(f"{source:<15} {'(total)':<14} {totals[source, 'tp']:>5} {totals[source, 'fp']:>5}", file=out)
    print("\ncases per file:", file=out)
    per_file = Counter((c.file, c.kind) for c in cases)
    for path in sorted({p for p, _ in per_file}):
        print(f"  {path:<75} tp {per_file[path, 'tp']:>4}  fp {per_file[path, 'fp']:>4}", file=out)
    tps = [c for c in cases if c.kind == "tp"]
    print(f"\ntp with a known secret: {sum(c.secret is not None for c in tps)}/{len(tps)}", file=out)
    print(f"notes: files absent, fps reclassified, rules re-run ({len(info)}):", file=out)
    for line in info:
        print(f"  {line}", file=out)
    print(f"generated values that fullmatch their regex: {stats['generated_fullmatch']}, "
          f"that do not: {stats['generated_no_fullmatch']}", file=out)
    failures = spot_check(cases)
    print(f"spot check (secret in text): {'ok' if not failures else f'{len(failures)} failures'}", file=out)
    for f in failures:
        print(f"  {f}", file=out)
    print(f"\nconstructs not evaluated ({len(problems)}):", file=out)
    for p in problems:
        print(f"  {p}", file=out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gitleaks", help="checkout of " + CLONE_URLS["gitleaks"])
    parser.add_argument("--detect-secrets", help="checkout of " + CLONE_URLS["detect-secrets"])
    parser.add_argument("--trufflehog", help="checkout of " + CLONE_URLS["trufflehog"])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", help="write the cases here as JSON lines (first line: meta)")
    args = parser.parse_args(argv)
    repos = {"gitleaks": args.gitleaks, "detect-secrets": args.detect_secrets, "trufflehog": args.trufflehog}
    if not any(repos.values()):
        parser.error("give at least one of --gitleaks, --detect-secrets, --trufflehog")
    problems: list[Problem] = []
    stats: Counter = Counter()
    info: list[str] = []
    cases = all_cases(args.gitleaks, args.detect_secrets, args.trufflehog, args.seed, problems, stats, info)
    commits = {name: _Git(repo).commit() for name, repo in repos.items() if repo}
    _print_report(cases, problems, stats, info)
    if args.out:
        meta = {
            "seed": args.seed,
            "sources": {n: {"commit": commits[n], "license": LICENSES[n], "url": CLONE_URLS[n]} for n in commits},
            "counts": {f"{s}/{k}": n for (s, k), n in sorted(Counter((c.source, c.kind) for c in cases).items())},
            "problems": [str(p) for p in problems],
            "notes": info,
        }
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"meta": meta}) + "\n")
            for case in cases:
                fh.write(json.dumps({**asdict(case), "commit": commits[case.source]}, ensure_ascii=False) + "\n")
        print(f"\nwrote {len(cases)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
