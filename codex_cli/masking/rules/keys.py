"""Private key blocks: PEM, OpenSSH, PGP, SSH2 and PuTTY, masked whole, across lines."""

from __future__ import annotations

import re

from codex_cli.masking.rules.base import BLOCK, Anchor, HsPattern, Rule

# PEM, OpenSSH and PGP use "-----BEGIN … PRIVATE KEY-----"; SSH2 (RFC 4716) uses "---- BEGIN … ----".
_PEM_HEADER = r"(?:-----BEGIN|---- BEGIN)[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?(?:-----| ----)"
_PEM_FOOTER = r"(?:-----END|---- END)[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?(?:-----| ----)"
_NL = r"(?:\r?\n|\\r?\\n)"  # a real line break, or an escaped one inside a JSON/env string
_BEGINS = (Anchor(b"-----BEGIN", kind=BLOCK), Anchor(b"---- BEGIN", kind=BLOCK))
_PUTTY = (Anchor(b"PuTTY-User-Key-File-", kind=BLOCK),)


def _bare(anchors: tuple[Anchor, ...]) -> tuple[HsPattern, ...]:
    return tuple(HsPattern(re.escape(a.literal), a.literal, len(a.literal)) for a in anchors)


RULES: tuple[Rule, ...] = (
    # The body never runs past another BEGIN, so a run of headers costs linear, not quadratic, time.
    Rule("private-key", "private-key", _PEM_HEADER + r"(?:(?!-----BEGIN|---- BEGIN)[\s\S]){0,32768}?" + _PEM_FOOTER,
         _BEGINS, "PEM/OpenSSH/PGP/SSH2 private key block, BEGIN to END, across lines", hs=_bare(_BEGINS)),
    Rule("private-key-unterminated", "private-key",
         _PEM_HEADER + r"(?:" + _NL + r"(?:[A-Za-z0-9+/=]{1,128}|[A-Za-z-]{1,32}: [^\r\n\\]{0,128})"
         r"(?=[\r\n]|\\[rn]|\Z)){0,400}",
         _BEGINS, "private key header with no END line: the header and the key lines after it", hs=_bare(_BEGINS)),
    Rule("putty-private-key", "private-key",
         r"PuTTY-User-Key-File-[0-9]: (?:(?!PuTTY-User-Key-File-)[\s\S]){0,16384}?"
         r"Private-(?:MAC|Hash): [0-9a-fA-F]{16,128}",
         _PUTTY, "PuTTY .ppk key file, header to Private-MAC", hs=_bare(_PUTTY)),
)

# A block candidate whose first bytes are not a private key header is decided after this many.
BLOCK_HEADER_REACH = 72
BLOCK_HEADER = re.compile(rb"(?:-----BEGIN|---- BEGIN)[ A-Z0-9]{0,40}PRIVATE KEY|PuTTY-User-Key-File-[0-9]: ")
# Block rules whose match ends on a fixed END line: once found, more input cannot change it.
TERMINATED_BLOCKS = ("private-key", "putty-private-key")
