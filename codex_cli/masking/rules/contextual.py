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

import re
from typing import Optional

from codex_cli.masking.rules.base import LINE, Anchor, Hit, HsPattern, Rule, Span
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
_TAIL = (f"(?=(?P<rest>{_REST}))(?P=rest)(?P<nq>\\\\{{0,2}}[\"'`])?"
         f"(?P<br>\\]?(?:\\[[^\\]\\r\\n]{{0,16}}\\])?)(?P<gap>{_SP})"
         f"(?:(?P<op>{_OP})(?P<gap2>{_SP}))?"
         r"(?:" + _QUOTE_PREFIX + r"(?:\\(?P<eq>[\"'])(?P<secret>(?:(?!\\(?P=eq))[^\r\n]){1,256}?)\\(?P=eq)"
         r"|\"(?P<secret2>(?:[^\"\\\r\n]|\\[^\r\n]){1,256})\""
         r"|'(?P<secret3>(?:[^'\\\r\n]|\\[^\r\n]){1,256})'"
         r"|`(?P<secret4>[^`\r\n]{1,256})`)"
         r"|(?P<secret5>[^\s\"'`<\\]{1,256}))")
_FLAG_REACH = 30
_FLAG = re.compile(rb"--[A-Za-z0-9_.-]{0,%d}\Z" % _FLAG_REACH)


# What an accepted value starts like: never one short word of letters ("model", "int"), which the check
# rejects anyway (plain_word), so code such as `secret: int` and {"token": "model"} is no candidate.
_QUOTED_VALUE = (f"{_QUOTE_PREFIX}\\\\{{0,2}}[\"'`](?:[A-Za-z]{{0,11}}[^A-Za-z\"'`\\r\\n]|[A-Za-z]{{12}})")
_QUOTED_KEYLIKE = (f"{_QUOTE_PREFIX}\\\\{{0,2}}[\"'`]"
                   f"(?:[0-9]|[^\"'`\\r\\n/][^\"'`\\r\\n]{{0,{_KEYLIKE_DIGIT - 2}}}[0-9])")
_ANY_VALUE = (f"(?:{_QUOTED_VALUE}|[A-Za-z]{{1,11}}[^A-Za-z\\s\"'`<\\\\.(\\[]|[^A-Za-z\\s\"'`<\\\\=]"
              f"|[A-Za-z]{{12}})")


_KEYWORDS = (b"pass", b"pwd", b"secret", b"token", b"key", b"auth", b"cred", b"contrase")
_PROVIDER_NAMES = (b"aws", b"cloudflare", b"cf_api", b"cf_token", b"discord", b"heroku", b"mailgun", b"atlassian",
                   b"jira", b"confluence", b"linear", b"twilio", b"datadog", b"dd_api", b"dd_app", b"okta", b"algolia",
                   b"wandb")


def _alternation(words: tuple[bytes, ...]) -> bytes:
    return b"(?:" + b"|".join(re.escape(w) for w in words) + b")"


# One prefilter regex for the generic keywords, which ordinary code and prose use often: every accepted match
# contains it, an operator and a value (or a quoted value) after the name; and one for --flags. Provider names
# (cloudflare, discord, …) are rare in text, so their bare literal is prefilter enough (and cheaper to scan).
_ASSIGNED = _alternation(_KEYWORDS) + (
    f"{_REST}{_NAME_END}(?:{_SP}(?:{_OP_ANY}){_SP}{_ANY_VALUE}|{_SP}(?:{_OP_COMPARE}){_SP}{_QUOTED_VALUE}"
    f"|{_SP}(?:{_OP_ARGUMENT}){_SP}{_QUOTED_KEYLIKE}|[ \\t]{{1,8}}{_QUOTED_VALUE})").encode()
_FLAGGED = (b"--[A-Za-z0-9_.-]{0,%d}" % _FLAG_REACH + _alternation(_KEYWORDS) + _REST.encode() + b"[ \\t]{1,8}"
            + _ANY_VALUE.encode())


def _rule(id: str, family: str, keywords: tuple[bytes, ...], description: str, check, generic: bool) -> Rule:
    assert all(k in (_KEYWORDS if generic else _PROVIDER_NAMES) for k in keywords)
    alternatives = "|".join(re.escape(k.decode()) for k in keywords)
    anchors = tuple(Anchor(k, kind=LINE, caseless=True) for k in keywords)
    hs = tuple(HsPattern(regex, k, caseless=True, expand=True) for k in keywords for regex in (_ASSIGNED, _FLAGGED)) \
        if generic else ()
    return Rule(id, family, f"(?i:{alternatives})" + _TAIL, anchors, description, hs=hs, check=check)


# --- reading the name ---
_NAME_BEFORE = re.compile(rb"[A-Za-z0-9_.$@\x80-\xff-]*\Z")  # the part of a name before its keyword
_WORDS = re.compile(rb"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_DIGIT = re.compile(rb"[0-9]")
_TRAILING = frozenset(b",;)]}")
_OPENERS = {ord(")"): b"(", ord("]"): b"[", ord("}"): b"{"}
_ATTRIBUTE = re.compile(rb"[A-Za-z]{1,11}[.(\[]")  # settings.x, require(…), env[…]: code, never a literal
_ENV_NAME = re.compile(rb"\$?[A-Z][A-Z0-9_]*")
_LINE_PREFIX = re.compile(rb"[ \t]*(?:(?:export|set|setenv|ENV|ARG|declare -x)[ \t]+)?\Z")

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
    "keyboard", "turkey", "monkey", "donkey", "press", "pressed", "up", "down",
})
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
})


def _words(name: bytes) -> list[str]:
    return [w.decode().lower() for w in _WORDS.findall(name)]


def _credential_word(word: str) -> Optional[tuple[int, str, str]]:
    """(strength, credential word, what precedes it inside the word) for a word ending in a credential word."""
    for suffix, strength in _SUFFIXES:
        if word.endswith(suffix):
            stem = word[:-len(suffix)]
            if suffix == "pass" and stem not in _PASS_STEMS or suffix == "auth" and stem not in _AUTH_STEMS:
                return None
            return strength, suffix, stem
    return None


def name_strength(name: bytes) -> int:
    """STRONG, WEAK, or 0 when the name is not a credential's (``password_length``, ``public_key``)."""
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
        if before in _NOT_CREDENTIAL_BEFORE:
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
    return _NAME_BEFORE.search(buf, max(0, start - 64), start).start()


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
    end = span[1]
    while end > span[0] and buf[end - 1] in _TRAILING:
        closer = buf[end - 1]
        opener = _OPENERS.get(closer)
        if opener is not None and buf.count(opener, span[0], end) >= buf.count(closer, span[0], end):
            break  # ${link} keeps its brace: it closes one the value opened
        end -= 1
    return end


def _accept(hit: Hit, strength_of, value_ok) -> Optional[Span]:
    buf, start = hit.buf, hit.start()
    name_at = _name_start(buf, start)
    rest_end = hit.span("rest")[1]
    strength = strength_of(buf[name_at:rest_end])
    if not strength:
        return None
    op = hit.group("op")
    (vs, ve), quoted = _value(hit)
    if provider_token_at(buf, vs):
        return None  # the provider's own rule masks it, under the provider's name
    before = buf[name_at - 1:name_at]
    flag = _FLAG.search(buf, max(0, start - _FLAG_REACH - 2), start) is not None
    if op is None:
        if not hit.group("gap"):
            return None
        if not quoted and not (flag and hit.group("nq") is None and not hit.group("br")):
            return None
    elif op in _QUOTED_ONLY and not quoted:
        return None
    elif op == b"," and hit.group("nq") is None:
        return None
    elif op == b">" and before != b"<":
        return None
    if not quoted:
        # NAME=value at a line's start or with an upper-case name (.env, shell), and --flag values, are
        # literals, parentheses and all; elsewhere an unquoted value may be code.
        line_start = buf.rfind(b"\n", 0, name_at) + 1
        tight = op == b"=" and not hit.group("gap") and not hit.group("gap2")
        literal = flag or (tight and (_LINE_PREFIX.match(buf, line_start, name_at) is not None
                                      or _ENV_NAME.fullmatch(buf, name_at, rest_end) is not None))
        ve = _unquoted_end(buf, (vs, ve), literal, before in (b"?", b"&"))
        value = buf[vs:ve]
        if value.startswith(b"=") or _ATTRIBUTE.match(value) or (not literal and code_reference(value)):
            return None
        if bare_identifier(value):
            in_code = op in _CODE_OPS or (op == b"=" and not literal)
            named = any(w in ("password", "passwd", "pass", "pwd", "token", "secret", "key", "auth", "credentials")
                        for w in _words(value))
            if named or (in_code and not (len(value) >= 8 and any(48 <= c <= 57 for c in value))):
                return None
    value = buf[vs:ve]
    if op in _ARGUMENTS and not (random_enough(value, 8, 2.5) and _DIGIT.search(value, 0, _KEYLIKE_DIGIT)):
        return None  # f("token", "model") is an argument list; only a key-like value there is a secret
    if not value_ok(value, strength, quoted):
        return None
    return vs, ve


def _credential_value(value: bytes, strength: int, quoted: bool) -> bool:
    if not_a_value(value) or (quoted and prose(value)) or plain_word(value):
        return False
    if strength == STRONG:
        return len(value) >= 4
    return random_enough(value)


def _assignment(hit: Hit, span: Span) -> Optional[Span]:
    return _accept(hit, name_strength, _credential_value)


def _shaped(names: tuple[str, ...], shapes: str, min_entropy: float = 2.5):
    """A check for a provider-named rule: the name contains a provider word, the value has the provider's shape."""
    shape = re.compile(shapes.encode())

    def strength(name: bytes) -> int:
        words = _words(name)
        if not any(n in name.decode().lower() for n in names) or (words and words[-1] in _NOT_CREDENTIAL_AFTER):
            return 0
        return STRONG

    def value_ok(value: bytes, _strength: int, _quoted: bool) -> bool:
        from codex_cli.masking.rules.base import plausible_token

        return shape.fullmatch(value) is not None and plausible_token(value, min_entropy)

    def check(hit: Hit, span: Span) -> Optional[Span]:
        return _accept(hit, strength, value_ok)

    return check


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def _named(id: str, family: str, names: tuple[str, ...], shapes: str, description: str,
           min_entropy: float = 2.5) -> Rule:
    return _rule(id, family, tuple(n.encode() for n in names), description, _shaped(names, shapes, min_entropy),
                 generic=False)


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
)
