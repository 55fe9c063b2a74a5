"""``codex ckpt``: inspect, verify, load and export checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codex_cli.cli.options import ConfigOption, resolve_config
from codex_cli.errors import UsageError

app = typer.Typer(help="Inspect, verify, load and export checkpoints.", no_args_is_help=True)


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A checkpoint directory or a checkpoint.dir of several.")],
    config: ConfigOption = None,
) -> None:
    """Show the checkpoints in a directory, or one checkpoint's metadata."""
    resolve_config(ctx, config)
    raise UsageError("'codex ckpt inspect' is not built yet (issue #5)")


@app.command("load")
def load(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The checkpoint to load.")],
    config: ConfigOption = None,
) -> None:
    """Load a checkpoint the way serve will, verify it and run one forward pass."""
    resolve_config(ctx, config)
    raise UsageError("'codex ckpt load' is not built yet (issue #5)")


@app.command("export")
def export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The checkpoint to export.")],
    out: Annotated[Path, typer.Argument(help="Output Hugging Face model directory.")],
    merge: Annotated[bool, typer.Option(help="Merge LoRA weights into the base model.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write a standalone Hugging Face model directory from a checkpoint."""
    resolve_config(ctx, config)
    raise UsageError("'codex ckpt export' is not built yet (issue #5)")
