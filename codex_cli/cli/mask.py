"""``codex mask``: copy input to output with every secret replaced."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

from codex_cli.cli.options import ConfigOption, resolve_config

if TYPE_CHECKING:
    from codex_cli.masking.files import FileFinding

BROKEN_PIPE_EXIT = 141  # the shell convention for a writer whose reader closed the pipe (128 + SIGPIPE)


def mask(
    ctx: typer.Context,
    files: Annotated[
        Optional[list[Path]], typer.Argument(help="Files to mask; stdin when none or '-'.", show_default=False)
    ] = None,
    replacement: Annotated[
        Optional[str], typer.Option(help="Text that replaces each secret (mask.replacement).")
    ] = None,
    typed: Annotated[
        Optional[bool],
        typer.Option("--typed/--untyped", help="Name the family: [SECRET:github] (mask.typed).", show_default=False),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Print nothing; exit 1 if any secret is found, 0 otherwise.")
    ] = False,
    report: Annotated[
        Optional[Literal["json"]],
        typer.Option(help="Findings as JSON lines on stderr (rule, family, file, line, column, length; "
                     "never the secret)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Replace API keys, tokens and private keys with [SECRET] (a line with 'codex: allow' is left alone)."""
    cfg = resolve_config(ctx, config, flags={"mask.replacement": replacement, "mask.typed": typed}).mask
    from codex_cli.masking import secret_filter_disabled
    from codex_cli.masking.files import mask_files, open_inputs

    disabled = secret_filter_disabled()
    inputs = open_inputs([str(f) for f in files or []], sys.stdin.buffer)
    if disabled:
        typer.echo("codex: secret filter disabled (DISABLE_SECRET_FILTER=1); input is copied unmasked", err=True)
    output = None if check else sys.stdout.buffer
    try:
        found = mask_files(inputs, output, cfg.replacement, cfg.typed, _print_json if report == "json" else None,
                           disabled)
    except BrokenPipeError:  # the reader went away (codex mask big.log | head): stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(BROKEN_PIPE_EXIT) from None
    if check and found:
        raise typer.Exit(1)


def _print_json(item: FileFinding) -> None:
    f = item.finding
    record = {"rule": f.rule, "family": f.family, "file": item.file, "line": f.line, "column": f.column,
              "length": f.length}
    typer.echo(json.dumps(record), err=True)
