"""Secrets inside a structure: the password of a URI, an Authorization header, ``curl -u user:pass``.

Only the secret part is masked, so the structure stays readable
(``postgres://app:[SECRET]@db:5432/app``, ``Authorization: Bearer [SECRET]``). A value in a
provider's own format (``https://oauth2:glpat-…@gitlab.com``, ``Bearer sk-…``) is left to that
provider's rule, which masks the same bytes under the provider's name.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Optional

from codex_cli.masking.rules.base import LINE, TOKEN, Anchor, Hit, HsPattern, Rule, Span, fixed, plausible_token
from codex_cli.masking.rules.values import not_a_value, provider_token_at, random_enough

_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]{1,30}\Z")
_PLACEHOLDER_PASSWORDS = frozenset({b"pass", b"password", b"passwd", b"pwd", b"secret", b"token", b"changeme",
                                    b"changeit", b"test", b"admin", b"root", b"guest", b"user", b"yyy"})


def _uri(hit: Hit, span: Span) -> Optional[Span]:
    """scheme://user:password@host — a real scheme before ``://``, a password that is not a placeholder."""
    buf, start = hit.buf, hit.start()
    if _SCHEME.search(buf, max(0, start - 31), start) is None:
        return None
    password = buf[span[0]:span[1]]
    if password.lower() in _PLACEHOLDER_PASSWORDS or not_a_value(password) or provider_token_at(buf, span[0]):
        return None
    return span


def _authorization(hit: Hit, span: Span) -> Optional[Span]:
    """Authorization: Basic <base64 of user:pass> | Bearer/Token/… <token> | <token>."""
    value = hit.buf[span[0]:span[1]]
    scheme = (hit.group("scheme") or b"").lower()
    if not_a_value(value) or provider_token_at(hit.buf, span[0]):
        return None
    if scheme == b"basic":
        try:
            decoded = base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
        return span if b":" in decoded else None
    return span if plausible_token(value, 2.5) else None


def _bearer(hit: Hit, span: Span) -> Optional[Span]:
    value = hit.buf[span[0]:span[1]]
    if not_a_value(value) or provider_token_at(hit.buf, span[0]) or not random_enough(value, 16, 3.0):
        return None
    return span


def _curl_user(hit: Hit, span: Span) -> Optional[Span]:
    """curl -u user:password — also "key:" (a key as the user, empty password), never a placeholder."""
    value = hit.buf[span[0]:span[1]]
    if hit.group("secret4") is not None:  # -u "key:" : the user is the secret
        return span if random_enough(value, 8, 2.5) else None
    user = (hit.group("user") or b"").strip(b"\"'")
    if (value.lower() in _PLACEHOLDER_PASSWORDS or not_a_value(value) or not_a_value(value.lower())
            or user.startswith((b"$", b"<", b"{{")) or provider_token_at(hit.buf, span[0])):
        return None
    return span


_AUTH_SCHEMES = r"(?P<scheme>(?i:bearer|basic|token|bot|apikey|api-key|key|sso-key|ssws|jwt|oauth|splunk|dsn))"
_HEADER_VALUE = r"[A-Za-z0-9._~+/=:-]{8,4096}"

RULES: tuple[Rule, ...] = (
    Rule("http-authorization", "http-auth",
         r"(?i:authorization)(?:\\{0,2}[\"'])?[ \t]{0,8}[:=][ \t]{0,8}(?:\\{0,2}[\"'])?"
         r"(?:" + _AUTH_SCHEMES + r"[ \t]{1,4})?", (Anchor(b"authorization", kind=LINE, caseless=True),),
         "the credential in an Authorization header (Bearer, Basic, Token, … or bare), in curl -H, HTTP dumps and "
         "JSON", secret=_HEADER_VALUE,
         hs=(HsPattern(b"authorization(?:\\\\{0,2}[\"'])?[ \\t]{0,8}[:=]", b"authorization", expand=True,
                       caseless=True),), check=_authorization),
    Rule("bearer-token", "http-auth", r"(?i:bearer)[ \t]{1,4}", (Anchor(b"bearer", kind=LINE, caseless=True),),
         "a random-looking token after the word Bearer (16+ characters, letters and digits)",
         secret=r"[A-Za-z0-9._~+/-]{16,4096}={0,2}(?![A-Za-z0-9._~+/=-])",
         hs=(HsPattern(b"bearer[ \\t]{1,4}[A-Za-z0-9._~+/-]{16}", b"bearer", caseless=True, expand=True),),
         check=_bearer),
    Rule("uri-password", "uri",
         r"://(?P<user>[^\s:/?#@\"'<>\[\]]{0,128}):", (Anchor(b"://", kind=TOKEN),),
         "the password in scheme://user:password@host (postgres, mysql, mongodb(+srv), redis(s), amqp(s), https "
         "basic auth, …): the rest of the URI stays",
         secret=r"[^\s/?#\"'<>]{1,256}(?=@[A-Za-z0-9\[_.-])",
         hs=(HsPattern(b"://[^\\s:/?#@\"'<>\\[\\]]{0,128}:[^\\s/?#\"'<>]{1,256}@", b"://", expand=True),),
         check=_uri),
    Rule("curl-user-password", "basic-auth",
         r"(?<![A-Za-z0-9_-])(?:-u|--user)(?:=|[ \t]{1,5})(?P<q>[\"']?)"
         r"(?:(?P<user>\"[^\"\r\n]{0,128}\"|'[^'\r\n]{0,128}'|[^\s:\"']{0,128}):"
         r"(?:\"(?P<secret>[^\"\r\n]{1,256})\"|'(?P<secret2>[^'\r\n]{1,256})'|(?P<secret3>[^\s\"']{1,256}))"
         r"|(?P<secret4>[^\s:\"']{8,256}):)(?P=q)(?=[\s\\]|\Z)",
         (Anchor(b"-u", kind=LINE), Anchor(b"--user", kind=LINE)),
         "the password in curl -u/--user user:password (or a key passed as the user with an empty password)",
         hs=(fixed(b"-u[= \\t]", b"-u", 1), fixed(b"--user[= \\t]", b"--user", 1)),
         check=_curl_user),
)
