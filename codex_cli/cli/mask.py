"""``codex mask``: copy input to output with every secret replaced."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional, TextIO

import typer

from codex_cli.cli.options import ConfigOption, resolve_config

if TYPE_CHECKING:
    from codex_cli.config import MaskConfig

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
        bool, typer.Option("--check", help="Write no output; list where secrets are on stderr and exit 1 if any "
                           "is found, 0 otherwise (a pre-commit hook).")
    ] = False,
    report: Annotated[
        Optional[Literal["json", "sarif"]],
        typer.Option(help="Findings as JSON lines, or one SARIF 2.1.0 document, on stderr or --report-file "
                     "(rule, family, file, line, column, length; never the secret)."),
    ] = None,
    report_file: Annotated[
        Optional[Path], typer.Option(help="Write the --report here instead of stderr.", show_default=False)
    ] = None,
    list_rules: Annotated[
        bool, typer.Option("--list-rules", help="Print every rule (id, family, what it matches) and exit.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Replace API keys, tokens, passwords and private keys with [SECRET] (a line with 'codex: allow' is left alone)."""
    cfg = resolve_config(ctx, config, flags={"mask.replacement": replacement, "mask.typed": typed}).mask
    if list_rules:
        _print_rules(cfg)
        return
    from codex_cli.masking import policy_for, secret_filter_disabled
    from codex_cli.masking.files import mask_files, open_inputs
    from codex_cli.masking.reports import Report

    disabled = secret_filter_disabled()
    inputs = open_inputs([str(f) for f in files or []], sys.stdin.buffer)
    if disabled:
        typer.echo("codex: secret filter disabled (DISABLE_SECRET_FILTER=1); input is copied unmasked", err=True)
    policy = policy_for(cfg)
    sink = _report_sink(report_file) if report else None
    findings = Report(report or ("locations" if check else None), sink or sys.stderr, policy)
    output = None if check else sys.stdout.buffer
    try:
        found = mask_files(inputs, output, cfg.replacement, cfg.typed, findings.add if findings.format else None,
                           disabled, policy)
    except BrokenPipeError:  # the reader went away (codex mask big.log | head): stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(BROKEN_PIPE_EXIT) from None
    finally:
        findings.close()
        if sink is not None:
            sink.close()
    if check and found:
        raise typer.Exit(1)


def _report_sink(path: Optional[Path]) -> Optional[TextIO]:
    if path is None:
        return None
    from codex_cli.errors import InputError

    try:
        return path.open("w", encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write the report to '{path}': {e.strerror or type(e).__name__}; "
                         "pass a writable path to --report-file") from e


def _print_rules(cfg: MaskConfig) -> None:
    from codex_cli.masking import RULES

    rows = [(r.id, r.family, r.description) for r in RULES]
    rows += [(r.name, r.family, (r.description or f"your rule: {r.regex}") + " (mask.rules)") for r in cfg.rules]
    id_width = max(len(r[0]) for r in rows)
    family_width = max(len(r[1]) for r in rows)
    lines = [f"{'RULE':<{id_width}}  {'FAMILY':<{family_width}}  MATCHES"]
    lines += [f"{rule:<{id_width}}  {family:<{family_width}}  {what}" for rule, family, what in rows]
    if cfg.allow:
        lines.append(f"allow list (mask.allow): {len(cfg.allow)} pattern(s); a secret matching one is left alone")
    typer.echo("\n".join(lines))
