"""Cases from gitleaks' rule files: each rule's ``tps`` and ``fps`` lists, built by running its Go.

Each rule in ``cmd/generate/config/rules/*.go`` builds its ``tps``/``fps`` lists in Go. The Go evaluator
(:mod:`peers.golang`) runs the rule functions and the helpers in ``cmd/generate/config/utils/{generate,patterns}.go``
from the checkout itself. ``secrets.NewSecret(regex)`` is answered by the seeded reggen sampler, and a rule
whose generated tps fail the rule itself is re-run with the next seed, as gitleaks' ``Validate`` would demand.

A case's secret is the argument of ``GenerateSampleSecret(s)``, else what the rule's own regex reports (its
SecretGroup, else the first non-empty unnamed group, wrapping quotes dropped), else the generated part. An fp
that is another rule's tp text is dropped; one that a sibling rule of the same file matches with enough
entropy becomes that sibling's tp.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

from peers.cases import SEED, Case, Problem
from peers.git import Git
from peers.golang import (
    GoError,
    GoFunc,
    GoPackage,
    GStr,
    Interp,
    RuleResult,
    Scope,
    StructVal,
    compile_go_regex,
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
    git = Git(repo)
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
