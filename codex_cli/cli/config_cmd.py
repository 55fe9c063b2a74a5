"""``codex config``: show the fully resolved configuration."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from codex_cli.cli.options import ConfigOption, Overrides, resolve_config

app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    overrides: Overrides = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the fully resolved config (defaults < file < overrides), secrets redacted."""
    from codex_cli.config import dump_yaml

    resolved = resolve_config(ctx, config, overrides)
    if as_json:
        typer.echo(json.dumps(resolved.redacted_dict(), indent=2))
    else:
        typer.echo(dump_yaml(resolved), nl=False)
