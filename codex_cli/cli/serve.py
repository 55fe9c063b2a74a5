"""``codex serve``: the Starlette + uvicorn inference server."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from codex_cli.cli.options import ConfigOption, Overrides, resolve_config
from codex_cli.errors import UsageError


def serve(
    ctx: typer.Context,
    overrides: Overrides = None,
    host: Annotated[Optional[str], typer.Option(help="Address to bind (serve.host).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to bind (serve.port).")] = None,
    config: ConfigOption = None,
) -> None:
    """Serve /infer and an OpenAI-compatible API from the latest checkpoint."""
    resolve_config(ctx, config, overrides, {"serve.host": host, "serve.port": port})
    raise UsageError("'codex serve' is not built yet (issue #6)")
