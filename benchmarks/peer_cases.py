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

from __future__ import annotations

import argparse
import ast
import base64
import fnmatch
import io
import json
import math
import random
import re
import string
import subprocess
import sys
import textwrap
import tokenize
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

if sys.version_info >= (3, 11):  # the regex parser the sampler walks (private, stable within a version)
    import re._constants as _sre_constants
    import re._parser as _sre_parse
else:
    import sre_constants as _sre_constants
    import sre_parse as _sre_parse

SEED = 1234

LICENSES = {"gitleaks": "MIT", "detect-secrets": "Apache-2.0", "trufflehog": "AGPL-3.0"}
CLONE_URLS = {
    "gitleaks": "https://github.com/gitleaks/gitleaks",
    "detect-secrets": "https://github.com/Yelp/detect-secrets",
    "trufflehog": "https://github.com/trufflesecurity/trufflehog",
}

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


@dataclass(frozen=True)
class Case:
    """One test input of a peer scanner: a credential ("tp") or a look-alike that is not one ("fp")."""

    source: str  # "gitleaks" | "detect-secrets" | "trufflehog"
    file: str  # path inside the peer repo
    rule: str  # the peer's rule id / plugin / detector name
    family: str  # codex family name
    kind: str  # "tp" (a credential) or "fp" (not a credential)
    text: str  # the test input text (may be multi-line)
    secret: Optional[str]  # the credential inside text when known (tp only), else None
    note: str = ""


@dataclass(frozen=True)
class Problem:
    """A construct that could not be evaluated, so its cases are missing from the output."""

    source: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.file}:{self.line}: {self.message}"


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
# Go regular expressions: conversion to Python and a seeded sampler (gitleaks' secrets.NewSecret)


class GoError(Exception):
    """A Go construct (or regex) that this module cannot evaluate."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.line = line


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z", "space": r"\s",
    "xdigit": "0-9a-fA-F", "word": r"\w", "punct": r"!-/:-@\[-`{-~", "blank": r" \t", "cntrl": r"\x00-\x1f\x7f",
    "print": r" -~", "graph": r"!-~", "ascii": r"\x00-\x7f",
}


def _class_end(pat: str, i: int) -> int:
    """Index just past the character class that starts at ``pat[i] == '['``."""
    j = i + 1
    if j < len(pat) and pat[j] == "^":
        j += 1
    if j < len(pat) and pat[j] == "]":
        j += 1
    while j < len(pat):
        if pat[j] == "\\":
            j += 2
        elif pat.startswith("[:", j) and ":]" in pat[j + 2:]:
            j = pat.index(":]", j + 2) + 2
        elif pat[j] == "]":
            return j + 1
        else:
            j += 1
    raise GoError(f"unterminated character class in {pat!r}")


def _convert_class(cls: str) -> str:
    def posix(m: re.Match) -> str:
        name = m.group(2)
        if name not in _POSIX_CLASSES or m.group(1):
            raise GoError(f"POSIX class [:{m.group(1)}{name}:] not supported")
        return _POSIX_CLASSES[name]

    if re.search(r"\\[pP]", cls):
        raise GoError(f"Unicode class in {cls!r} not supported")
    return re.sub(r"\[:(\^?)(\w+):\]", posix, cls)


class _FlagFrame:
    """Flags set by ``(?i)``-style groups inside one Go group; they last until the group closes."""

    def __init__(self) -> None:
        self.on: set[str] = set()
        self.off: set[str] = set()
        self.open = 0

    def apply(self, spec: str) -> None:
        on, _, off = spec.partition("-")
        if "U" in spec:
            raise GoError("the (?U) flag has no Python equivalent")
        self.on = (self.on - set(off)) | set(on)
        self.off = (self.off - set(on)) | set(off)

    def opener(self) -> str:
        if not self.on and not self.off:
            return ""
        self.open += 1
        off = "-" + "".join(sorted(self.off)) if self.off else ""
        return f"(?{''.join(sorted(self.on))}{off}:"


def go_regex_to_py(pat: str) -> str:
    """Rewrite a Go (RE2) pattern so Python's ``re`` reads it with the same meaning.

    Python only accepts a global flag group such as ``(?i)`` at the very start, while Go lets it appear
    anywhere and apply to the rest of the enclosing group (across ``|``); such groups become scoped
    ``(?i:…)`` groups. ``\\z`` becomes ``\\Z``, ``(?<name>`` becomes ``(?P<name>`` and POSIX classes are
    expanded. Unicode classes and ``(?U)`` raise :class:`GoError`.
    """
    out: list[str] = []
    stack = [_FlagFrame()]
    i = 0
    while i < len(pat):
        c = pat[i]
        if c == "\\":
            i = _convert_escape(pat, i, out)
        elif c == "[":
            j = _class_end(pat, i)
            out.append(_convert_class(pat[i:j]))
            i = j
        elif c == "(":
            i = _convert_group_open(pat, i, out, stack)
        elif c in "|)":
            frame = stack[-1]
            out.append(")" * frame.open + c)
            frame.open = 0
            if c == "|":
                out.append(frame.opener())
            elif len(stack) > 1:
                stack.pop()
            i += 1
        else:
            out.append(c)
            i += 1
    out.append(")" * stack[0].open)
    return "".join(out)


def _convert_group_open(pat: str, i: int, out: list[str], stack: list[_FlagFrame]) -> int:
    """Convert the ``(`` at ``pat[i]``; a Go flag group becomes (part of) a scoped Python flag group."""
    m = re.match(r"\(\?([imsU-]+)\)", pat[i:])
    if m and i == 0:  # leading flags are global in both languages
        out.append(m.group(0))
    elif m:
        frame = stack[-1]
        frame.apply(m.group(1))
        out.append(")" * frame.open)
        frame.open = 0
        out.append(frame.opener())
    elif re.match(r"\(\?<[A-Za-z_]", pat[i:]):
        out.append("(?P<")
        stack.append(_FlagFrame())
        return i + 3
    else:
        out.append("(")
        stack.append(_FlagFrame())
    return i + (len(m.group(0)) if m else 1)


def _convert_escape(pat: str, i: int, out: list[str]) -> int:
    nxt = pat[i + 1:i + 2]
    if nxt == "z":
        out.append(r"\Z")
    elif nxt in ("p", "P", "Q", "C"):
        raise GoError(f"regex escape \\{nxt} not supported")
    elif nxt == "x" and pat[i + 2:i + 3] == "{":
        end = pat.index("}", i)
        out.append(re.escape(chr(int(pat[i + 3:end], 16))))
        return end + 1
    else:
        out.append(pat[i:i + 2])
    return i + 2


def compile_go_regex(pat: str) -> re.Pattern:
    """Compile a Go pattern with Python's ``re`` (ASCII classes, as in Go)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return re.compile(go_regex_to_py(pat), re.ASCII)
        except re.error as e:
            raise GoError(f"regex does not compile in Python ({e}): {pat!r}") from None


# reggen's alphabet for '.', negated classes and the like.
_PRINTABLE = string.digits + string.ascii_letters + string.punctuation + " \t\n\r"
_PRINTABLE_NO_NL = _PRINTABLE[:-2]
_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_WORD": string.ascii_letters + string.digits + "_",
    "CATEGORY_SPACE": " \t\n\r\f\v",
}


class RegexSampler:
    """Seeded random strings that match a Go regex, with reggen's ``Generate(1)`` repeat counts."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._parse = _sre_parse.parse
        self._c = _sre_constants

    def sample(self, go_pattern: str) -> str:
        py = go_regex_to_py(go_pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = self._parse(py, re.ASCII)
            except re.error as e:
                raise GoError(f"regex does not parse in Python ({e}): {go_pattern!r}") from None
        return self._gen(list(parsed), parsed.state.flags, {})

    def _gen(self, items: list, flags: int, groups: dict) -> str:
        c = self._c
        out = []
        for op, av in items:
            if op is c.LITERAL:
                out.append(chr(av))
            elif op is c.NOT_LITERAL:
                out.append(self.rng.choice([ch for ch in _PRINTABLE_NO_NL if ord(ch) != av]))
            elif op is c.ANY:
                out.append(self.rng.choice(_PRINTABLE if flags & c.SRE_FLAG_DOTALL else _PRINTABLE_NO_NL))
            elif op is c.IN:
                out.append(self._gen_class(av))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                lo, hi, sub = av
                count = self.rng.randrange(2) if lo == 0 and hi >= 1 else lo
                out.extend(self._gen(list(sub), flags, groups) for _ in range(count))
            elif op is c.SUBPATTERN:
                gid, add, remove, sub = av
                text = self._gen(list(sub), (flags | add) & ~remove, groups)
                if gid:
                    groups[gid] = text
                out.append(text)
            elif op is c.BRANCH:
                out.append(self._gen(list(self.rng.choice(av[1])), flags, groups))
            elif op is c.GROUPREF:
                out.append(groups.get(av, ""))
            elif op not in (c.AT, c.ASSERT, c.ASSERT_NOT):
                raise GoError(f"regex construct {op} not supported by the sampler")
        return "".join(out)

    def _gen_class(self, items: list) -> str:
        c = self._c
        chars: set[str] = set()
        negate = False
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                chars.add(chr(av))
            elif op is c.RANGE:
                chars.update(chr(x) for x in range(av[0], av[1] + 1))
            elif op is c.CATEGORY:
                name = str(av)
                base = _CATEGORY_CHARS[name.replace("NOT_", "")]
                chars.update(base if "NOT_" not in name else (ch for ch in _PRINTABLE if ch not in base))
            else:
                raise GoError(f"class item {op} not supported by the sampler")
        pool = [ch for ch in _PRINTABLE if ch not in chars] if negate else sorted(chars)
        if not pool:
            raise GoError("empty character class")
        return self.rng.choice(pool)


# ---------------------------------------------------------------------------------------------------------
# Go tokenizer


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


def _match_close(toks: list[Tok], i: int) -> int:
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


def _split_top(toks: list[Tok], start: int, end: int, sep: str) -> list[tuple[int, int]]:
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


# ---------------------------------------------------------------------------------------------------------
# Go values


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


def _text(value: Any) -> str:
    if isinstance(value, GStr):
        return value.text
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return str(value)


# ---------------------------------------------------------------------------------------------------------
# Go files and packages


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


def _parse_imports(toks: list[Tok], s: int, e: int, imports: dict[str, str]) -> None:
    if toks[s + 1].kind == "op" and toks[s + 1].val == "(":
        specs = _split_top(toks, s + 2, _match_close(toks, s + 1), ";")
    else:
        specs = [(s + 1, e)]
    for a, b in specs:
        path = toks[b - 1].val
        alias = toks[a].val if b - a == 2 else path.rsplit("/", 1)[-1]
        imports[alias] = path.rsplit("/", 1)[-1]


def _parse_func(file: GoFile, s: int, e: int) -> Optional[GoFunc]:
    toks = file.toks
    i = s + 1
    if toks[i].kind == "op" and toks[i].val == "(":  # a method: not needed here
        return None
    name = toks[i].val
    close = _match_close(toks, i + 1)
    params = []
    for a, b in _split_top(toks, i + 2, close, ","):
        variadic = any(t.kind == "op" and t.val == "..." for t in toks[a:b])
        params.append("..." + toks[a].val if variadic else toks[a].val)
    j = close + 1
    while j < e and not (toks[j].kind == "op" and toks[j].val == "{"):
        j += 1
    if j >= e:
        return None
    result = "".join(str(t.val) for t in toks[close + 1:j])
    return GoFunc(name, params, file, (j + 1, _match_close(toks, j)), result, toks[s].line)


# ---------------------------------------------------------------------------------------------------------
# The interpreter


_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4, "|": 4, "^": 4, "*": 5, "/": 5, "%": 5,
}


class _Ret:
    def __init__(self, value: Any):
        self.value = value


class _Expr:
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
            left = _binary(tok.val, left, self.expr(prec + 1), tok.line)

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
        if tok.val in Interp.BUILTINS:
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
            self.pos = _match_close(self.toks, self.pos) + 1
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
                self.it.problem(self.file, e.line or line, f"map entry {_text(key)!r} dropped: {e}")
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


def _binary(op: str, left: Any, right: Any, line: int) -> Any:
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
        return GStr(json.dumps(_text(arg)))
    if verb[-1] == "d":
        return GStr(("%" + verb[1:-1] + "d") % arg)
    return GStr(("%" + verb[1:-1] + "s") % _text(arg))


class Interp:
    """Runs the subset of Go that peer test files use, with a few library functions in Python."""

    BUILTINS = {"append", "len", "make", "new", "string", "byte", "rune", "int", "float64"}

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
            for s, e in _split_top(file.toks, 0, len(file.toks) - 1, ";"):
                self._top_level(file, s, e)
        return package

    def _top_level(self, file: GoFile, s: int, e: int) -> None:
        head = file.toks[s].val
        if head == "import":
            _parse_imports(file.toks, s, e, file.imports)
        elif head in ("var", "const"):
            for name, (a, b) in self._specs(file, s, e):
                file.package.scope.vars[name] = Lazy(self, file, a, b, file.package.scope)
        elif head == "func":
            func = _parse_func(file, s, e)
            if func is not None:
                file.package.funcs[func.name] = func

    def _specs(self, file: GoFile, s: int, e: int) -> list[tuple[str, tuple[int, int]]]:
        """``var``/``const`` specs as (name, value token range); a spec without a value gets its type's zero."""
        toks = file.toks
        if toks[s + 1].kind == "op" and toks[s + 1].val == "(":
            specs = _split_top(toks, s + 2, _match_close(toks, s + 1), ";")
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
            return self.zero_value(_Expr(self, file, -start, end, scope).parse_type() if -start < end else None)
        ex = _Expr(self, file, start, end, scope)
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
            return bool(compile_go_regex(obj.text).search(_text(args[0])))
        raise GoError(f"method {type(obj).__name__}.{name} not supported", line)

    # -- statements ------------------------------------------------------------------------------------
    def exec_block(self, file: GoFile, start: int, end: int, scope: Scope, tolerant: bool = False) -> Optional[_Ret]:
        """Run statements; ``tolerant`` records a failing statement as a problem and goes on."""
        for s, e in _split_top(file.toks, start, end, ";"):
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
                i = _match_close(toks, i)
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
            scope.assign(name, _binary("+", scope.lookup(name)[1], value, toks[s].line))
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
        ex = _Expr(self, file, start, end, scope)
        ex.no_literal = True
        value = ex.expr()
        if not ex.at("{"):
            raise GoError("unsupported if/for header", file.toks[start].line)
        close = _match_close(file.toks, ex.pos)
        return value, ex.pos + 1, close

    def exec_if(self, file: GoFile, s: int, e: int, scope: Scope) -> Optional[_Ret]:
        toks = file.toks
        cond, a, b = self._header(file, s + 1, e, scope)
        if cond:
            return self.exec_block(file, a, b, Scope(scope))
        if b + 1 < e and toks[b + 1].val == "else":
            if toks[b + 2].val == "if":
                return self.exec_if(file, b + 2, e, scope)
            return self.exec_block(file, b + 3, _match_close(toks, b + 2), Scope(scope))
        return None

    def exec_for(self, file: GoFile, s: int, e: int, scope: Scope) -> Optional[_Ret]:
        toks = file.toks
        rng = next((i for i in range(s, e) if toks[i].kind == "ident" and toks[i].val == "range"), None)
        if rng is None or toks[rng - 1].val not in (":=", "="):
            raise GoError("only `for k, v := range x` loops are supported", toks[s].line)
        names = [t.val for t in toks[s + 1:rng - 1] if t.kind == "ident"]
        seq, a, b = self._header(file, rng + 1, e, scope)
        if isinstance(seq, dict):  # Go's map order is random: iterate sorted by key
            items = sorted(seq.items(), key=lambda kv: _text(kv[0]))
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
        for a, b in _split_top(file.toks, s + 4, e - 1, ","):
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
        data = _text(args[0]).encode()
        out = encode(data).decode()
        return GStr(out if pad else out.rstrip("="))

    return run


_LIBRARY: dict[str, Callable[[Interp, list, int], Any]] = {
    "append": _lib_append,
    "make": _lib_make,
    "len": lambda it, a, line: len(a[0].text if isinstance(a[0], GStr) else a[0] or []),
    "string": lambda it, a, line: a[0] if isinstance(a[0], GStr) else GStr(chr(a[0]) if isinstance(a[0], int)
                                                                          else _text(a[0])),
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
    rule_id = _text(_rule_field(it, func, value.rule, "RuleID", GStr(func.name)))
    regex = None
    pattern = _rule_field(it, func, value.rule, "Regex", None)
    if pattern is not None:
        try:
            regex = compile_go_regex(_text(pattern))
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
    for s, e in _split_top(toks, func.body[0], func.body[1], ";"):
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
        text = _text(row.get("input"))
        want = row.get("want") if "want" in row.fields else None
        name = _text(row.get("name")) if "name" in row.fields else "?"
    except GoError as e:
        it.problem(func.file, e.line or func.line, f"{func.name}: test row dropped: {e}")
        return None
    note = f"{func.name} / {name}"
    if not want:
        return Case("trufflehog", func.file.path, detector, family, "fp", text, None, note)
    secret, how = _secret_of_wants([_text(w) for w in want], text)
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
                    value = _text(package.scope.lookup(name)[1])
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


def spot_check(cases: list[Case]) -> list[str]:
    """Failures of the invariants: a tp's secret is inside its text, an fp has no secret."""
    failures = []
    for c in cases:
        if c.kind == "tp" and c.secret is not None and c.secret not in c.text:
            failures.append(f"{c.source} {c.rule}: secret {c.secret[:40]!r} not in text")
        if c.kind == "fp" and c.secret is not None:
            failures.append(f"{c.source} {c.rule}: fp with a secret")
    return failures


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
