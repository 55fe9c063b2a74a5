"""The echo model: answers with the (already masked) prompt, one word per step. No torch, for tests and load tests.

It runs under the same scheduler as a real model (rows join and leave between steps); a chat is
answered with its last message.
"""

from __future__ import annotations

import re
import time

from codex_cli.config import MaskConfig
from codex_cli.serving.errors import prompt_too_long
from codex_cli.serving.generation.jobs import Job, JobResult
from codex_cli.serving.generation.output import CompletionText

ECHO_NAME = "echo"
_WORDS = re.compile(r"\S+\s*|\s+")


def echo_tokens(text: str) -> list[str]:
    """The echo model's tokens: each word with the whitespace after it."""
    return _WORDS.findall(text)


class _EchoRow:
    def __init__(self, job: Job, tokens: list[str], mask: MaskConfig) -> None:
        self.job = job
        self.tokens = tokens
        self.text = CompletionText(job.request.stop, mask)
        self.parts: list[str] = []
        self.used = 0

    def advance(self) -> bool:
        """Emit the next word; True when the row has ended (and been answered)."""
        limit = min(len(self.tokens), self.job.request.max_new_tokens)
        if self.used < limit and not self.job.cancelled and not self.text.stopped:
            if self.job.first_token is None:
                self.job.first_token = time.monotonic()
            self.used += 1
            self._send(self.text.feed(self.tokens[self.used - 1]))
        if self.used < limit and not self.job.cancelled and not self.text.stopped:
            return False
        self._send(self.text.finish())
        reason = "stop" if self.text.stopped or self.used == len(self.tokens) else "length"
        self.job.finish(JobResult("".join(self.parts), len(self.tokens), self.used, reason, self.text.masked))
        return True

    def _send(self, safe: str) -> None:
        if safe:
            self.parts.append(safe)
            self.job.emit(safe)


class EchoEngine:
    """Completes every prompt with the prompt itself, up to max_new_tokens words."""

    name = ECHO_NAME

    def __init__(self, max_prompt_tokens: int, mask: MaskConfig) -> None:
        self._max_prompt_tokens = max_prompt_tokens
        self._mask = mask
        self._rows: list[_EchoRow] = []

    def prepare(self, job: Job) -> int:
        """Split the prompt (or the chat's last message) into words; refuse one over serve.max_prompt_tokens."""
        request = job.request
        text = request.messages[-1][1] if request.messages else request.prompt
        tokens = echo_tokens(text)
        if len(tokens) > self._max_prompt_tokens:
            raise prompt_too_long(len(tokens), self._max_prompt_tokens)
        job.state = _EchoRow(job, tokens, self._mask)
        return len(tokens) + request.max_new_tokens

    def can_join(self, job: Job) -> bool:
        """Always: the echo model has no weights to switch."""
        return True

    def join(self, job: Job) -> None:
        """Start echoing at the next step."""
        self._rows.append(job.state)

    def step(self) -> list[Job]:
        """One word for every row."""
        ended = [row for row in self._rows if row.advance()]
        self._rows = [row for row in self._rows if row not in ended]
        return [row.job for row in ended]

    def abort(self) -> list[Job]:
        """Forget every row."""
        jobs, self._rows = [row.job for row in self._rows], []
        return jobs
