"""The root ``codex`` Typer app: global options, sub-apps, and the one error boundary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from codex_cli import __version__
from codex_cli.cli import ckpt, config_cmd, mask, serve, train
from codex_cli.cli.options import CliState, state
from codex_cli.errors import CodexError


class _CodexGroup(TyperGroup):
    """Root group that turns a CodexError into one line on stderr and its exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodexError as error:
            if state(ctx).debug or os.environ.get("CODEX_DEBUG") == "1":
                raise
            typer.echo(f"codex: error: {error}", err=True)
            ctx.exit(error.exit_code)


app = typer.Typer(
    name="codex",
    cls=_CodexGroup,
    help="Fine-tune, checkpoint, serve and guard small causal language models, offline.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)
app.add_typer(ckpt.app, name="ckpt")
app.add_typer(config_cmd.app, name="config")
app.command("train", context_settings={"allow_extra_args": False})(train.train)
app.command("serve")(serve.serve)
app.command("mask")(mask.mask)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"codex {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", "-c",
                     help="YAML config file layered over the packaged defaults (or set $CODEX_CONFIG)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print the codex version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    """codex: one offline tool for the whole loop: train, ckpt, serve, mask."""
    ctx.obj = CliState(config_path=config, debug=debug)


def main() -> None:
    """Entry point of the ``codex`` console script and ``python -m codex_cli``."""
    app(prog_name="codex")


__all__ = ["app", "main"]
