"""What the routes share: settings, the model source and registry, the scheduler, metrics, and the request helpers."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from starlette.requests import Request

from codex_cli.errors import ServeError
from codex_cli.masking import mask_text, policy_for
from codex_cli.serving.errors import ApiError
from codex_cli.serving.follow import Follower
from codex_cli.serving.generation import Engine, GenRequest, Job, JobResult, Scheduler
from codex_cli.serving.http.metrics import Gauges, Metrics
from codex_cli.serving.registry import Registry
from codex_cli.serving.settings import ServeSettings
from codex_cli.serving.source import ModelSource, load_engine, select_source

log = logging.getLogger("codex.serve")


class ServerState:
    """One per app: started by the lifespan, used by every route."""

    def __init__(self, settings: ServeSettings, engine: Optional[Engine] = None) -> None:
        self.settings = settings
        self.api_key = settings.api_key()
        self._engine = engine
        self.source: Optional[ModelSource] = None
        self.registry: Optional[Registry] = None
        self.scheduler: Optional[Scheduler] = None
        self.follower: Optional[Follower] = None
        self.metrics = Metrics(self._gauges)

    @property
    def ready(self) -> bool:
        """True once the model is loaded."""
        return self.scheduler is not None and self.scheduler.engine is not None

    @property
    def model_name(self) -> str:
        """The base model's name: what requests without a 'model' get."""
        return self.registry.base.name if self.registry is not None else "unknown"

    def _gauges(self) -> Gauges:
        scheduler = self.scheduler
        if scheduler is None:
            return Gauges()
        return Gauges(scheduler.depth, scheduler.running, int(getattr(scheduler.engine, "cache_tokens", 0)),
                      scheduler.engine is not None)

    async def start(self) -> None:
        """Pick the model, start the worker; with serve.preload wait for the model to load."""
        if self._engine is not None:
            engine = self._engine
            self.source = ModelSource(engine.name, "serve.model", engine.name)
            self.registry = Registry(self.source, self.settings)
            load = lambda: engine  # noqa: E731
        else:
            source = self.source = select_source(self.settings)
            registry = self.registry = Registry(source, self.settings)
            load = lambda: load_engine(source, self.settings, registry.startup)  # noqa: E731
        serve = self.settings.serve
        self.scheduler = self.registry.scheduler = Scheduler(
            load, self.metrics, max_batch_size=serve.max_batch_size, max_batch_tokens=serve.max_batch_tokens,
            max_queue=serve.max_queue, seed=self.settings.seed)
        self.scheduler.start(preload=serve.preload)
        if self.source.origin == "--follow":
            self.follower = Follower(Path(self.source.ref).parent, serve.follow_interval_s, self.registry,
                                     self.scheduler.loaded)
            self.follower.start()
        log.info("serving %s%s", self.source.describe(), "" if serve.preload else "; it loads on the first request")
        if serve.preload:
            await asyncio.get_running_loop().run_in_executor(None, self.scheduler.loaded.wait)
            if self.scheduler.load_error is not None:
                raise ServeError(f"the model could not be loaded: {self.scheduler.load_error}")

    def stop(self) -> None:
        """Stop following, finish queued work and stop the worker (in-flight HTTP requests were drained by uvicorn)."""
        if self.follower is not None:
            self.follower.stop()
        if self.scheduler is not None:
            self.scheduler.stop(timeout=self.settings.serve.request_timeout_s)

    def mask_prompt(self, request: GenRequest) -> tuple[GenRequest, int]:
        """The request with secrets in its prompt (or its messages) masked, and how many there were."""
        prompt, count = self._mask(request.prompt)
        messages = None
        if request.messages is not None:
            masked = [(role, *self._mask(content)) for role, content in request.messages]
            messages = tuple((role, content) for role, content, _ in masked)
            count += sum(found for _, _, found in masked)
        if count:
            self.metrics.observe_masked(count)
        return replace(request, prompt=prompt, messages=messages), count

    def _mask(self, text: str) -> tuple[str, int]:
        mask = self.settings.mask
        return mask_text(text, replacement=mask.replacement, typed=mask.typed, policy=policy_for(mask))

    def submit(self, request: GenRequest, model: Optional[str] = None, stream: bool = False) -> Job:
        """Queue a generation on the model named ``model`` (None: the base); ApiError 404 or 503 when it cannot."""
        return self.submit_all([request], model, stream)[0]

    def submit_all(self, requests: list[GenRequest], model: Optional[str], stream: bool = False) -> list[Job]:
        """Queue generations that must run on the same weights (one call's prompts); all or none are queued."""
        assert self.scheduler is not None and self.registry is not None, "the lifespan has not started"
        loop = asyncio.get_running_loop()
        jobs: list[Job] = []
        with self.registry.binding():  # no checkpoint switch or adapter removal between resolving and queuing
            target = self.registry.resolve(model)
            try:
                for request in requests:
                    jobs.append(Job(request, loop, stream=stream, target=target))
                    self.scheduler.submit(jobs[-1])
            except ApiError:
                for job in jobs:
                    job.cancelled = True
                raise
        return jobs

    async def result(self, job: Job) -> JobResult:
        """Wait for a job, bounded by serve.request_timeout_s; an error outcome is raised."""
        timeout = self.settings.serve.request_timeout_s
        try:
            outcome = await asyncio.wait_for(asyncio.shield(job.done), timeout)
        except asyncio.TimeoutError as e:
            job.cancelled = True
            raise timed_out(timeout) from e
        except asyncio.CancelledError:
            job.cancelled = True
            raise
        if isinstance(outcome, ApiError):
            raise outcome
        return outcome

    async def read_json(self, request: Request) -> Any:
        """The request body as JSON: 413 over serve.max_body_bytes, 400 when it is not JSON."""
        limit = self.settings.serve.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(limit)
        if not body:
            raise ApiError(400, "the request body is empty; send a JSON object", "invalid_json")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as e:
            raise ApiError(400, "the request body is not valid JSON", "invalid_json") from e


def too_large(limit: int) -> ApiError:
    """The 413 for a body over serve.max_body_bytes."""
    return ApiError(413, f"the request body is larger than {limit} bytes (serve.max_body_bytes)", "payload_too_large")


def timed_out(timeout: float) -> ApiError:
    """The 504 for a generation slower than serve.request_timeout_s."""
    return ApiError(504, f"generation did not finish within {timeout:g} s (serve.request_timeout_s)", "timeout")
