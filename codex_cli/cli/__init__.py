"""The root ``codex`` Typer app: global options, sub-apps, and the one error boundary."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from codex_cli import __version__
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"codex {__version__}")
        raise typer.Exit()


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


def build_app(only: Optional[str] = None) -> typer.Typer:
    """The root app with every command, or with just ``only`` (what `codex mask` runs: nothing else to import)."""
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
    app.callback()(root)
    if only == "mask":
        from codex_cli.cli import mask

        app.command("mask")(mask.mask)
        return app
    from codex_cli.cli import ckpt, config_cmd, mask, serve, train

    app.add_typer(ckpt.app, name="ckpt")
    app.add_typer(config_cmd.app, name="config")
    app.command("train", context_settings={"allow_extra_args": False})(train.train)
    app.command("serve")(serve.serve)
    app.command("mask")(mask.mask)
    return app


_ROOT_VALUE_OPTIONS = frozenset({"--config", "-c"})


def _command(args: list[str]) -> Optional[str]:
    """The command word of a command line (after the root options), if any."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _ROOT_VALUE_OPTIONS:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return arg
    return None


def main() -> None:
    """Entry point of the ``codex`` console script and ``python -m codex_cli``."""
    only = "mask" if _command(sys.argv[1:]) == "mask" else None
    build_app(only)(prog_name="codex")


def __getattr__(name: str) -> Any:
    if name == "app":  # the full app, built on first use (tests drive it with CliRunner)
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)


__all__ = ["app", "build_app", "main"]
