"""One request's state inside the running batch: its tokens, its sampling settings, its text pipeline.

Everything that differs between requests sharing a batch lives here, and the engine builds each
step's per-row tensors (input token, position, sampling settings, LoRA adapter) from the rows.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from codex_cli.config import MaskConfig
from codex_cli.serving.generation.jobs import Job, JobResult
from codex_cli.serving.generation.output import CompletionText, IncrementalDecoder
from codex_cli.serving.generation.sampling import seeded_generator


class Row:
    """A request from its prompt to its last token."""

    def __init__(self, job: Job, prompt: list[int], tokenizer: Any, mask: MaskConfig) -> None:
        request = job.request
        self.job = job
        self.adapter = job.target.adapter if job.target is not None else None  # None: the base weights alone
        self.prompt = prompt
        self.prefilled = 0  # prompt tokens already in a KV cache
        self.cache: Any = None  # this row's own cache while a long prompt is prefilled in chunks
        self.position = 0  # position id of the next token fed to the model
        self.next_token: Optional[int] = None  # sampled, not yet fed to the model
        self.temperature = request.temperature
        self.top_p = request.top_p
        self.generator = seeded_generator(request.temperature, job.seed)
        self.decoder = IncrementalDecoder(tokenizer)
        self.text = CompletionText(request.stop, mask)
        self.parts: list[str] = []
        self.generated = 0
        self.reason: Optional[str] = None

    @property
    def remaining(self) -> int:
        """Prompt tokens still to prefill."""
        return len(self.prompt) - self.prefilled

    def push(self, token: int, eos: frozenset[int]) -> bool:
        """Take the next sampled token; True when the request has ended."""
        if self.job.first_token is None:
            self.job.first_token = time.monotonic()
        if token in eos:
            self.reason = "stop"
            return True
        self.generated += 1
        self.next_token = token
        self._send(self.text.feed(self.decoder.add(token)))
        if self.text.stopped:
            self.reason = "stop"
        elif self.generated >= self.job.request.max_new_tokens:
            self.reason = "length"
        elif self.job.cancelled:
            self.reason = "cancelled"
        return self.reason is not None

    def close(self) -> None:
        """Release the held-back text and answer the request."""
        if not self.text.stopped:
            self._send(self.text.feed(self.decoder.flush()))
        self._send(self.text.finish())
        self.job.finish(JobResult("".join(self.parts), len(self.prompt), self.generated,
                                  "length" if self.reason in (None, "cancelled") else self.reason, self.text.masked))

    def _send(self, safe: str) -> None:
        if safe:
            self.parts.append(safe)
            self.job.emit(safe)
