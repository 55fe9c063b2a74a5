"""Iteration-level batching: requests join and leave the running batch between any two decode steps.

Before every step the worker admits waiting requests in arrival order while the batch has fewer
than ``max_batch_size`` rows and its KV cache stays within ``max_batch_tokens``: the cache is
padded to its longest row, so k rows that can each reach L tokens (prompt + max_new_tokens) at
most hold k·L, and a request joins only while that bound fits. The first request that does not
fit waits at the head of the queue (nobody overtakes it, so nobody starves); one that could not
fit even alone gets 422, and one that needs other weights than the running rows (a followed full checkpoint)
waits, at the head, until they are done. A step prefills newcomers' prompts (long ones in chunks, over several
steps) and then decodes one token for every running row; a row that ends is answered and leaves
the batch at once. All model work, loading included, happens on that one thread, never on the event loop.
Changes to the model (adapters added, removed, checkpoints switched) run there too, between two steps:
``call`` runs one, and ``retire`` releases what a replaced or removed target held once no job uses it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import random
import threading
import time
from typing import Any, Callable, Optional, Protocol

from codex_cli.errors import CodexError
from codex_cli.serving.errors import ApiError, never_fits, server_error, unavailable
from codex_cli.serving.generation.jobs import Job, JobResult, Outbox, Target

log = logging.getLogger("codex.serve")


class Engine(Protocol):
    """The model side of the batch: prepares requests, then advances every running one a step at a time."""

    name: str

    def prepare(self, job: Job) -> int:
        """Tokenize and check a job (raise ApiError when it can never be served); return its footprint in tokens."""

    def can_join(self, job: Job) -> bool:
        """Whether a prepared job can join the running batch now (False: it waits for the running rows to end)."""

    def join(self, job: Job) -> None:
        """Take a prepared job into the running batch; its prompt is prefilled during the next steps."""

    def step(self) -> list[Job]:
        """Run one iteration over the running batch; return the jobs that ended (each already finished)."""

    def abort(self) -> list[Job]:
        """Drop every running row (after a failed step) and return their jobs."""


class Metrics(Protocol):
    """What the scheduler reports (implemented by the HTTP side's Prometheus metrics)."""

    def observe_step(self, running: int) -> None: ...

    def observe_job(self, queue_wait: float, first_token: Optional[float], completion_tokens: int,
                    masked: int, *, model: str, prompt_tokens: int) -> None: ...


class Scheduler:
    """The request queue and the worker thread that runs the batch one step at a time."""

    def __init__(self, load: Callable[[], Engine], metrics: Metrics, *, max_batch_size: int, max_batch_tokens: int,
                 max_queue: int, seed: int) -> None:
        self._load = load
        self._metrics = metrics
        self._max_rows = max_batch_size
        self._budget = max_batch_tokens
        self._max_queue = max_queue
        self._seeds = random.Random(seed)
        self._queue: collections.deque[Job] = collections.deque()
        self._running: list[Job] = []
        self._calls: collections.deque[tuple[Callable[[Engine], Any], concurrent.futures.Future]] = \
            collections.deque()
        self._retiring: list[tuple[Target, Callable[[Engine], None]]] = []
        self._outbox = Outbox()
        self._cond = threading.Condition()
        self._stopping = False
        self._preload = False
        self._thread = threading.Thread(target=self._work, name="codex-scheduler", daemon=True)
        self.engine: Optional[Engine] = None
        self.load_error: Optional[str] = None
        self.loaded = threading.Event()

    @property
    def depth(self) -> int:
        """Requests waiting to join the batch."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Requests in the running batch."""
        return len(self._running)

    def start(self, preload: bool = False) -> None:
        """Start the worker thread; with ``preload`` it loads the model before taking requests."""
        self._preload = preload
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job, or raise ApiError 503 when the queue is full or the model failed to load."""
        if self.load_error is not None:
            raise unavailable(self.load_error)
        with self._cond:
            if self._stopping:
                raise ApiError(503, "the server is shutting down; retry on another instance", "server_shutting_down",
                               {"Retry-After": "1"})
            if len(self._queue) >= self._max_queue:
                raise ApiError(503, f"the request queue is full ({self._max_queue} waiting, serve.max_queue); "
                                    "retry shortly", "queue_full", {"Retry-After": "1"})
            if job.request.seed is None:
                job.seed = self._seeds.getrandbits(63)
            job.outbox = self._outbox
            self._queue.append(job)
            self._cond.notify()

    def call(self, fn: Callable[[Engine], Any]) -> concurrent.futures.Future:
        """Run ``fn(engine)`` on the worker thread between two steps (loading the model first if need be)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            if self._stopping:
                future.set_exception(ApiError(503, "the server is shutting down", "server_shutting_down"))
                return future
            self._calls.append((fn, future))
            self._cond.notify()
        return future

    def retire(self, target: Target, release: Callable[[Engine], None]) -> None:
        """Call ``release(engine)`` on the worker thread once no queued or running job runs on ``target``."""
        with self._cond:
            self._retiring.append((target, release))
            self._cond.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued and running jobs, then stop the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _work(self) -> None:
        if self._preload:
            self._ensure_engine()
        while self._wait_for_work():
            engine = self._ensure_engine()
            if engine is None:
                self._refuse_queued()
                continue
            self._run_calls(engine)
            self._release_retired(engine)
            try:
                self._admit(engine)
            except Exception:  # a bug in scheduling: fail what it touched, keep the worker alive
                log.exception("admitting requests failed")
                self._fail_all(engine)
            self._outbox.flush()  # refusals go out now, not after the step
            if self._running:
                self._step(engine)
                self._outbox.flush()
        self._fail_calls(ApiError(503, "the server is shutting down", "server_shutting_down"))

    def _wait_for_work(self) -> bool:
        with self._cond:
            while not self._queue and not self._running and not self._calls and not self._retiring:
                if self._stopping:
                    return False
                self._cond.wait()
        return True

    def _run_calls(self, engine: Engine) -> None:
        while True:
            with self._cond:
                if not self._calls:
                    return
                fn, future = self._calls.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(engine))
            except BaseException as e:  # handed to the caller, who reports it (or logs it, if it is a bug)
                future.set_exception(e)

    def _fail_calls(self, error: Exception) -> None:
        with self._cond:
            calls, self._calls = list(self._calls), collections.deque()
        for _, future in calls:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    def _release_retired(self, engine: Engine) -> None:
        with self._cond:
            if not self._retiring:
                return
            in_use = {id(job.target) for job in [*self._queue, *self._running]}
            done = [(target, release) for target, release in self._retiring if id(target) not in in_use]
            self._retiring = [item for item in self._retiring if id(item[0]) in in_use]
        for _, release in done:
            try:
                release(engine)
            except Exception:  # a bug in releasing: the memory stays held, serving goes on
                log.exception("releasing a retired model failed")

    def _admit(self, engine: Engine) -> None:
        self._refuse_what_cannot_run(engine)
        # Only this thread removes jobs, so the head can be read outside the lock.
        while self._queue and len(self._running) < self._max_rows:
            job = self._queue[0]
            if job.footprint is None:  # it arrived after the queue was prepared: next time round
                return
            rows = len(self._running) + 1
            if rows * max([job.footprint, *(j.footprint for j in self._running)]) > self._budget:
                return  # the head waits for rows to leave; nobody overtakes it
            if not engine.can_join(job):
                return  # it needs other weights: the running rows finish first, nobody overtakes it
            self._pop()
            engine.join(job)
            job.admitted = time.monotonic()
            self._running.append(job)

    def _refuse_what_cannot_run(self, engine: Engine) -> None:
        """Prepare every newly queued job; drop the cancelled, and answer those that can never run at once."""
        with self._cond:
            queued = list(self._queue)
        for job in queued:
            if job.footprint is None and not job.cancelled and self._prepare(engine, job):
                if job.footprint > self._budget:
                    job.finish(never_fits(job.footprint, self._budget))
            if job.cancelled or job.outcome is not None:
                with self._cond:
                    self._queue.remove(job)

    def _fail_all(self, engine: Engine) -> None:
        with self._cond:
            queued, self._queue = list(self._queue), collections.deque()
        for job in [*engine.abort(), *queued]:
            job.finish(server_error())
        self._running = []

    def _prepare(self, engine: Engine, job: Job) -> bool:
        try:
            job.footprint = engine.prepare(job)
            return True
        except ApiError as e:
            job.finish(e)
        except Exception:  # a bug in preparing this request: fail it, keep serving the others
            log.exception("preparing a request failed")
            job.finish(server_error())
        return False

    def _pop(self) -> Job:
        with self._cond:
            return self._queue.popleft()

    def _step(self, engine: Engine) -> None:
        self._metrics.observe_step(len(self._running))
        try:
            ended = engine.step()
        except Exception:  # a bug in generation: fail the running requests, keep serving the others
            log.exception("generation failed for a batch of %d request(s)", len(self._running))
            ended = engine.abort()
            for job in ended:
                job.finish(server_error())
        gone = {id(job) for job in ended}
        self._running = [job for job in self._running if id(job) not in gone]
        for job in ended:
            if isinstance(job.outcome, JobResult) and job.admitted is not None:
                first = job.first_token - job.submitted if job.first_token is not None else None
                self._metrics.observe_job(job.admitted - job.submitted, first, job.outcome.completion_tokens,
                                          job.outcome.masked, model=job.target.name if job.target else engine.name,
                                          prompt_tokens=job.outcome.prompt_tokens)

    def _refuse_queued(self) -> None:
        error = unavailable(self.load_error or "unknown error")
        while self._queue:
            self._pop().finish(error)
        self._outbox.flush()
        self._fail_calls(error)
        with self._cond:
            self._retiring = []

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

