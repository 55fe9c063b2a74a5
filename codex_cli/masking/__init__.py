"""Secret masking: rules, a streaming byte masker, and the text helpers serve and training use.

Stdlib only (plus the optional ``hyperscan`` prefilter), so ``codex mask`` starts instantly.
``DISABLE_SECRET_FILTER=1`` turns masking off everywhere. ``policy`` carries the user's own
rules and allow list (``mask.rules``, ``mask.allow``; see ``custom.policy_for``).
"""

from __future__ import annotations

import codecs
import os
from typing import Optional

from codex_cli.masking.custom import Policy, policy_for
from codex_cli.masking.rules import RULES, Rule
from codex_cli.masking.stream import DEFAULT_REPLACEMENT, ByteMasker, Finding

DISABLE_ENV = "DISABLE_SECRET_FILTER"


def ruleset_identity(policy: Optional[Policy] = None) -> str:
    """A digest of everything that decides masked text: the built-in rules' code and the user's policy."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*here.glob("rules/*.py"), here / "engine.py", here / "custom.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update((policy.identity() if policy is not None else "").encode())
    return digest.hexdigest()


def secret_filter_disabled() -> bool:
    """True when ``DISABLE_SECRET_FILTER`` is set to 1 (or true/yes/on): masking is off everywhere."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def mask_bytes(data: bytes, replacement: str = DEFAULT_REPLACEMENT, typed: bool = False,
               policy: Optional[Policy] = None) -> tuple[bytes, int]:
    """Mask every secret in ``data``; return the masked bytes and how many were masked."""
    if secret_filter_disabled():
        return data, 0
    masker = ByteMasker(replacement, typed, policy=policy)
    masked = masker.feed(data) + masker.flush()
    return masked, masker.count


def mask_text(text: str, replacement: str = DEFAULT_REPLACEMENT, typed: bool = False,
              policy: Optional[Policy] = None) -> tuple[str, int]:
    """Mask every secret in ``text``; return the masked text and how many were masked."""
    if secret_filter_disabled():
        return text, 0
    masked, count = mask_bytes(text.encode("utf-8", "surrogatepass"), replacement, typed, policy)
    return masked.decode("utf-8", "surrogatepass"), count


class StreamMasker:
    """Incremental masker for streamed text: a secret split across feed() calls is never emitted."""

    def __init__(self, replacement: str = DEFAULT_REPLACEMENT, typed: bool = False,
                 policy: Optional[Policy] = None) -> None:
        from codex_cli.masking.prefilter import stream_finder

        self._masker = None if secret_filter_disabled() else ByteMasker(replacement, typed, finder=stream_finder(),
                                                                         policy=policy)
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")

    @property
    def count(self) -> int:
        """Secrets masked so far."""
        return 0 if self._masker is None else self._masker.count

    def feed(self, chunk: str) -> str:
        """Add text; return the text that is now safe to emit (a possible secret start is held back)."""
        if self._masker is None:
            return chunk
        return self._decoder.decode(self._masker.feed(chunk.encode("utf-8", "surrogatepass")))

    def flush(self) -> str:
        """End of the stream: return the held-back rest, masked."""
        if self._masker is None:
            return ""
        return self._decoder.decode(self._masker.flush(), final=True)


__all__ = ["ByteMasker", "DEFAULT_REPLACEMENT", "DISABLE_ENV", "Finding", "Policy", "RULES", "Rule", "StreamMasker",
           "mask_bytes", "mask_text", "policy_for", "ruleset_identity", "secret_filter_disabled"]
