"""Adapters at runtime: POST /v1/adapters and DELETE /v1/adapters/{name} (behind the bearer key when one is set).

Adding reads, verifies and checks the adapter off the event loop, and answers once requests can use it.
Removing answers at once: new requests for the name get 404, those already queued or running finish on it.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from codex_cli.serving.http.openai_api import model_entry
from codex_cli.serving.http.schemas import parse_adapter
from codex_cli.serving.http.state import ServerState


async def add_adapter(request: Request) -> Response:
    """POST /v1/adapters {"name", "path"}: serve a LoRA adapter (trained on this server's base) under ``name``."""
    state: ServerState = request.app.state.codex
    name, path = parse_adapter(await state.read_json(request))
    assert state.registry is not None
    target = await asyncio.get_running_loop().run_in_executor(None, state.registry.add, name, path)
    return JSONResponse(model_entry(target), status_code=201)


async def remove_adapter(request: Request) -> Response:
    """DELETE /v1/adapters/{name}: stop serving an adapter; requests already running on it finish first."""
    state: ServerState = request.app.state.codex
    assert state.registry is not None
    target = state.registry.remove(request.path_params["name"])
    return JSONResponse({"id": target.name, "object": "model", "deleted": True})
