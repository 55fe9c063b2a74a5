"""The secret rules: one named pattern per credential format, and the literal anchors that find them.

Every rule's match starts at a fixed offset before one of its anchors (a literal such as ``AKIA``
or ``-----BEGIN``). That invariant is what lets a fast literal prefilter find every candidate
position, and the exact patterns run only there, with output identical to a full regex scan.
Patterns are bounded (no match is longer than ``REACH`` bytes) so a stream can decide every
candidate once it holds ``REACH`` bytes after it. Patterns work on bytes; text is masked as UTF-8.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Longest possible match (and allow-marker line reach, see ALLOW_REACH), in bytes.
REACH = 65536
# How far either side of a match start the allow marker is looked for on its line.
ALLOW_REACH = 4096
ALLOW_MARKER = b"codex: allow"

# When a candidate near the end of a stream is decided (see stream.py): a token rule once
# whitespace follows, a line rule once a newline follows, a block rule only on its END line.
TOKEN, LINE, BLOCK = 0, 1, 2


@dataclass(frozen=True)
class Rule:
    """One credential format: ``pattern`` matches it; ``secret`` (if any) is the part masked."""

    id: str
    family: str
    pattern: str
    secret: str = ""  # appended to pattern as the masked group; empty: the whole match is masked
    description: str = ""


@dataclass(frozen=True)
class Anchor:
    """A literal every match of some rule contains, ``offsets`` bytes after the match start."""

    literal: bytes
    offsets: tuple[int, ...] = (0,)
    kind: int = TOKEN
    caseless: bool = False


_TOKEN_CHARS = "A-Za-z0-9_-"
# PEM, OpenSSH and PGP use "-----BEGIN … PRIVATE KEY-----"; SSH2 (RFC 4716) uses "---- BEGIN … ----".
_PEM_HEADER = r"(?:-----BEGIN|---- BEGIN)[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?(?:-----| ----)"
_PEM_FOOTER = r"(?:-----END|---- END)[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?(?:-----| ----)"
_NL = r"(?:\r?\n|\\r?\\n)"  # a real line break, or an escaped one inside a JSON/env string

RULES: tuple[Rule, ...] = (
    # The body never runs past another BEGIN, so a run of headers costs linear, not quadratic, time.
    Rule("private-key", "private-key", _PEM_HEADER + r"(?:(?!-----BEGIN|---- BEGIN)[\s\S]){0,32768}?" + _PEM_FOOTER,
         description="PEM/OpenSSH/PGP/SSH2 private key block, BEGIN to END, across lines"),
    Rule("private-key-unterminated", "private-key",
         _PEM_HEADER + r"(?:" + _NL + r"(?:[A-Za-z0-9+/=]{1,128}|[A-Za-z-]{1,32}: [^\r\n\\]{0,128})"
         r"(?=[\r\n]|\\[rn]|\Z)){0,400}",
         description="private key header with no END line: the header and the key lines after it"),
    Rule("putty-private-key", "private-key",
         r"PuTTY-User-Key-File-[0-9]: (?:(?!PuTTY-User-Key-File-)[\s\S]){0,16384}?"
         r"Private-(?:MAC|Hash): [0-9a-fA-F]{16,128}",
         description="PuTTY .ppk key file, header to Private-MAC"),
    Rule("openai-api-key", "openai",
         # a digit and an upper-case letter within 100 characters: T3BlbkFJ is there in every known format
         r"(?<![A-Za-z0-9])sk-(?=[%s]{0,100}[0-9])(?=[%s]{0,100}[A-Z])[%s]{20,512}" % ((_TOKEN_CHARS,) * 3),
         description="OpenAI keys: sk-…, sk-…T3BlbkFJ…, sk-proj-…, sk-svcacct-…, sk-admin-…"),
    Rule("aws-access-key-id", "aws",
         r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)"
         r"(?=[A-Z0-9]{0,23}[BDEFHIJKLMOPQRSVWXYZ0-9])[A-Z0-9]{16,24}(?![A-Za-z0-9])",
         description="AWS access key ID (AKIA/ASIA/ABIA/ACCA/A3T…), 16-24 characters after the prefix"),
    Rule("aws-secret-access-key", "aws",
         r"(?i:aws[_-]?secret[_-]?(?:access[_-]?)?key|secret[_-]?access[_-]?key)"
         r"[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*[\"']?",
         secret=r"[A-Za-z0-9/+]{16,128}={0,2}",
         description="AWS secret access key after aws_secret_access_key / SecretAccessKey / … = or :"),
    Rule("google-api-key", "google", r"(?<![A-Za-z0-9_-])AIza[%s]{30,100}" % _TOKEN_CHARS,
         description="Google API key (AIza…)"),
    Rule("gcp-service-account-key", "google",
         r"[\"']private_key[\"'][ \t]*[:=][ \t]*[\"']", secret=r"(?:[^\"'\\\r\n]|\\[^\r\n]){16,16384}",
         description="the private_key value of a GCP service-account JSON"),
    Rule("github-token", "github", r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{20,255}",
         description="GitHub tokens: ghp_, gho_, ghu_, ghs_, ghr_"),
    Rule("github-fine-grained-pat", "github", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{20,255}",
         description="GitHub fine-grained personal access token (github_pat_…)"),
    Rule("slack-token", "slack",
         r"(?<![A-Za-z0-9])(?:xoxe\.xox[abcdeoprs]|xox[abcdeoprs]|xapp)-(?=[A-Za-z0-9-]{0,100}[0-9])[A-Za-z0-9-]{10,400}",
         description="Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xoxc-, xoxd-, xoxo-, xoxe.xox?-, xapp-"),
    Rule("slack-webhook-url", "slack",
         r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{8,300}",
         description="Slack incoming-webhook URL"),
    Rule("jwt", "jwt",
         r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,4096}={0,2}(?:\.[A-Za-z0-9_-]{0,16384}={0,2}){2,4}",
         description="JSON Web Token (JWS, or JWE with five parts)"),
)

ANCHORS: tuple[Anchor, ...] = (
    Anchor(b"-----BEGIN", kind=BLOCK),
    Anchor(b"---- BEGIN", kind=BLOCK),
    Anchor(b"PuTTY-User-Key-File-", kind=BLOCK),
    Anchor(b"sk-"),
    *(Anchor(p) for p in (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T")),
    Anchor(b"secret", offsets=(0, 3, 4), kind=LINE, caseless=True),
    Anchor(b"AIza"),
    Anchor(b"private_key", offsets=(1,), kind=LINE),
    *(Anchor(p) for p in (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_")),
    Anchor(b"xox"),
    Anchor(b"xapp-"),
    Anchor(b"hooks.slack.com", offsets=(0, 7, 8)),
    Anchor(b"eyJ"),
)


@dataclass(frozen=True)
class HsPattern:
    """A Hyperscan prefilter regex for one anchor, stricter than the bare literal.

    Every match of the anchor's rules contains a match of ``regex`` that locates the anchor:
    at ``end - back`` or, with ``som`` (start of match), at ``start + back``. ``reach`` is the
    longest distance from the anchor start to the end of a ``regex`` match.
    """

    regex: bytes
    anchor: bytes
    back: int
    reach: int
    som: bool = False
    caseless: bool = False


def _fixed(regex: bytes, anchor: bytes, after: int) -> HsPattern:
    return HsPattern(regex, anchor, len(anchor) + after, len(anchor) + after)


_NOT_ALNUM = b"[^A-Za-z0-9]"
HS_PATTERNS: tuple[HsPattern, ...] = (
    _fixed(b"-----BEGIN", b"-----BEGIN", 0),
    _fixed(b"---- BEGIN", b"---- BEGIN", 0),
    _fixed(b"PuTTY-User-Key-File-", b"PuTTY-User-Key-File-", 0),
    _fixed(_NOT_ALNUM + b"sk-[A-Za-z0-9_-]{8}", b"sk-", 8),  # {20} would take Hyperscan 60 ms to compile
    *(HsPattern(_NOT_ALNUM + p + b"[A-Z0-9]{0,23}[BDEFHIJKLMOPQRSVWXYZ0-9]", p, 1, 28, som=True)
      for p in (b"AKIA", b"ASIA", b"ABIA", b"ACCA")),
    HsPattern(_NOT_ALNUM + b"A3T[A-Z0-9]{0,24}[BDEFHIJKLMOPQRSVWXYZ0-9]", b"A3T", 1, 28, som=True),
    HsPattern(b"secret[_-]?(?:access[_-]?)?key", b"secret", 0, 17, som=True, caseless=True),
    _fixed(b"[^A-Za-z0-9_-]AIza[A-Za-z0-9_-]{30}", b"AIza", 30),
    _fixed(b"private_key", b"private_key", 0),
    *(_fixed(b"[^A-Za-z0-9_]" + p + b"[A-Za-z0-9]{20}", p, 20) for p in (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_")),
    _fixed(b"[^A-Za-z0-9_]github_pat_[A-Za-z0-9_]{20}", b"github_pat_", 20),
    _fixed(_NOT_ALNUM + b"xox[abcdeoprs]-", b"xox", 2),
    _fixed(_NOT_ALNUM + b"xoxe\\.xox[abcdeoprs]-", b"xox", 7),
    _fixed(_NOT_ALNUM + b"xapp-", b"xapp-", 0),
    _fixed(b"hooks\\.slack\\.com/", b"hooks.slack.com", 1),
    _fixed(b"[^A-Za-z0-9_-]eyJ[A-Za-z0-9_-]{8}", b"eyJ", 8),
)

# Bytes to hold back at a stream's end: a partial anchor (or prefilter match) there may still
# become a candidate once more input arrives.
_OFFSETS = {a.literal: max(a.offsets) for a in ANCHORS}
TAIL = max([len(a.literal) + max(a.offsets) for a in ANCHORS] + [p.reach + _OFFSETS[p.anchor] for p in HS_PATTERNS]) - 1
# A block candidate whose first bytes are not a private key header is decided after this many.
BLOCK_HEADER_REACH = 72
BLOCK_HEADER = re.compile(rb"(?:-----BEGIN|---- BEGIN)[ A-Z0-9]{0,40}PRIVATE KEY|PuTTY-User-Key-File-[0-9]: ")
# Block rules whose match ends on a fixed END line: once found, more input cannot change it.
TERMINATED_BLOCKS = ("private-key", "putty-private-key")
WHITESPACE = re.compile(rb"[ \t\n\r\f\v]")


def _alternative(index: int, rule: Rule) -> str:
    secret = f"(?P<s{index}>{rule.secret})" if rule.secret else ""
    return f"(?P<r{index}>{rule.pattern}{secret})"


@functools.cache
def combined() -> re.Pattern[bytes]:
    """All rules as one bytes pattern (group ``r<i>``: rule i's match, ``s<i>``: its secret part).

    Compiled on first use: input with no candidate never pays for compiling it.
    """
    joined = "|".join(_alternative(i, r) for i, r in enumerate(RULES))
    return re.compile(joined.encode("ascii"))


RULE_BY_GROUP = {f"r{i}": (i, rule) for i, rule in enumerate(RULES)}
