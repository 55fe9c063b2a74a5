"""Dynamic batching: requests queue on the event loop, one worker thread runs them in batches.

The worker takes the oldest request, then waits for more, up to ``max_batch_size``. It waits only
under concurrent load (the previous batch held more than one request, so a lone client is never
delayed) and never longer than ``max_wait_ms`` or than the previous batch took to run (waiting
should not cost more than it can save: a fast model is barely delayed, a slow one fills its batch).
All model work, loading included, happens on that one thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Union

from codex_cli.errors import CodexError
from codex_cli.serving.metrics import Metrics
from codex_cli.serving.schemas import ApiError, GenRequest

log = logging.getLogger("codex.serve")


@dataclass(frozen=True)
class JobResult:
    """A finished generation: safe text, token counts, why it ended, secrets masked in it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    masked: int


Outcome = Union[JobResult, ApiError]


class Job:
    """One generation in flight: created on the event loop, run by the worker thread."""

    def __init__(self, request: GenRequest, loop: asyncio.AbstractEventLoop, stream: bool = False) -> None:
        self.request = request
        self.seed = request.seed if request.seed is not None else 0
        self.loop = loop
        self.done: asyncio.Future[Outcome] = loop.create_future()
        self.chunks: Optional[asyncio.Queue[Optional[str]]] = asyncio.Queue() if stream else None
        self.cancelled = False
        self.outcome: Optional[Outcome] = None

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

    def _post(self, fn: Callable[..., None], *args: object) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the event loop is closed: nobody is waiting for this job any more
            self.cancelled = True


class Engine(Protocol):
    """What the worker runs: a model that turns a batch of jobs into finished jobs."""

    name: str

    def run(self, jobs: list[Job]) -> None:
        """Generate for every job, emitting text as it is ready and finishing each job."""


class Batcher:
    """The request queue and the worker thread that drains it in batches."""

    def __init__(self, load: Callable[[], Engine], metrics: Metrics, *, max_batch_size: int, max_wait_ms: int,
                 max_queue: int, seed: int) -> None:
        self._load = load
        self._metrics = metrics
        self._max_batch = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._max_queue = max_queue
        self._seeds = random.Random(seed)
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._preload = False
        self._last_batch = 0
        self._last_run = 0.0
        self._thread = threading.Thread(target=self._work, name="codex-batcher", daemon=True)
        self.engine: Optional[Engine] = None
        self.load_error: Optional[str] = None
        self.loaded = threading.Event()

    @property
    def depth(self) -> int:
        """Requests waiting for the worker."""
        return len(self._queue)

    def start(self, preload: bool = False) -> None:
        """Start the worker thread; with ``preload`` it loads the model before taking requests."""
        self._preload = preload
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job, or raise ApiError 503 when the queue is full or the model failed to load."""
        if self.load_error is not None:
            raise _unavailable(self.load_error)
        with self._cond:
            if self._stopping:
                raise ApiError(503, "the server is shutting down; retry on another instance", "server_shutting_down",
                               {"Retry-After": "1"})
            if len(self._queue) >= self._max_queue:
                raise ApiError(503, f"the request queue is full ({self._max_queue} waiting, serve.max_queue); "
                                    "retry shortly", "queue_full", {"Retry-After": "1"})
            if job.request.seed is None:
                job.seed = self._seeds.getrandbits(63)
            self._queue.append(job)
            self._cond.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, then stop the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _work(self) -> None:
        if self._preload:
            self._ensure_engine()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            started = time.monotonic()
            self._run(batch)
            self._last_run = time.monotonic() - started

    def _next_batch(self) -> Optional[list[Job]]:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            batch = [self._queue.popleft()]
            wait = min(self._max_wait, self._last_run) if self._last_batch > 1 else 0.0
            deadline = time.monotonic() + wait
            while len(batch) < self._max_batch:
                if self._queue:
                    batch.append(self._queue.popleft())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._cond.wait(remaining)
        self._last_batch = len(batch)
        return batch

    def _run(self, batch: list[Job]) -> None:
        live = [job for job in batch if not job.cancelled]
        engine = self._ensure_engine()
        if engine is None:
            for job in live:
                job.finish(_unavailable(self.load_error or "unknown error"))
            return
        if not live:
            return
        self._metrics.observe_batch(len(live))
        try:
            engine.run(live)
        except Exception:  # a bug in generation: fail these requests, keep serving the others
            log.exception("generation failed for a batch of %d request(s)", len(live))
            for job in live:
                job.finish(ApiError(500, "generation failed; see the server log", "server_error"))
        for job in live:
            if isinstance(job.outcome, JobResult):
                self._metrics.observe_result(job.outcome.completion_tokens, job.outcome.masked)

    def _ensure_engine(self) -> Optional[Engine]:
        if self.engine is None and self.load_error is None:
            try:
                self.engine = self._load()
            except CodexError as e:
                self.load_error = str(e)
                if not self._preload:  # with preload the startup failure reports it
                    log.error("codex: error: %s", e)
            except Exception as e:  # a bug, not a user mistake: keep the traceback in the log
                self.load_error = f"unexpected {type(e).__name__} while loading (see the server log)"
                log.exception("loading the model failed")
            finally:
                self.loaded.set()
        return self.engine


def _unavailable(reason: str) -> ApiError:
    return ApiError(503, f"the model could not be loaded: {reason}", "model_unavailable")
