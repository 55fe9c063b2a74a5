"""A generation request and its life in flight: created on the event loop, advanced by the worker thread.

Everything the worker produces for the event loop (text chunks, the final outcome) goes through an
``Outbox`` that the worker hands over once per scheduling step, in one ``call_soon_threadsafe``
per event loop, so sixteen streaming rows cost one wake-up of the loop per step, not sixteen.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from codex_cli.serving.errors import ApiError

Message = tuple[str, str]  # (role, content), OpenAI roles


@dataclass(frozen=True)
class GenRequest:
    """One generation: a prompt (already masked), or chat messages, and its own sampling settings."""

    prompt: str
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: Optional[int] = None
    stop: tuple[str, ...] = ()
    messages: Optional[tuple[Message, ...]] = None  # a chat, rendered by the model's chat template


@dataclass(eq=False)
class Target:
    """What a request runs on: the base model or an adapter on it, under the name clients use.

    ``checkpoint`` names the weights that answer (responses carry it); ``adapter`` is the adapter's name
    inside the engine's model (None: the base weights alone); ``weights``, when set, are the model the
    request needs (a followed full checkpoint), which the engine switches to once its running rows are done.
    """

    name: str
    checkpoint: str
    adapter: Optional[str] = None
    parent: Optional[str] = None  # an adapter's base (its public name); None for the base itself
    weights: Any = None


@dataclass(frozen=True)
class JobResult:
    """A finished generation: safe text, token counts, why it ended, secrets masked in it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    masked: int


Outcome = Union[JobResult, ApiError]


class Outbox:
    """What the worker produced during one step, handed to each event loop in a single call."""

    def __init__(self) -> None:
        self._items: dict[asyncio.AbstractEventLoop, list[tuple[Job, Callable[..., None], tuple[Any, ...]]]] = {}

    def post(self, job: Job, fn: Callable[..., None], *args: Any) -> None:
        """Queue ``fn(*args)`` to run on the job's event loop at the next flush."""
        self._items.setdefault(job.loop, []).append((job, fn, args))

    def flush(self) -> None:
        """Hand everything queued to its event loop (thread side)."""
        items, self._items = self._items, {}
        for loop, calls in items.items():
            try:
                loop.call_soon_threadsafe(_run_all, calls)
            except RuntimeError:  # the event loop is closed: nobody is waiting for these jobs any more
                for job, _, _ in calls:
                    job.cancelled = True


def _run_all(calls: list[tuple[Job, Callable[..., None], tuple[Any, ...]]]) -> None:
    for _, fn, args in calls:
        fn(*args)


class Job:
    """One generation in flight, with the timestamps its metrics come from."""

    def __init__(self, request: GenRequest, loop: asyncio.AbstractEventLoop, stream: bool = False,
                 target: Optional[Target] = None) -> None:
        self.request = request
        self.target = target  # None: whatever the engine serves (stub engines, benchmarks)
        self.seed = request.seed if request.seed is not None else 0
        self.loop = loop
        self.done: asyncio.Future[Outcome] = loop.create_future()
        self.chunks: Optional[asyncio.Queue[Optional[str]]] = asyncio.Queue() if stream else None
        self.cancelled = False
        self.outcome: Optional[Outcome] = None
        self.outbox: Optional[Outbox] = None  # set by the scheduler; without one, every post goes out at once
        self.footprint: Optional[int] = None  # KV-cache tokens it can reach: prompt + max_new_tokens
        self.state: Any = None  # the engine's per-request state, made by Engine.prepare
        self.submitted = time.monotonic()
        self.admitted: Optional[float] = None
        self.first_token: Optional[float] = None

    def emit(self, text: str) -> None:
        """Send a piece of safe text to a streaming client (thread side)."""
        if text and self.chunks is not None:
            self._post(self.chunks.put_nowait, text)

    def finish(self, outcome: Outcome) -> None:
        """Resolve the job with a result or an error (thread side); only the first call counts."""
        if self.outcome is None:
            self.outcome = outcome
            self._post(self._resolve, outcome)

    def _resolve(self, outcome: Outcome) -> None:
        if not self.done.done():
            self.done.set_result(outcome)
        if self.chunks is not None:
            self.chunks.put_nowait(None)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if self.outbox is not None:
            self.outbox.post(self, fn, *args)
            return
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the event loop is closed: nobody is waiting for this job any more
            self.cancelled = True
