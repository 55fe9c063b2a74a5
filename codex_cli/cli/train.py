"""``codex train``: fine-tune a causal LM (LoRA or full) and checkpoint every epoch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from codex_cli.cli.options import ConfigOption, Overrides, resolve_config
from codex_cli.errors import UsageError
from codex_cli.launch import INTERRUPTED_EXIT

if TYPE_CHECKING:
    from codex_cli.config import CodexConfig
    from codex_cli.training import TrainResult


def train(
    ctx: typer.Context,
    overrides: Overrides = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs to train (train.epochs).")] = None,
    lora: Annotated[
        Optional[bool], typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning (lora.enabled).")
    ] = None,
    max_steps: Annotated[
        Optional[int], typer.Option(help="Stop after this many optimizer steps (train.max_steps).")
    ] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Examples per micro-batch (train.batch_size).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (train.lr).")] = None,
    model: Annotated[
        Optional[str],
        typer.Option(help="Base model: codex-tiny, a local HF model dir or a cached hub id (model.name)."),
    ] = None,
    data: Annotated[Optional[str], typer.Option(help="Training data file: .jsonl, .csv or .txt (data.train).")] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue from latest.json in checkpoint.dir, or from the checkpoint given as "
                     "an argument: codex train --resume PATH (checkpoint.resume)."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary; print only the checkpoint path.")
    ] = False,
    nproc: Annotated[
        Optional[int],
        typer.Option(help="Train on N processes of this machine with torch.distributed (train.strategy: ddp "
                     "or fsdp), through torchrun's agent (train.nproc)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Fine-tune the configured model on the configured data, checkpointing every epoch (Ctrl-C saves and exits 130)."""
    overrides, resume_path = _split_resume_path(overrides or [], resume)
    flags = {"train.epochs": epochs, "lora.enabled": lora, "train.max_steps": max_steps, "train.batch_size": batch_size,
             "train.lr": lr, "model.name": model, "data.train": data,
             "checkpoint.resume": True if resume else None, "train.nproc": nproc}
    cfg = resolve_config(ctx, config, overrides, flags)
    from codex_cli.distributed import launched_by_torchrun

    if cfg.train.nproc > 1 and not launched_by_torchrun():  # inside a rank, torchrun already chose the processes
        from codex_cli.tracking import require_installed

        require_installed(cfg.track)  # one line now rather than one from rank 0 and one from the launcher
        _launch(cfg)
        return
    from codex_cli.training import train as run_training
    from codex_cli.training.progress import QuietReporter, RichReporter

    result = run_training(
        cfg.model, cfg.lora, cfg.data, cfg.train, cfg.checkpoint, seed=cfg.seed, threads=cfg.threads,
        mask=cfg.mask, run_config=cfg.redacted_dict(), resume=cfg.checkpoint.resume,
        resume_path=resume_path, reporter=QuietReporter() if quiet else RichReporter(), track_cfg=cfg.track,
    )
    if result.rank == 0:  # under torchrun the other ranks print nothing
        _report(result, quiet)
    if result.interrupted:
        raise typer.Exit(INTERRUPTED_EXIT)


def _report(result: TrainResult, quiet: bool) -> None:
    if quiet:
        typer.echo(str(result.checkpoint) if result.checkpoint else "")
    else:
        _render(result)
    if result.interrupted:
        typer.echo(f"codex: interrupted; saved {result.checkpoint}, continue with 'codex train --resume'", err=True)


def _launch(cfg: CodexConfig) -> None:
    """Run this very command line on ``train.nproc`` ranks under torchrun's agent (codex_cli.launch)."""
    from codex_cli.distributed import check_strategy
    from codex_cli.launch import launch_local

    check_strategy(cfg.train.strategy, cfg.model, full=not cfg.lora.enabled)  # before any process starts
    prog = Path(sys.argv[0])
    if prog.stem != "codex" and prog.parts[-2:] != ("codex_cli", "__main__.py"):  # e.g. called in-process by a test
        raise UsageError("--nproc relaunches codex's own command line; run 'codex train --nproc N' from a shell, "
                         "or torchrun --nproc-per-node N -m codex_cli train")
    code = launch_local(cfg.train.nproc, sys.argv[1:], threads=cfg.threads)
    if code:
        raise typer.Exit(code)


def _split_resume_path(args: list[str], resume: bool) -> tuple[list[str], Optional[Path]]:
    """With --resume, the one argument that is not a dotted ``key=value`` override is the checkpoint to resume."""
    paths = [arg for arg in args if "=" not in arg]
    if not resume or not paths:
        return args, None
    if len(paths) > 1:
        raise UsageError(f"--resume takes one checkpoint, got {len(paths)} ({', '.join(paths)}); pass a single PATH")
    return [arg for arg in args if "=" in arg], Path(paths[0])


def _render(result: TrainResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="codex train", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for what, value in _summary_rows(result):
        table.add_row(what, value)
    Console().print(table)


def _summary_rows(r: TrainResult) -> list[tuple[str, str]]:
    def loss(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:.4f}"

    eval_change = (f"{loss(r.initial_eval_loss)} -> {loss(r.eval_loss)}" if r.initial_eval_loss is not None
                   else loss(r.eval_loss))
    return [
        ("model", f"{r.model_name} ({r.kind})"),
        ("parameters", f"{r.trainable_params:,} trainable / {r.total_params:,} total"),
        ("data", f"{r.train_examples} train / {r.eval_examples} eval, {r.masked_secrets} secret(s) masked, "
                 f"cache {'hit' if r.cache_hit else 'miss'}"),
        ("steps", f"{r.global_step} of {r.total_steps} ({r.steps_this_run} this run), {r.epochs_done} epoch(s) done"),
        ("train loss", loss(r.train_loss)),
        ("eval loss", eval_change),
        ("perplexity", "-" if r.perplexity is None else f"{r.perplexity:.2f}"),
        ("throughput", f"{r.tokens_per_s:,.0f} tokens/s, {r.threads} thread(s)"
                       f"{f' x {r.world_size} processes' if r.world_size > 1 else ''}, {r.elapsed_s:.1f} s"),
        ("resumed from", str(r.resumed_from) if r.resumed_from else "-"),
        ("checkpoint", str(r.checkpoint) if r.checkpoint else "-"),
    ]
