"""The path every piece of generated text takes before it leaves: stop strings, then the secret masker.

Text is released only when it can no longer be the start of a stop string, and the streaming
masker holds back anything that could still become a secret, so no chunk boundary leaks one.
"""

from __future__ import annotations

from codex_cli.config import MaskConfig
from codex_cli.masking import StreamMasker, policy_for


class CompletionText:
    """Raw model text in, safe text out, for one request."""

    def __init__(self, stop: tuple[str, ...], mask: MaskConfig) -> None:
        self._stop = stop
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._pending = ""
        # a pass-through under DISABLE_SECRET_FILTER; your mask.rules and mask.allow apply here too
        self._masker = StreamMasker(mask.replacement, mask.typed, policy_for(mask))
        self.stopped = False
        self._finished = False

    @property
    def masked(self) -> int:
        """Secrets replaced in this completion so far."""
        return self._masker.count

    def feed(self, raw: str) -> str:
        """Add newly generated text; return the text that is safe to send now."""
        if self.stopped:
            return ""
        self._pending += raw
        cut = min((i for i in (self._pending.find(s) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            release, self._pending = self._pending[:cut], ""
            return self._safe(release) + self.finish()
        keep = min(self._hold, len(self._pending))
        release = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(release):]
        return self._safe(release)

    def finish(self) -> str:
        """Release what is held back (the generation is over)."""
        if self._finished:
            return ""
        self._finished = True
        rest, self._pending = self._safe(self._pending), ""
        return rest + self._masker.flush()

    def _safe(self, text: str) -> str:
        return self._masker.feed(text) if text else ""


class IncrementalDecoder:
    """Token ids in, new text out, decoding only a short window (as vLLM does).

    Text ending in U+FFFD is held back: the next token may complete a multi-byte character.
    """

    def __init__(self, tokenizer: object) -> None:
        self._decode = tokenizer.decode
        self._ids: list[int] = []
        self._prefix = 0  # start of the window decoded for context
        self._read = 0  # ids before this have been returned as text

    def add(self, token_id: int) -> str:
        """Append one token; return the text it completes (may be empty)."""
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix:self._read], skip_special_tokens=True)
        text = self._decode(self._ids[self._prefix:], skip_special_tokens=True)
        if len(text) <= len(before) or text.endswith("\ufffd"):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return text[len(before):]

    def flush(self) -> str:
        """The text not returned yet, incomplete characters included."""
        before = self._decode(self._ids[self._prefix:self._read], skip_special_tokens=True)
        text = self._decode(self._ids[self._prefix:], skip_special_tokens=True)
        self._prefix = self._read = len(self._ids)
        return text[len(before):]
