"""The HTTP half of ``codex serve``: the Starlette app factory and the uvicorn runner."""

from __future__ import annotations

from codex_cli.serving.http.app import create_app
from codex_cli.serving.http.server import run_server

__all__ = ["create_app", "run_server"]
