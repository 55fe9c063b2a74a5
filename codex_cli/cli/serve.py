"""``codex serve``: the Starlette + uvicorn inference server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from codex_cli.cli.options import ConfigOption, Overrides, resolve_config


def serve(
    ctx: typer.Context,
    overrides: Overrides = None,
    host: Annotated[Optional[str], typer.Option(help="Address to bind (serve.host; default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to bind (serve.port).")] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Worker processes, each with its own model (serve.workers).")
    ] = None,
    checkpoint: Annotated[
        Optional[Path], typer.Option("--checkpoint", help="Checkpoint directory (or a checkpoint.dir) to serve.")
    ] = None,
    model: Annotated[
        Optional[str], typer.Option("--model", help="Model name or directory to serve, or 'echo' (serve.model).")
    ] = None,
    preload: Annotated[
        Optional[bool], typer.Option("--preload/--lazy", help="Load the model at start, not on the first request.")
    ] = None,
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", help="Require this bearer token (serve.api_key; or $CODEX_API_KEY).")
    ] = None,
    adapter: Annotated[
        Optional[list[str]],
        typer.Option("--adapter", metavar="NAME=PATH", show_default=False,
                     help="Also serve this LoRA adapter as model NAME; repeatable (serve.adapters)."),
    ] = None,
    follow: Annotated[
        Optional[Path],
        typer.Option("--follow", metavar="CKPT_DIR",
                     help="Serve the checkpoint CKPT_DIR/latest.json names and switch to each new one (serve.follow)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve /infer and an OpenAI-compatible API (latest checkpoint, else model.name), with optional LoRA adapters."""
    cfg = resolve_config(ctx, config, overrides, {
        "serve.host": host, "serve.port": port, "serve.workers": workers, "serve.model": model,
        "serve.preload": preload, "serve.api_key": api_key, "serve.adapters": adapter or None,
        "serve.follow": str(follow) if follow is not None else None,
    })
    from codex_cli.serving import run_server
    from codex_cli.serving.settings import ServeSettings

    run_server(ServeSettings.from_config(cfg, str(checkpoint) if checkpoint is not None else None))
