"""The echo model: returns the (already masked) prompt, word by word. No torch, for testing and load tests."""

from __future__ import annotations

import re

from codex_cli.config import MaskConfig
from codex_cli.serving.batching import Job, JobResult
from codex_cli.serving.output import CompletionText
from codex_cli.serving.schemas import ApiError, prompt_too_long

ECHO_NAME = "echo"
_WORDS = re.compile(r"\S+\s*|\s+")


def echo_tokens(text: str) -> list[str]:
    """The echo model's tokens: each word with the whitespace after it."""
    return _WORDS.findall(text)


class EchoEngine:
    """Completes every prompt with the prompt itself, up to max_new_tokens words."""

    name = ECHO_NAME

    def __init__(self, max_prompt_tokens: int, mask: MaskConfig) -> None:
        self._max_prompt_tokens = max_prompt_tokens
        self._mask = mask

    def run(self, jobs: list[Job]) -> None:
        """Answer each job on its own; the batch only shares the trip through the worker."""
        for job in jobs:
            job.finish(self._complete(job))

    def _complete(self, job: Job) -> JobResult | ApiError:
        request = job.request
        tokens = echo_tokens(request.prompt)
        if len(tokens) > self._max_prompt_tokens:
            return prompt_too_long(len(tokens), self._max_prompt_tokens)
        text = CompletionText(request.stop, self._mask)
        parts, used = [], 0
        for token in tokens[: request.max_new_tokens]:
            if job.cancelled or text.stopped:
                break
            used += 1
            parts.append(text.feed(token))
            job.emit(parts[-1])
        parts.append(text.finish())
        job.emit(parts[-1])
        reason = "stop" if text.stopped or used == len(tokens) else "length"
        return JobResult("".join(parts), len(tokens), used, reason, text.masked)
