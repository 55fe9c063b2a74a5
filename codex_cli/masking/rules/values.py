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

from codex_cli.masking.rules.base import entropy

NULLISH = frozenset({
    b"none", b"null", b"nil", b"undefined", b"true", b"false", b"yes", b"no", b"on", b"off", b"n/a", b"na",
    b"empty", b"blank", b"required", b"optional", b"string", b"str", b"text", b"bool", b"boolean", b"int",
    b"number", b"object", b"any", b"bytes", b"char", b"password", b"passwd", b"pass", b"pwd", b"secret",
    b"token", b"key", b"apikey", b"api_key", b"api-key", b"value", b"default", b"changeit", b"changeme",
    b"test", b"testing", b"admin", b"username", b"user", b"root", b"guest", b"demo", b"foo", b"bar", b"baz",
    b"foobar", b"secret_key", b"access_token", b"auth_token", b"credentials", b"private_key", b"mypassword",
    b"yourpassword", b"todo", b"tbd", b"fixme",
})
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# ${VAR} {{ var }} #{var} %(var)s %{var} $(cmd) <<: *anchor; $VAR and $1 but not a bcrypt hash ($2b$…)
# A reference rather than a value: ${VAR} ${env:X} {{ var }} ${{ secrets.X }} #{var} %(var)s %{var} $(cmd) $VAR $1
# %VAR% *anchor; but not a password that merely contains "${" or "{{" (a bcrypt hash $2b$… is no $VAR either).
_TEMPLATE = re.compile(rb"\$\{[A-Za-z_][A-Za-z0-9_.:-]*\}|\$?\{\{[ \t]*[A-Za-z_][A-Za-z0-9_.:\[\]'\" |-]*\}\}|"
                       rb"^(?:#\{[^}]*\}|%\([A-Za-z_]\w*\)[sdr]|%\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9]"
                       rb"|%[A-Za-z_]+%|\*[A-Za-z].*)$")
_REFERENCE = re.compile(
    rb"(?i)^(?:os\.environ|os\.getenv|getenv|process\.env|import\.meta\.env|system\.getenv|environment\.|env\.|env:|"
    rb"env\[|\$env:|config\.|settings\.|secrets\.|vars\.|inputs\.|self\.|this\.|args\.|opts\.|options\.|params\.|"
    rb"request\.|req\.|ctx\.|context\.|props\.|!vault|!ref|!sub|!getatt|!secret|!env|vault:|ssm:|arn:aws:|"
    rb"projects/[^/]+/secrets/|file:|op://|keyring:|cmd:|sops:)")
_PLACEHOLDER = re.compile(
    rb"(?i)x{3,}|\*{3,}|\.{3,}|#{3,}|<[^<>]*>|\[[A-Za-z0-9 _:-]*\]|your|example|sample|dummy|fake|placeholder|"
    rb"changeme|change[_-]me|change[_-]?it|replace|redacted|insert|enter[_ -]|here\b|goes[_ -]?here|not[_-]?a[_-]?real|"
    rb"notreal|^test[_-]|[_-]test$|todo|fixme|mock|^(?:my|some)[_-]?(?:secret|password|token|key)|lorem|ipsum")
_PATH = re.compile(rb"^(?:~?/|\.{1,2}/|[A-Za-z]:\\|\\\\)|\.(?:pem|key|crt|cer|der|p12|pfx|jks|json|ya?ml|txt|env|"
                   rb"ini|cfg|conf|toml|pub|gpg|asc|keystore|kdbx)$")
_REPEATED = re.compile(rb"^(.)\1*$", re.DOTALL)
_ALNUM = re.compile(rb"[A-Za-z0-9]")
_PROSE_END = re.compile(rb"[?!.:]$")
_PROSE_WORDS = re.compile(rb"(?i)\b(?:password|passwd|token|secret|key|your|enter|please|must|should|invalid|"
                          rb"incorrect|forgot|reset|required|characters)\b")
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED = re.compile(rb"[A-Za-z_$][A-Za-z0-9_$]*(?:(?:\.|::|->)[A-Za-z_$][A-Za-z0-9_$]*)+(?:\(\))?")
_CALL = re.compile(rb"[A-Za-z_$][A-Za-z0-9_$.]*[(\[]")
_UUID = re.compile(rb"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(rb"(?i)[0-9a-f]+")


def not_a_value(value: bytes) -> bool:
    """Empty, null-ish, a number, a reference or template, a placeholder, a path, one repeated character."""
    return (not value or value.lower() in NULLISH or _NUMBER.fullmatch(value) is not None
            or _TEMPLATE.search(value) is not None or _REFERENCE.match(value) is not None
            or _PLACEHOLDER.search(value) is not None or _PATH.search(value) is not None
            or _REPEATED.match(value) is not None or _ALNUM.search(value) is None)


def plain_word(value: bytes) -> bool:
    """One short word of letters ("model", "Token", "postgres"): a label or a default, not a secret."""
    return len(value) < 12 and value.isalpha()


def prose(value: bytes) -> bool:
    """A sentence rather than a secret: UI text such as "Forgot password?" or "Enter your token"."""
    if b" " not in value:
        return False
    return (_PROSE_END.search(value) is not None or _PROSE_WORDS.search(value) is not None
            or value.count(b" ") >= 6)


def code_reference(value: bytes) -> bool:
    """An expression, not a literal: ``get_password()``, ``self.token``, ``cfg["key"]``, ``Optional[str]``."""
    return (_CALL.match(value) is not None or value.startswith((b"{", b"[", b"(")) or value.endswith(b"{")
            or _DOTTED.fullmatch(value) is not None)


def bare_identifier(value: bytes) -> bool:
    """A name such as ``user_password`` (a variable in code), as opposed to a literal."""
    return _IDENTIFIER.fullmatch(value) is not None


def random_enough(value: bytes, min_length: int = 16, min_entropy: float = 3.2) -> bool:
    """Random-looking, as an unlabelled key is: long, high entropy, letters and digits, no spaces."""
    return (len(value) >= min_length and b" " not in value and entropy(value) >= min_entropy
            and any(48 <= c <= 57 for c in value) and any(65 <= c <= 90 or 97 <= c <= 122 for c in value)
            and _UUID.fullmatch(value) is None)


def hex_digest(value: bytes) -> bool:
    """A hex string of a common digest length (a SHA or MD5 rather than a key)."""
    return len(value) in (32, 40, 64, 128) and _HEX.fullmatch(value) is not None


@functools.cache
def _provider_anchors() -> tuple[dict[int, list[tuple[bytes, int, tuple[int, ...]]]], "object"]:
    """Provider anchors by the byte at which they sit relative to a match start (offset, first byte)."""
    from codex_cli.masking.engine import engine
    from codex_cli.masking.rules.providers import RULES

    eng, ids = engine(), {r.id for r in RULES}
    table: dict[int, list[tuple[bytes, int, tuple[int, ...]]]] = {}
    for index, rule in enumerate(eng.rules):
        if rule.id not in ids:
            continue
        for a in rule.anchors:
            for offset in a.offsets:
                table.setdefault(a.literal[0], []).append((a.literal, offset, (index,)))
    return table, eng


def provider_token_at(buf: bytes, pos: int) -> bool:
    """Whether a provider rule's format starts at ``pos``: the provider rule masks it under its own name."""
    table, eng = _provider_anchors()
    end = min(len(buf), pos + 40)
    for at in range(pos, end):
        for literal, offset, indices in table.get(buf[at], ()):
            if at - offset == pos and buf.startswith(literal, at):
                if any(eng.single(i).match(buf, pos) is not None for i in indices):
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
