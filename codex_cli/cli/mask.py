"""``codex mask``: copy input to output with every secret replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from codex_cli.cli.options import ConfigOption, resolve_config
from codex_cli.errors import UsageError


def mask(
    ctx: typer.Context,
    files: Annotated[Optional[list[Path]], typer.Argument(help="Files to mask; stdin when none or '-'.", show_default=False)] = None,
    config: ConfigOption = None,
) -> None:
    """Replace API keys, tokens and private keys with [SECRET]."""
    resolve_config(ctx, config)
    raise UsageError("'codex mask' is not built yet (issue #3)")
