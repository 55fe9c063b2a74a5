"""Options shared by several commands and the one way a command loads its config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Mapping, NamedTuple, Optional

import typer

if TYPE_CHECKING:
    from codex_cli.config import CodexConfig


CONFIG_ENV = "CODEX_CONFIG"  # the config file to use when no --config is given (config.CONFIG_ENV)


class CliState(NamedTuple):
    """What the root callback parsed: global options every command can see. (A NamedTuple: creating a dataclass
    costs about a millisecond at every start, and every command starts here.)"""

    config_path: Optional[Path] = None
    debug: bool = False


ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config file (overrides the global --config and $CODEX_CONFIG)."),
]
Overrides = Annotated[
    Optional[list[str]],
    typer.Argument(help="Dotted config overrides, e.g. lora.r=16 train.lr=3e-4 (values are YAML scalars).",
                   show_default=False),
]


def state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (a default one when called without the root app)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def resolve_config(
    ctx: typer.Context,
    config: Optional[Path] = None,
    overrides: Optional[list[str]] = None,
    flags: Mapping[str, Any] | None = None,
) -> CodexConfig:
    """Load the config for a command: its own --config wins over the global one."""
    from codex_cli.config import load_config  # yaml and the dataclasses load only when a command runs

    path = config if config is not None else state(ctx).config_path
    return load_config(path, overrides or (), flags)
