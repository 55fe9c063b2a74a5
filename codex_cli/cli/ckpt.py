"""``codex ckpt``: inspect, verify, load and export checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from codex_cli.cli.options import ConfigOption, resolve_config

app = typer.Typer(help="Inspect, verify, load and export checkpoints.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def _console():
    from rich.console import Console

    return Console(highlight=False)


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A checkpoint directory, or a checkpoint.dir holding several.")],
    tensors: Annotated[
        bool, typer.Option("--tensors", help="List every tensor (from safetensors headers only).")
    ] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash every file against metadata.json.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Show the checkpoints in a directory, or one checkpoint's metadata; exit 1 if any fails its checks."""
    from codex_cli.checkpoint.catalog import DirSummary, summarize, to_json
    from codex_cli.cli import ckpt_views
    from codex_cli.errors import CheckpointError

    resolve_config(ctx, config)
    summary = summarize(path, rehash=verify, tensors=tensors)
    if as_json:
        typer.echo(json.dumps(to_json(summary), indent=2))
    elif isinstance(summary, DirSummary):
        ckpt_views.render_dir(_console(), summary)
    else:
        ckpt_views.render_checkpoint(_console(), summary)
    problem = summary.problem()
    if problem:
        raise CheckpointError(problem)


@app.command("load")
def load(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The checkpoint to load (or a checkpoint.dir: its latest).")],
    prompt: Annotated[str, typer.Option(help="Text for the one forward pass.")] = "def add(a, b):",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Load a checkpoint the way serve will, verify every hash and run one forward pass."""
    from codex_cli.checkpoint.inference import check_load
    from codex_cli.cli import ckpt_views
    from codex_cli.runtime import configure_threads

    cfg = resolve_config(ctx, config)
    threads = configure_threads(cfg.threads)
    report = check_load(path, cfg.model, prompt=prompt)
    report["threads"] = threads
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        ckpt_views.render_load(_console(), report)


@app.command("export")
def export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The checkpoint to export (or a checkpoint.dir: its latest).")],
    out: Annotated[Path, typer.Argument(help="New output directory: a standalone Hugging Face model.")],
    merge: Annotated[bool, typer.Option("--merge", help="Merge the LoRA weights into the base model.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write a standalone Hugging Face model directory (from_pretrained loads it without codex)."""
    from codex_cli.checkpoint.export import export_checkpoint
    from codex_cli.runtime import configure_threads

    cfg = resolve_config(ctx, config)
    configure_threads(cfg.threads)
    result = export_checkpoint(path, out, merge=merge, model_cfg=cfg.model)
    typer.echo(f"exported {result.source} ({result.layout}) to {result.out}: {len(result.files)} files")
