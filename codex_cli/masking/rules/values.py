"""Is this value a secret? The judgements shared by the structured and name-keyed rules.

A value assigned to ``password`` may be a real password, or ``None``, ``${DB_PASSWORD}``,
``<your-password>``, ``os.environ["X"]``, a file path or a UI string. These checks tell them
apart the way gitleaks' allowlists and detect-secrets' filters do: by shape, never by looking
anything up.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from codex_cli.masking.rules.base import entropy, gated_pattern, lazy_pattern, sequence_runs

NULLISH = frozenset({
    b"none", b"null", b"nil", b"undefined", b"true", b"false", b"yes", b"no", b"on", b"off", b"n/a", b"na",
    b"empty", b"blank", b"required", b"optional", b"string", b"str", b"text", b"bool", b"boolean", b"int",
    b"number", b"object", b"any", b"bytes", b"char", b"password", b"passwd", b"pass", b"pwd", b"secret",
    b"token", b"key", b"apikey", b"api_key", b"api-key", b"value", b"default", b"changeit", b"changeme",
    b"test", b"testing", b"admin", b"username", b"user", b"root", b"guest", b"demo", b"foo", b"bar", b"baz",
    b"foobar", b"secret_key", b"access_token", b"auth_token", b"credentials", b"private_key", b"mypassword",
    b"yourpassword", b"todo", b"tbd", b"fixme",
})
# 16, -0.5, 1e-4 and number-like runs such as 2024-01-31
_NUMBER = lazy_pattern(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9][0-9.eE+-]*")
_PLAIN = lazy_pattern(rb"[A-Za-z_]{1,11}")
# ${VAR} {{ var }} #{var} %(var)s %{var} $(cmd) <<: *anchor; $VAR and $1 but not a bcrypt hash ($2b$…)
# A reference rather than a value: ${VAR} ${env:X} {{ var }} ${{ secrets.X }} #{var} %(var)s %{var} $(cmd) $VAR $1
# %VAR% *anchor; but not a password that merely contains "${" or "{{" (a bcrypt hash $2b$… is no $VAR either).
_TEMPLATE = gated_pattern(rb"\$\{[A-Za-z_][A-Za-z0-9_.:-]*\}|\$?\{\{[ \t]*[A-Za-z_][A-Za-z0-9_.:\[\]'\" |-]*\}\}|"
                       rb"^\$\{|^(?:#\{[^}]*\}|%\([A-Za-z_]\w*\)[sdr]|%\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9]"
                       rb"|%[A-Za-z_]+%|\*[A-Za-z].*)$", (b"$", b"{", b"#", b"%", b"*"))
_REFERENCE = lazy_pattern(
    rb"(?i)^(?:os\.environ|os\.getenv|getenv|process\.env|import\.meta\.env|system\.getenv|environment\.|env\.|env:|"
    rb"env\[|\$env:|config\.|settings\.|secrets\.|vars\.|inputs\.|self\.|this\.|args\.|opts\.|options\.|params\.|"
    rb"request\.|req\.|ctx\.|context\.|props\.|!vault|!ref|!sub|!getatt|!secret|!env|vault:|ssm:|arn:aws:|"
    rb"projects/[^/]+/secrets/|file:|op://|keyring:|cmd:|sops:)")
# Placeholder words count only as whole words in one of their usual casings (your_api_key, YOUR_API_KEY,
# <YourToken>, changeme, xxxx): a random key holds "toDo" or "xXx" now and then, and must still be masked.
_PLACEHOLDER_WORDS = (b"your", b"example", b"sample", b"dummy", b"fake", b"placeholder", b"changeme",
                      b"changeit", b"replace", b"replaceme", b"redacted", b"insert", b"enter", b"here", b"notreal",
                      b"todo", b"fixme", b"mock", b"lorem", b"ipsum", b"test")


_LONG_WORDS = (b"example", b"sample", b"placeholder", b"changeme", b"changeit", b"redacted", b"replaceme",
               b"notreal")


def _placeholder_pattern() -> bytes:
    lower = b"|".join(_PLACEHOLDER_WORDS)
    upper = b"|".join(w.upper() for w in _PLACEHOLDER_WORDS)
    title = b"|".join(w.capitalize() for w in _PLACEHOLDER_WORDS)
    return (rb"(?<![A-Za-z])(?:(?:" + lower + rb"|" + title + rb")(?![a-z])|(?:" + upper + rb")(?![A-Z]))"
            rb"|xxxx|XXXX|\*{3,}|\.{3,}|#{3,}|<[^<>]*>|\[[A-Za-z0-9 _:-]*\]|not[_-]?a[_-]?real"
            # words of six letters or more count anywhere (wJalr…EXAMPLEKEY): a random value holds one by chance
            # about once in 10^9
            rb"|" + b"|".join(f for w in _LONG_WORDS for f in (w, w.upper(), w.capitalize())))


_PLACEHOLDER = gated_pattern(_placeholder_pattern(), _PLACEHOLDER_WORDS + _LONG_WORDS + (
    b"xxxx", b"***", b"...", b"###", b"<", b"[", b"not"))
_PATH = lazy_pattern(rb"^(?:~?/|\.{1,2}/|[A-Za-z]:\\|\\\\)|\.(?:pem|key|crt|cer|der|p12|pfx|jks|json|ya?ml|txt|env|"
                   rb"ini|cfg|conf|toml|pub|gpg|asc|keystore|kdbx)$")
_REPEATED = lazy_pattern(rb"^(.)\1*$", re.DOTALL)
_ALNUM = lazy_pattern(rb"[A-Za-z0-9]")
_PROSE_END = lazy_pattern(rb"[?!.:]$")
_PROSE_WORDS = lazy_pattern(rb"(?i)\b(?:password|passwd|token|secret|key|your|enter|please|must|should|invalid|"
                          rb"incorrect|forgot|reset|required|characters)\b")
_IDENTIFIER = lazy_pattern(rb"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED = lazy_pattern(rb"[A-Za-z_$][A-Za-z0-9_$]*(?:(?:\.|::|->)[A-Za-z_$][A-Za-z0-9_$]*)+(?:\(\))?")
_CALL = lazy_pattern(rb"[A-Za-z_$][A-Za-z0-9_$.]*[(\[]")
_UUID = lazy_pattern(rb"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = lazy_pattern(rb"(?i)[0-9a-f]+")
# the left side of another assignment ("telegram_api_token = ", "token:"): code around a quote, not a value
_ASSIGNMENT = lazy_pattern(rb"[A-Za-z0-9_.-]*(?:[ \t]+=|[ \t]*:)[ \t]*")  # (not base64's "=" padding)
# a dotted lower-case name with three parts or more (jetbrains.mps.v8_elimination, com.example.app)
_PROPERTY = lazy_pattern(rb"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_-]*){2,}")


def not_a_value(value: bytes) -> bool:
    """Empty, null-ish, a number, a reference or template, a placeholder, a path, one repeated character."""
    return (not value or value.lower() in NULLISH or _NUMBER().fullmatch(value) is not None
            or _TEMPLATE.found(value) or _REFERENCE().match(value) is not None
            or _PLACEHOLDER.found(value) or _PATH().search(value) is not None
            or _REPEATED().match(value) is not None or _ALNUM().search(value) is None
            or ((b"=" in value or b":" in value) and _ASSIGNMENT().fullmatch(value) is not None)
            or _PROPERTY().fullmatch(value) is not None
            or sequential(value))


def sequential(value: bytes) -> bool:
    """An alphabet or a counting run rather than a key (ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef…0123456789): 16
    characters or more, most of them in runs of four consecutive ones. A short "abcd1234" stays a password."""
    return len(value) >= 16 and sequence_runs(value, 4) * 10 >= len(value) * 6


def plain_word(value: bytes) -> bool:
    """One short word or name ("model", "Token", "postgres", "get_token"): a label, a default or a variable."""
    return _PLAIN().fullmatch(value) is not None


def prose(value: bytes) -> bool:
    """A sentence rather than a secret: UI text such as "Forgot password?" or "Enter your token"."""
    if b" " not in value:
        return False
    return (_PROSE_END().search(value) is not None or _PROSE_WORDS().search(value) is not None
            or value.count(b" ") >= 6)


def code_reference(value: bytes) -> bool:
    """An expression, not a literal: ``get_password()``, ``self.token``, ``cfg["key"]``, ``Optional[str]``."""
    return (_CALL().match(value) is not None or value.startswith((b"{", b"[", b"(")) or value.endswith(b"{")
            or (_DOTTED().fullmatch(value) is not None and _RANDOM_PART().search(value) is None))


# a dotted part no attribute name looks like: 20+ letters and digits with a digit (a Vault s.ZC9Ecf4M5g9o34Q6Rk…)
_RANDOM_PART = lazy_pattern(rb"\.(?=[A-Za-z]{0,19}[0-9])[A-Za-z0-9]{20,}\b")


def bare_identifier(value: bytes) -> bool:
    """A name such as ``user_password`` (a variable in code), as opposed to a literal."""
    return _IDENTIFIER().fullmatch(value) is not None


def random_enough(value: bytes, min_length: int = 16, min_entropy: float = 3.2) -> bool:
    """Random-looking, as an unlabelled key is: long, high entropy, letters and digits, no spaces."""
    return (len(value) >= min_length and b" " not in value and entropy(value) >= min_entropy
            and any(48 <= c <= 57 for c in value) and any(65 <= c <= 90 or 97 <= c <= 122 for c in value)
            and _UUID().fullmatch(value) is None)


def hex_digest(value: bytes) -> bool:
    """A hex string of a common digest length (a SHA or MD5 rather than a key)."""
    return len(value) in (32, 40, 64, 128) and _HEX().fullmatch(value) is not None


_PROVIDER_REACH = 40  # a provider's anchor sits within this many bytes of its token's start


@functools.cache
def _provider_anchors() -> tuple[list[tuple[int, tuple[bytes, ...], list[tuple[bytes, int]]]], "object"]:
    """Each offset at which some provider anchor sits from a token's start, with those anchors' literals (as
    written) and the (literal, rule index) pairs to confirm with; and the engine."""
    from codex_cli.masking.engine import engine
    from codex_cli.masking.rules.providers import RULES

    eng, ids = engine(), {r.id for r in RULES}
    candidates = [(offset, a.literal, index) for index, rule in enumerate(eng.rules) if rule.id in ids
                  for a in rule.anchors for offset in a.offsets if offset < _PROVIDER_REACH]
    by_offset = []
    for k in sorted({offset for offset, _, _ in candidates}):
        pairs = [(literal, index) for offset, literal, index in candidates if offset == k]
        by_offset.append((k, tuple(sorted({literal for literal, _ in pairs})), pairs))
    return by_offset, eng


def provider_token_at(buf: bytes, pos: int) -> bool:
    """Whether a provider rule's format starts at ``pos``: the provider rule masks it under its own name."""
    by_offset, eng = _provider_anchors()
    for offset, literals, pairs in by_offset:  # a few C-level prefix tests; rarely one passes
        if buf.startswith(literals, pos + offset):
            for literal, index in pairs:
                if buf.startswith(literal, pos + offset) and eng.single(index).match(buf, pos):
                    return True
    return False


def first_cut(value: bytes, stops: bytes) -> int:
    """Length of ``value`` up to the first of the ``stops`` bytes."""
    cut: Optional[int] = None
    for stop in stops:
        at = value.find(bytes((stop,)))
        if at >= 0 and (cut is None or at < cut):
            cut = at
    return len(value) if cut is None else cut
