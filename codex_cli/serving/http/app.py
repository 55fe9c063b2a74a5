"""``create_app()``: the Starlette app behind ``codex serve`` (and ``uvicorn --factory``)."""

from __future__ import annotations

import logging
from typing import Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from codex_cli.serving.errors import ApiError
from codex_cli.serving.generation import Engine
from codex_cli.serving.http.adapter_routes import add_adapter, remove_adapter
from codex_cli.serving.http.guard import Guard, MaskingFilter
from codex_cli.serving.http.metrics import CONTENT_TYPE
from codex_cli.serving.http.openai_api import chat_completions, completions, models
from codex_cli.serving.http.schemas import parse_infer
from codex_cli.serving.http.state import ServerState
from codex_cli.serving.settings import ServeSettings


def create_app(settings: Optional[ServeSettings] = None, *, engine: Optional[Engine] = None) -> Guard:
    """Build the server app; with no settings they come from the environment (``codex serve`` or $CODEX_CONFIG).

    ``engine`` replaces the configured model (tests use it to serve a stub).
    """
    state = ServerState(settings if settings is not None else ServeSettings.from_env(), engine)
    routes = [
        Route("/infer", infer, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/adapters", add_adapter, methods=["POST"]),
        Route("/v1/adapters/{name}", remove_adapter, methods=["DELETE"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error})
    app.state.codex = state
    _mask_uvicorn_access_log()
    return Guard(app, state)


async def infer(request: Request) -> Response:
    """POST /infer: one prompt in, one completion out."""
    state: ServerState = request.app.state.codex
    model, gen = parse_infer(await state.read_json(request), state.settings.serve)
    gen, masked = state.mask_prompt(gen)
    job = state.submit(gen, model)
    result = await state.result(job)
    return JSONResponse({
        "completion": result.text,
        "model": job.target.name,
        "checkpoint": job.target.checkpoint,
        "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens},
        "finish_reason": result.finish_reason,
        "masked": masked + result.masked,
    })


async def healthz(request: Request) -> Response:
    """GET /healthz: the server process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 once the model is loaded, 503 before (or when it failed to load)."""
    state: ServerState = request.app.state.codex
    if state.ready:
        return JSONResponse({"status": "ready", "model": state.model_name})
    failed = state.scheduler is not None and state.scheduler.load_error is not None
    status = "failed" if failed else "not_loaded"
    return JSONResponse({"status": status, "model": state.model_name}, status_code=503)


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format."""
    state: ServerState = request.app.state.codex
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE)


async def api_error(request: Request, exc: Exception) -> Response:
    """An ApiError as its JSON body and status."""
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 as the same JSON error shape."""
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request_error")
    message = {404: "no such route; see GET /v1/models, POST /infer, POST /v1/completions, "
                                "POST /v1/chat/completions, POST /v1/adapters",
               405: "method not allowed on this route"}.get(exc.status_code, "bad request")
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=exc.status_code,
                        headers=exc.headers)


def _mask_uvicorn_access_log() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())
