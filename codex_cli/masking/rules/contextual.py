"""Name-keyed secrets: a value assigned to a name that says it is a credential.

``DB_PASSWORD=…``, ``export VAULT_TOKEN=…``, ``client_secret: …``, ``"api_key": "…"``,
``password = '…'``, ``apiKey := "…"``, ``$password = '…';``, ``'password' => '…'``,
``<password>…</password>``, ``--password=…`` and ``--token …``: only the value is masked.

Every match starts at a keyword (``pass``, ``pwd``, ``secret``, ``token``, ``key``, ``auth``,
``cred``, or a provider's name such as ``cloudflare``), the anchor, and runs through the rest of
the name, an operator and the value. The check then reads the whole name (looking back to where
it starts) and decides, as gitleaks' generic rule and detect-secrets' keyword plugin do:

- the name: ``password``, ``*_secret``, ``api_key``, ``access_token`` … are strong; a plain ``*_key``
  is weak (its value must look random); ``password_length``, ``max_tokens``, ``token_count``,
  ``public_key``, ``csrf_token``, ``key_id`` are not credentials at all;
- the value: never empty, ``None``/``null``/booleans/numbers, ``${VAR}``/``$VAR``/``{{ var }}``,
  ``os.environ[...]``/``process.env.X``, ``<your-password>``/``YOUR_API_KEY``/``xxxx``/``****``, a file
  path, a sentence, or (in code) a variable name or call;
- a value in a provider's own format is left to that provider's rule, so it is typed by provider.

The Hyperscan prefilter requires the operator (or a quote, or a ``--flag``) after the name, so
ordinary prose that mentions tokens and keys costs nothing on the fast path.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from codex_cli.masking.rules.base import LINE, LINES, Anchor, Hit, HsPattern, Rule, Span, entropy, lazy_pattern
from codex_cli.masking.rules.values import (
    bare_identifier,
    code_reference,
    first_cut,
    not_a_value,
    plain_word,
    prose,
    provider_token_at,
    random_enough,
)

# --- the shape: keyword, rest of the name, operator, value ---
_REST = r"[A-Za-z0-9_.\x80-\xff-]{0,48}"  # non-ASCII letters too (contraseña)
_NAME_END = r"(?:\\{0,2}[\"'`])?\]?(?:\[[^\]\r\n]{0,16}\])?"
_OPS = (":::=", "::=", ":=", "?=", ".=", "+=", "=>", "===", "!==", "==", "!=", "||", "=", ":", ",", "(", ">")
_OP = "|".join(re.escape(op) for op in _OPS)
# Comparisons take only a quoted value; argument lists (, and ( ) only a quoted key-like one: see _accept.
_QUOTED_ONLY = (b"===", b"!==", b"==", b"!=", b"||", b",", b"(")
_ARGUMENTS = (b",", b"(")
_OP_ANY = "|".join(re.escape(op) for op in _OPS if op.encode() not in _QUOTED_ONLY)
_OP_COMPARE = "|".join(re.escape(op) for op in _OPS if op.encode() in _QUOTED_ONLY and op.encode() not in _ARGUMENTS)
_OP_ARGUMENT = "|".join(re.escape(op) for op in _OPS if op.encode() in _ARGUMENTS)
_KEYLIKE_DIGIT = 24  # an argument value counts as a key only with a digit among its first 24 characters
_SP = r"[ \t]{0,8}"
_QUOTE_PREFIX = r"(?:@|[rRbBuUfF]{1,2})?"
# The rest of the name is matched atomically (a lookahead captures it, a back-reference consumes it), so a
# keyword inside a long word fails at once instead of backtracking through every shorter split.
# A type may sit between a name and its "=" (Go `var token string = "…"`, Python `token: str = "…"`, Kotlin
# and TypeScript `token: String = "…"`); after an XML tag the value may start on the next line.
# (In code a typed value is a quoted literal: `secret: BXIMbhBlC3=5hIb…` in YAML is no type and a value.)
_TYPE = (r"(?P<type>(?:[ \t]{1,4}|[ \t]{0,4}:[ \t]{0,4})[A-Za-z_][A-Za-z0-9_.\[\]|?]{0,40}"
         r"(?=[ \t]{0,8}:?=[ \t]{0,8}(?:@|[rRbBuUfF]{1,2})?[\"'`]))?")
_NEXT_LINE = r"(?:\r?\n[ \t]{0,16})?"
_VALUE_MAX = 4096
_TAIL = (f"(?=(?P<rest>{_REST}))(?P=rest)(?P<nq>\\\\{{0,2}}[\"'`])?"
         f"(?P<br>\\]?(?:\\[[^\\]\\r\\n]{{0,16}}\\])?){_TYPE}(?P<gap>{_SP})"
         f"(?:(?P<op>{_OP})(?P<gap2>{_SP}{_NEXT_LINE}))?"
         r"(?:" + _QUOTE_PREFIX + r"(?:\\(?P<eq>[\"'])(?P<secret>(?:(?!\\(?P=eq))[^\r\n]){1,%d}?)\\(?P=eq)"
         r"|\"(?P<secret2>(?:[^\"\\\r\n]|\\[^\r\n]){1,%d})\""
         r"|'(?P<secret3>(?:[^'\\\r\n]|\\[^\r\n]){1,%d})'"
         r"|`(?P<secret4>[^`\r\n]{1,%d})`)"
         r"|(?P<secret5>[^\s\"'`<\\]{1,%d}))") % ((_VALUE_MAX,) * 5)
_FLAG_REACH = 30
# A --flag or -flag (PowerShell, Windows tools): a dash that starts a word, then the name.
_FLAG = lazy_pattern(rb"(?<![A-Za-z0-9_.-])--?[A-Za-z0-9_.-]{0,%d}\Z" % _FLAG_REACH)


# What an accepted value starts like, so that values the check rejects anyway are no candidates: never
# a short identifier ("model", "int", "get_token"), never a number (16, 0.5), never code (settings.x,
# require(…)), never a quoted "<…>" ("</s>", "<your-password>"). Code such as `secret: int`,
# {"token": "model"}, max_tokens: 128 and "eos_token": "</s>" then costs the fast path nothing.
_ID = "[A-Za-z_]"
_NUMBERISH = "[0-9.eE+-]"


def _quoted(q: str) -> str:
    """A value in quote character ``q`` that the check could accept (never "${…")."""
    stop = f"{q}\\r\\n"
    return (f"{q}(?:[^A-Za-z_$0-9<{stop}]|\\$[^{{{stop}]|{_ID}{{1,11}}[^A-Za-z_0-9{stop}]|{_ID}{{1,11}}[0-9]"
            f"|[0-9]{_NUMBERISH}{{0,255}}[^0-9.eE+\\-{stop}]|{_ID}{{12}})")


_QUOTED_VALUE = f"{_QUOTE_PREFIX}\\\\{{0,2}}(?:" + "|".join(_quoted(q) for q in ("\"", "'", "`")) + ")"
_QUOTED_KEYLIKE = (f"{_QUOTE_PREFIX}\\\\{{0,2}}[\"'`]"
                   f"(?:[0-9]|[^\"'`\\r\\n/][^\"'`\\r\\n]{{0,{_KEYLIKE_DIGIT - 2}}}[0-9])")
_UNQUOTED_STOP = "\\s\"'`<\\\\"
_ANY_VALUE = (f"(?:{_QUOTED_VALUE}|[^A-Za-z_$0-9{_UNQUOTED_STOP}=]|\\$[^{{{_UNQUOTED_STOP}]"
              f"|{_ID}{{1,11}}[^A-Za-z_0-9{_UNQUOTED_STOP}.(\\[]|{_ID}{{1,11}}[0-9]|{_ID}{{1,11}}\\.[A-Za-z0-9]{{20}}"
              f"|[0-9]{_NUMBERISH}{{0,255}}[^0-9.eE+\\-{_UNQUOTED_STOP}]|{_ID}{{12}})")


_TYPE_HS = r"(?:(?:[ \t]{1,4}|[ \t]{0,4}:[ \t]{0,4})[A-Za-z_][A-Za-z0-9_.\[\]|?]{0,40})?"
_KEYWORDS = (b"pass", b"pwd", b"secret", b"token", b"key", b"auth", b"cred", b"contrase")
_PROVIDER_NAMES = (b"aws", b"cloudflare", b"cf_api", b"cf_token", b"discord", b"heroku", b"mailgun", b"atlassian",
                   b"jira", b"confluence", b"linear", b"twilio", b"datadog", b"dd_api", b"dd_app", b"okta", b"algolia",
                   b"wandb")


def _alternation(words: tuple[bytes, ...]) -> bytes:
    return b"(?:" + b"|".join(re.escape(w) for w in words) + b")"


# Two prefilter regexes for the generic keywords, which ordinary code and prose use often: every accepted match
# contains the keyword, then an operator and a value on the same line (on the next only after an XML tag's ">"),
# or a type, "=" and a quoted value, or a space and a quoted value; or it is a --flag (-flag) whose value follows
# a space. Provider names (cloudflare, discord, …) are rare in text, so their bare literal is prefilter enough.
_TYPE_HS = r"(?:[ \t]{1,4}|[ \t]{0,4}:[ \t]{0,4})[A-Za-z_][A-Za-z0-9_.\[\]|?]{0,40}"
_ASSIGNED = _alternation(_KEYWORDS) + (
    f"{_REST}{_NAME_END}(?:{_SP}(?:{_OP_ANY}){_SP}{_ANY_VALUE}|{_SP}>{_SP}{_NEXT_LINE}{_ANY_VALUE}"
    f"|{_TYPE_HS}{_SP}:?={_SP}{_QUOTED_VALUE}"
    f"|{_SP}(?:{_OP_COMPARE}){_SP}{_QUOTED_VALUE}"
    f"|{_SP}(?:{_OP_ARGUMENT}){_SP}{_QUOTED_KEYLIKE}|[ \\t]{{1,8}}{_QUOTED_VALUE})").encode()
_FLAGGED = (b"[^A-Za-z0-9_.-]-[A-Za-z0-9_.-]{0,%d}" % _FLAG_REACH + _alternation(_KEYWORDS)
            + f"{_REST}[ \\t]{{1,8}}{_ANY_VALUE}".encode())


# Provider-named rules: the name, an operator (or a space), then a value in a provider's shape, which always
# starts with 8 token characters (not "aws" inside a base64 blob, which the bare literal would find).
_NAMED_HS = _alternation(_PROVIDER_NAMES) + (
    f"{_REST}{_NAME_END}(?:{_TYPE_HS})?(?:{_SP}(?:{_OP}){_SP}{_NEXT_LINE}|[ \\t]{{1,8}}){_QUOTE_PREFIX}"
    f"\\\\{{0,2}}[\"'`]?[A-Za-z0-9][A-Za-z0-9/+_.-]{{7}}").encode()


def _rule(id: str, family: str, keywords: tuple[bytes, ...], description: str, check, generic: bool) -> Rule:
    assert all(k in (_KEYWORDS if generic else _PROVIDER_NAMES) for k in keywords)
    alternatives = "|".join(re.escape(k.decode()) for k in keywords)
    anchors = tuple(Anchor(k, kind=LINES, caseless=True) for k in keywords)  # a value may be on the next line
    regexes = (_ASSIGNED, _FLAGGED) if generic else (_NAMED_HS,)
    hs = tuple(HsPattern(regex, k, caseless=True, expand=True, unbounded=True) for k in keywords for regex in regexes)
    return Rule(id, family, f"(?i:{alternatives})" + _TAIL, anchors, description, hs=hs, check=check)


# --- reading the name ---
# the bytes a name's part before its keyword is made of: [A-Za-z0-9_.$@\x80-\xff-]
_NAME_BEFORE = bytes(sorted({*b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.$@-",
                             *range(0x80, 0x100)}))
_WORDS = lazy_pattern(rb"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_DIGIT = lazy_pattern(rb"[0-9]")
_LETTER = lazy_pattern(rb"[A-Za-z]")
_TRAILING = frozenset(b",;)]}")
_OPENERS = {ord(")"): b"(", ord("]"): b"[", ord("}"): b"{"}
_NEXT_FIELD = lazy_pattern(rb";[A-Za-z][A-Za-z0-9_]{1,40}=")
# settings.x, get_token(…), env[…]: code, not a literal (but s.ZC9Ecf4M5g9o34Q6RkzGsj0z, a Vault token, is one)
_ATTRIBUTE = lazy_pattern(rb"[A-Za-z_]{1,11}(?:[(\[]|\.(?![A-Za-z0-9]{20}))")
_ENV_NAME = lazy_pattern(rb"\$?[A-Z][A-Z0-9_]*")
_LINE_PREFIX = lazy_pattern(rb"[ \t]*(?:(?:export|set|setenv|ENV|ARG|declare -x)[ \t]+)?\Z")

STRONG, WEAK = 2, 1
# The credential word at the end of a word, and how strong the word makes the name.
_SUFFIXES = (("password", STRONG), ("passwd", STRONG), ("passphrase", STRONG), ("passcode", STRONG),
             ("secrete", STRONG), ("contrasena", STRONG), ("contrase", STRONG),
             ("pwd", STRONG), ("passwords", WEAK), ("secrets", WEAK), ("secret", STRONG), ("tokens", WEAK),
             ("token", STRONG), ("credentials", STRONG), ("credential", STRONG), ("creds", STRONG),
             ("keys", WEAK), ("key", WEAK), ("auth", STRONG), ("pass", STRONG))
# What may come before "pass" and "auth" inside one word (dbpass, basicauth); anything else is another word.
_PASS_STEMS = frozenset({"", "db", "user", "admin", "root", "mysql", "pg", "postgres", "redis", "smtp", "mail",
                         "ftp", "ldap", "proxy", "ssl", "store", "keystore", "truststore", "app", "api", "sudo",
                         "vault", "wifi", "sa", "sys", "master", "login", "rabbit", "rabbitmq", "mongo", "es"})
_AUTH_STEMS = frozenset({"", "basic", "http", "proxy", "user", "api", "bearer", "client"})
# Before "key": what makes it a credential, and what makes it an ordinary key.
_STRONG_KEY = frozenset({"db", "database", "api", "secret", "private", "priv", "access", "auth", "master",
                         "signing", "sign", "encryption", "encrypt", "enc", "client", "app", "application", "account",
                         "session",
                         "service", "subscription", "consumer", "license", "licence", "admin", "root", "rest",
                         "shared", "sharedaccess", "webhook", "hmac", "jwt", "bot", "dev", "developer", "write",
                         "read", "ingest", "ingestion", "deploy", "crypt", "cipher", "aes", "ssh", "gpg", "pgp",
                         "decryption", "decrypt", "storage", "server", "sdk", "management", "mgmt", "user"})
_NOT_CREDENTIAL_BEFORE = frozenset({
    "public", "pub", "publishable", "primary", "foreign", "sort", "partition", "range", "cache", "idempotency",
    "unique", "composite", "natural", "surrogate", "row", "lookup", "map", "dict", "hot", "short", "shortcut",
    "sequence", "schema", "bucket", "object", "cursor", "dedup", "dedupe", "group", "kv", "index", "search",
    "sharding", "shard", "routing", "hash", "cluster", "redis", "cache", "translation", "i18n", "label", "field",
    "column", "item", "entry", "dictionary", "registry", "metric", "event", "message", "s3", "blob", "file",
    "idx", "next", "prev", "previous", "page", "continuation", "pagination", "csrf", "xsrf", "max",
    "min", "num", "total", "eos", "bos", "pad", "unk", "mask", "sep", "cls", "special", "additional", "added",
    "start", "end", "stop", "prompt", "completion", "input", "output", "vocab", "cancel", "cancellation", "lexer",
    "parser", "syntax", "sync", "invalid", "bad", "missing", "no", "forgot", "show", "hide", "toggle", "confirm",
    "check", "validate", "verify", "generate", "random", "fake", "dummy", "mock", "sample", "example", "test",
    "keyboard", "turkey", "monkey", "donkey", "press", "pressed", "up", "down", "jsonweb",
})
# A preposition before the credential word names something else: keyVaultToStoreSecrets, path_to_token.
_PREPOSITIONS = frozenset({"to", "for", "from", "of", "with", "without", "into", "per", "by"})
_NOT_CREDENTIAL_AFTER = frozenset({
    "length", "len", "size", "count", "max", "min", "limit", "name", "names", "id", "ids", "url", "uri", "urls",
    "endpoint", "host", "port", "path", "paths", "file", "files", "dir", "directory", "folder", "type", "types",
    "kind", "field", "fields", "header", "headers", "prefix", "suffix", "env", "var", "variable", "variables",
    "policy", "policies", "format", "version", "hint", "label", "title", "text", "description", "desc", "help",
    "message", "msg", "error", "errors", "enabled", "disabled", "enable", "disable", "required", "optional",
    "expiry", "expires", "expiration", "expire", "expired", "ttl", "timeout", "lifetime", "age", "regex",
    "pattern", "rule", "rules", "validator", "validation", "validate", "strength", "changed", "change", "update",
    "updated", "created", "algorithm", "algo", "alg", "method", "mode", "provider", "manager", "storage",
    "location", "region", "source", "status", "state", "flag", "usage", "used", "index", "idx", "position",
    "pos", "offset", "start", "end", "char", "chars", "class", "style", "input", "placeholder", "schema",
    "template", "generator", "factory", "builder", "handler", "callback", "fn", "func", "function", "param",
    "params", "parameter", "arg", "args", "option", "options", "config", "configuration", "setting", "settings",
    "arn", "ref", "reference", "mount", "volume", "backend", "engine", "owner", "issuer", "audience", "aud",
    "iss", "scope", "scopes", "grant", "interval", "period", "delay", "retry", "retries", "attempts",
    "threshold", "seconds", "secs", "ms", "minutes", "hours", "days", "duration", "budget", "rate", "ratio",
    "weight", "weights", "embedding", "embeddings", "dim", "dims", "dimension", "mask", "map", "mapping",
    "dict", "list", "set", "table", "column", "col", "row", "display", "visible", "visibility", "reset",
    "policy", "rotation", "rotate", "store", "vault", "keyring", "pair", "ring", "board", "code", "frame", "word",
    "press", "pressed", "up", "down", "left", "right", "stroke", "strokes", "binding", "bindings", "event",
    "events", "listener", "id", "alias", "storetype", "length", "counter", "strategy", "class", "service",
    "hash", "hashes", "checksum", "digest", "fingerprint", "thumbprint", "str", "alphabet", "charset",
})


def _words(name: bytes) -> list[str]:
    return [w.decode().lower() for w in _WORDS().findall(name)]


def _credential_word(word: str) -> Optional[tuple[int, str, str]]:
    """(strength, credential word, what precedes it inside the word) for a word ending in a credential word."""
    for suffix, strength in _SUFFIXES:
        if word.endswith(suffix):
            stem = word[:-len(suffix)]
            if suffix == "pass" and stem not in _PASS_STEMS or suffix == "auth" and stem not in _AUTH_STEMS:
                return None
            return strength, suffix, stem
    return None


@functools.lru_cache(maxsize=4096)
def name_strength(name: bytes) -> int:
    """STRONG, WEAK, or 0 when the name is not a credential's (``password_length``, ``public_key``). Cached: a
    file names the same few settings over and over."""
    words = _words(name)
    for k in range(len(words) - 1, -1, -1):
        found = _credential_word(words[k])
        if found is None:
            continue
        strength, suffix, stem = found
        after = words[k + 1:]
        if suffix == "secret" and after == ["id"]:
            return STRONG  # a Vault AppRole secret_id is a credential, unlike other *_id
        if any(w in _NOT_CREDENTIAL_AFTER for w in after):
            return 0
        before = stem or (words[k - 1] if k else "")
        if before in _NOT_CREDENTIAL_BEFORE or any(w in _PREPOSITIONS for w in words[:k]):
            return 0
        if suffix in ("key", "keys") and before in _STRONG_KEY:
            return STRONG
        return strength
    return 0


# --- reading the value ---
_SECRETS = ("secret", "secret2", "secret3", "secret4")
_CODE_OPS = frozenset({b":=", b"=>", b"===", b"!==", b"==", b"!=", b"||", b"(", b",", b".=", b"+=", b"?=", b"::=",
                       b":::="})


def _name_start(buf: bytes, start: int) -> int:
    """Where the name whose keyword is at ``start`` begins: its run of name bytes, at most 64 back."""
    before = buf[max(0, start - 64):start]
    return start - (len(before) - len(before.rstrip(_NAME_BEFORE)))


def _value(hit: Hit) -> tuple[Span, bool]:
    """The value's span and whether it was quoted."""
    for name in _SECRETS:
        if hit.group(name) is not None:
            return hit.span(name), True
    return hit.span("secret5"), False


def _unquoted_end(buf: bytes, span: Span, literal: bool, query: bool) -> int:
    """Where an unquoted value ends: at ; in a shell line, at & in a query string; elsewhere before the
    closing punctuation that ends it (f(password=abc), {token: abc}, x = abc;)."""
    if query or literal:
        return span[0] + first_cut(buf[span[0]:span[1]], b"&#;" if query else b";")
    field = _NEXT_FIELD().search(buf, span[0], span[1])
    end = span[1] if field is None else field.start()  # AccountKey=…;BlobEndpoint=…: a connection string
    if end < span[1]:
        return end
    while end > span[0] and buf[end - 1] in _TRAILING:
        closer = buf[end - 1]
        opener = _OPENERS.get(closer)
        if opener is not None and buf.count(opener, span[0], end) >= buf.count(closer, span[0], end):
            break  # ${link} keeps its brace: it closes one the value opened
        end -= 1
    return end


def _keylike(value: bytes) -> bool:
    """An argument value that is a key: 8+ characters, letters and digits (one among the first 24), varied."""
    return (len(value) >= 8 and b" " not in value and entropy(value) >= 2.5 and _LETTER().search(value) is not None
            and _DIGIT().search(value, 0, _KEYLIKE_DIGIT) is not None)


def _accept(hit: Hit, strength_of, value_ok, argument_ok=_keylike) -> Optional[Span]:
    # The cheap structural vetoes first: most candidates in ordinary code fail one of them.
    buf, start = hit.buf, hit.start()
    op = hit.group("op")
    (vs, ve), quoted = _value(hit)
    flag = _FLAG().search(buf, max(0, start - _FLAG_REACH - 2), start) is not None
    if op is None:
        if not hit.group("gap"):
            return None
        if not quoted and not (flag and hit.group("nq") is None and not hit.group("br")):
            return None
    elif op in _QUOTED_ONLY and not quoted:
        return None
    elif op == b"," and hit.group("nq") is None:
        return None
    if op != b">" and b"\n" in (hit.group("gap2") or b""):
        return None  # only an XML element's value may start on the next line
    name_at = _name_start(buf, start)
    before = buf[name_at - 1:name_at]
    if op == b">" and before != b"<":
        return None
    rest_end = hit.span("rest")[1]
    strength = strength_of(buf[name_at:rest_end])
    if not strength:
        return None
    if not quoted:
        # NAME=value at a line's start or with an upper-case name (.env, shell), --flag values and an XML
        # element's text (a Jenkins {AQAAABAAAA…} secret) are literals, braces and all; elsewhere an unquoted
        # value may be code.
        line_start = buf.rfind(b"\n", 0, name_at) + 1
        tight = op == b"=" and not hit.group("gap") and not hit.group("gap2")
        literal = flag or op == b">" or (tight and (_LINE_PREFIX().match(buf, line_start, name_at) is not None
                                                    or _ENV_NAME().fullmatch(buf, name_at, rest_end) is not None))
        ve = _unquoted_end(buf, (vs, ve), literal, before in (b"?", b"&"))
        value = buf[vs:ve]
        if value.startswith(b"=") or _ATTRIBUTE().match(value) or (not literal and code_reference(value)):
            return None
        if bare_identifier(value):
            in_code = op in _CODE_OPS or (op == b"=" and not literal)
            has_digit = _DIGIT().search(value) is not None
            # {password: userPassword} names a variable; a random key may hold "Pwd" or "Key" by chance, with digits
            named = not has_digit and any(w in ("password", "passwd", "pass", "pwd", "token", "secret", "key", "auth",
                                                "credentials") for w in _words(value))
            if named or (in_code and not (len(value) >= 8 and has_digit)):
                return None
    value = buf[vs:ve]
    if _echoes(buf[name_at:rest_end], value):
        return None  # SN_id_Gost28147_89_None_KeyMeshing = "id-Gost28147-89-None-KeyMeshing": a name, not a key
    if op in _ARGUMENTS and not (argument_ok is None or argument_ok(value)):
        return None  # f("token", "model") is an argument list; only a key-like value there is a secret
    if not value_ok(value, strength, quoted):
        return None
    if provider_token_at(buf, vs):
        return None  # the provider's own rule masks it, under the provider's name
    return vs, ve


_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_NOT_ALNUM = bytes(c for c in range(256) if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122))


def _letters_digits(data: bytes) -> bytes:
    return data.translate(_LOWER, _NOT_ALNUM)


def _echoes(name: bytes, value: bytes) -> bool:
    """Whether the value spells (part of) the name it is assigned to, letters and digits only; a value that
    merely starts like its name (password = "password123") is still a password."""
    b = _letters_digits(value)
    return len(b) >= 8 and b in _letters_digits(name)


_QUERY = lazy_pattern(rb"\??[A-Za-z_]{1,16}=[^&\s]*(?:&[A-Za-z_]{1,16}=[^&\s]*)+")
_QUERY_FIELD = lazy_pattern(rb"=([^&\s]*)")
_MIXED = (lazy_pattern(rb"[a-z]"), lazy_pattern(rb"[A-Z]"), lazy_pattern(rb"[0-9]"))


def _public_fields(value: bytes) -> bool:
    """A query string none of whose fields looks like a key (a SAS token's st=…&se=…&sr=c without its sig=)."""
    if _QUERY().fullmatch(value) is None:
        return False
    for field in _QUERY_FIELD().findall(value):
        field = field.replace(b"%2B", b"+").replace(b"%2F", b"/").replace(b"%3D", b"=")
        if len(field) >= 16 and all(p().search(field) for p in _MIXED):
            return False
    return True


def _credential_value(value: bytes, strength: int, quoted: bool) -> bool:
    if not_a_value(value) or (quoted and (prose(value) or value.startswith(b"<"))) or plain_word(value):
        return False  # (a quoted "<…>" is a placeholder or a special token such as "</s>")
    if _public_fields(value):
        return False
    if strength == STRONG:
        return len(value) >= 4
    return random_enough(value)


_ASSIGNED_RE = lazy_pattern(_ASSIGNED, re.IGNORECASE)


def _assignment(hit: Hit, span: Span) -> Optional[Span]:
    # The prefilter's own test, for the pure-Python engine (Hyperscan has applied it already): most keywords in
    # ordinary code have no operator and value after them. A --flag's value after a space is _accept's to judge.
    buf, start = hit.buf, hit.start()
    if _ASSIGNED_RE().match(buf, start) is None and _FLAG().search(buf, max(0, start - _FLAG_REACH - 2), start) is None:
        return None
    return _accept(hit, name_strength, _credential_value)


def _shaped(names: tuple[str, ...], shapes: str, min_entropy: float = 2.5):
    """A check for a provider-named rule: the name contains a provider word, the value has the provider's shape."""
    shape = lazy_pattern(shapes.encode())

    def strength(name: bytes) -> int:
        words = _words(name)
        lowered = name.lower()
        if not any(n.encode() in lowered for n in names) or (words and words[-1] in _NOT_CREDENTIAL_AFTER):
            return 0
        return STRONG

    def value_ok(value: bytes, _strength: int, _quoted: bool) -> bool:
        from codex_cli.masking.rules.base import plausible_token

        return shape().fullmatch(value) is not None and plausible_token(value, min_entropy)

    def check(hit: Hit, span: Span) -> Optional[Span]:
        return _accept(hit, strength, value_ok, argument_ok=None)  # the provider's shape decides

    return check


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def _named(id: str, family: str, names: tuple[str, ...], shapes: str, description: str,
           min_entropy: float = 2.5) -> Rule:
    return _rule(id, family, tuple(n.encode() for n in names), description, _shaped(names, shapes, min_entropy),
                 generic=False)


def _yoda(hit: Hit, span: Span) -> Optional[Span]:
    """if ("value" == password): the name after the comparison must be a credential's, the value a secret."""
    strength = name_strength(hit.group("name") or b"")
    value = hit.buf[span[0]:span[1]]
    if not strength or provider_token_at(hit.buf, span[0]) or not _credential_value(value, strength, True):
        return None
    return span


_NAME_CHARS = r"A-Za-z0-9_$.\x80-\xff-"
_COMPARED = (r"(?<![A-Za-z0-9_])if[ \t]{0,4}\([ \t]{0,4}(?P<q>\\?[\"'`])(?P<secret>(?:(?!(?P=q))[^\r\n]){1,300}?)"
             rf"(?P=q)[ \t]{{0,8}}(?:===?|!==?)[ \t]{{0,8}}(?P<name>[A-Za-z_$][{_NAME_CHARS}]{{0,64}})")
_COMPARED_HS = (rb"if[ \t]{0,4}\([ \t]{0,4}\\?[\"'`][^\r\n]{1,300}?[\"'`][ \t]{0,8}[=!]==?[ \t]{0,8}[A-Za-z_$]"
                + f"[{_NAME_CHARS}]{{0,64}}(?i:".encode() + _alternation(_KEYWORDS) + b")")

RULES: tuple[Rule, ...] = (
    _named("aws-named-secret-key", "aws", ("aws",), r"[A-Za-z0-9/+]{40}",
           "a 40-character AWS secret access key under any AWS-flavoured name (AWS_KEY=…, awsSecret: …)",
           min_entropy=3.5),
    _named("cloudflare-api-key", "cloudflare", ("cloudflare", "cf_api", "cf_token"),
           r"[a-f0-9]{37}|[A-Za-z0-9_-]{40}", "Cloudflare global API key (37 hex) or API token (40) under a "
           "Cloudflare name"),
    _named("discord-token", "discord", ("discord",),
           r"[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,40}|[a-f0-9]{64}|[0-9]{17,20}"
           r"|[A-Za-z0-9_-]{32}", "Discord bot token, client secret, public key or client id under a Discord name"),
    _named("heroku-api-key-named", "heroku", ("heroku",), _UUID, "Heroku API key (a UUID) under a Heroku name"),
    _named("mailgun-signing-key", "mailgun", ("mailgun",),
           r"[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8}|(?:pub)?key-[a-f0-9]{32}|[a-f0-9]{32}",
           "Mailgun API or webhook signing key under a Mailgun name"),
    _named("atlassian-api-token-named", "atlassian", ("atlassian", "jira", "confluence"),
           r"[A-Za-z0-9]{24}", "Atlassian / Jira / Confluence API token (24 characters) under such a name",
           min_entropy=3.0),
    _named("linear-client-secret", "linear", ("linear",), r"[a-f0-9]{32}",
           "Linear client secret (32 hex) under a Linear name", min_entropy=3.0),
    _named("twilio-auth-token", "twilio", ("twilio",), r"[a-f0-9]{32}", "Twilio auth token under a Twilio name",
           min_entropy=3.0),
    _named("datadog-key", "datadog", ("datadog", "dd_api", "dd_app"), r"[a-f0-9]{32}|[a-f0-9]{40}",
           "Datadog API (32 hex) or application (40 hex) key under a Datadog name", min_entropy=3.0),
    _named("okta-token", "okta", ("okta",), r"00[A-Za-z0-9_-]{40}", "Okta API token under an Okta name"),
    _named("algolia-key", "algolia", ("algolia",), r"[a-f0-9]{32}", "Algolia API key under an Algolia name",
           min_entropy=3.0),
    _named("wandb-api-key", "wandb", ("wandb",), r"[a-f0-9]{40}|[A-Za-z0-9_]{86}",
           "Weights & Biases API key under a W&B name", min_entropy=3.0),
    _rule("credential-assignment", "credential", _KEYWORDS,
          "a value assigned to a credential's name (password, *_secret, api_key, *_token, …) in .env, shell, YAML, "
          "JSON, TOML, INI, code and --flags", _assignment, generic=True),
    Rule("credential-comparison", "credential", _COMPARED, (Anchor(b"if", kind=LINE),),
         'a value compared with a credential\'s name, value first: if ("…" == password)',
         hs=(HsPattern(_COMPARED_HS, b"if", expand=True),), check=_yoda),
)
