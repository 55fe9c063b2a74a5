"""What the routes share: settings, the model source, the batcher, metrics, and the request helpers."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any, Optional

from starlette.requests import Request

from codex_cli.errors import ServeError
from codex_cli.masking import mask_text, policy_for
from codex_cli.serving.batching import Batcher, Engine, Job, JobResult
from codex_cli.serving.metrics import Metrics
from codex_cli.serving.schemas import ApiError, GenRequest
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
        self.batcher: Optional[Batcher] = None
        self.metrics = Metrics(lambda: self.batcher.depth if self.batcher else 0, lambda: self.ready)

    @property
    def ready(self) -> bool:
        """True once the model is loaded."""
        return self.batcher is not None and self.batcher.engine is not None

    @property
    def model_name(self) -> str:
        """The name every response carries: the loaded model's, else the configured source's."""
        if self.batcher is not None and self.batcher.engine is not None:
            return self.batcher.engine.name
        return self.source.name if self.source is not None else "unknown"

    async def start(self) -> None:
        """Pick the model, start the worker; with serve.preload wait for the model to load."""
        if self._engine is not None:
            engine = self._engine
            self.source = ModelSource(engine.name, "serve.model", engine.name)
            load = lambda: engine  # noqa: E731
        else:
            source = self.source = select_source(self.settings)
            load = lambda: load_engine(source, self.settings)  # noqa: E731
        serve = self.settings.serve
        self.batcher = Batcher(load, self.metrics, max_batch_size=serve.max_batch_size, max_wait_ms=serve.max_wait_ms,
                               max_queue=serve.max_queue, seed=self.settings.seed)
        self.batcher.start(preload=serve.preload)
        log.info("serving %s%s", self.source.describe(), "" if serve.preload else "; it loads on the first request")
        if serve.preload:
            await asyncio.get_running_loop().run_in_executor(None, self.batcher.loaded.wait)
            if self.batcher.load_error is not None:
                raise ServeError(f"the model could not be loaded: {self.batcher.load_error}")

    def stop(self) -> None:
        """Finish queued work and stop the worker (in-flight HTTP requests were drained by uvicorn)."""
        if self.batcher is not None:
            self.batcher.stop(timeout=self.settings.serve.request_timeout_s)

    def mask_prompt(self, request: GenRequest) -> tuple[GenRequest, int]:
        """The request with secrets in its prompt masked, and how many there were."""
        mask = self.settings.mask
        masked, count = mask_text(request.prompt, replacement=mask.replacement, typed=mask.typed,
                                  policy=policy_for(mask))
        if count:
            self.metrics.observe_masked(count)
        return replace(request, prompt=masked), count

    def submit(self, request: GenRequest, stream: bool = False) -> Job:
        """Queue a generation (raises ApiError 503 when the server cannot take it)."""
        assert self.batcher is not None, "the lifespan has not started"
        job = Job(request, asyncio.get_running_loop(), stream=stream)
        self.batcher.submit(job)
        return job

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
