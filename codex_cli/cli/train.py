"""``codex train``: fine-tune a causal LM (LoRA or full) and checkpoint every epoch."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from codex_cli.cli.options import ConfigOption, Overrides, resolve_config
from codex_cli.errors import UsageError


def train(
    ctx: typer.Context,
    overrides: Overrides = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs to train (train.epochs).")] = None,
    lora: Annotated[Optional[bool], typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning (lora.enabled).")] = None,
    config: ConfigOption = None,
) -> None:
    """Fine-tune the configured model on the configured data."""
    resolve_config(ctx, config, overrides, {"train.epochs": epochs, "lora.enabled": lora})
    raise UsageError("'codex train' is not built yet (issue #4)")
