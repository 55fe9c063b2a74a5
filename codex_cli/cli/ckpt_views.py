"""Rich rendering of ``codex ckpt`` results: checkpoint tables, metadata, tensors, load summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from codex_cli.checkpoint.catalog import CheckpointSummary, DirSummary, Metrics


def human_size(size: int) -> str:
    """Bytes as B/KB/MB/GB with one decimal (powers of 1024)."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _loss(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _integrity(problems: list[str], rehashed: bool) -> str:
    if problems:
        return f"[red]CORRUPT[/red]: {escape(problems[0])}"
    return "[green]verified[/green]" if rehashed else "[green]ok[/green]"


def _short_time(created: str | None) -> str:
    # "2026-11-28T17:53:10.123456+00:00" -> "2026-11-28 17:53" (UTC): fits a narrow terminal
    return created[:16].replace("T", " ") if created else "-"


def render_dir(console: Console, summary: DirSummary) -> None:
    """The table of checkpoints in a directory, latest marked, and the run's loss sparkline."""
    table = Table(title=f"Checkpoints in {escape(summary.directory)}", title_justify="left", box=box.SIMPLE_HEAD,
                  padding=(0, 1), pad_edge=False, collapse_padding=True, show_edge=False)
    for column in ("name", "kind", "epoch", "step", "train\nloss", "eval\nloss", "size", "created\n(UTC)",
                   "check"):
        table.add_column(column, justify="right" if column in ("epoch", "step", "size") else "left",
                         no_wrap=column != "check", min_width=5 if column == "check" else None)
    for row in summary.rows:
        table.add_row(f"★ {row.name}" if row.latest else f"  {row.name}", row.kind or "-", _opt(row.epoch),
                      _opt(row.step), _loss(row.train_loss), _loss(row.eval_loss), human_size(row.size),
                      _short_time(row.created), _integrity(row.problems, summary.rehashed))
    console.print(table)
    if summary.latest:
        console.print(f"★ latest: {summary.latest}")
    elif summary.latest_error is None:
        console.print("no latest.json yet")
    for name in summary.unfinished:
        console.print(f"[yellow]unfinished write[/yellow] {name} (ignored; safe to delete)")
    render_metrics(console, summary.metrics)
    if not summary.rehashed:
        console.print("sizes and safetensors headers checked; add --verify to re-hash every file")


def render_checkpoint(console: Console, summary: CheckpointSummary) -> None:
    """One checkpoint's metadata summary, integrity and (optionally) its tensor table."""
    meta = summary.metadata
    metrics, params, base = meta.get("metrics") or {}, meta.get("parameters") or {}, meta.get("base_model") or {}
    table = Table(title=f"Checkpoint {escape(summary.path)}", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in (
        ("kind", meta.get("kind")), ("reason", meta.get("reason")), ("created", meta.get("created_at")),
        ("base model", base.get("name")), ("epoch", meta.get("epoch")), ("global step", meta.get("global_step")),
        ("samples / tokens seen", f"{_opt(meta.get('samples_seen'))} / {_opt(meta.get('tokens_seen'))}"),
        ("train / eval loss", f"{_loss(metrics.get('train_loss'))} / {_loss(metrics.get('eval_loss'))}"),
        ("perplexity", _loss(metrics.get("perplexity"))),
        ("parameters", f"{_opt(params.get('trainable'))} trainable / {_opt(params.get('total'))} total"),
        ("versions", f"codex {meta.get('codex_version')}, torch {meta.get('torch_version')}, "
                     f"transformers {meta.get('transformers_version')}, peft {meta.get('peft_version')}"),
        ("files", f"{len(meta['files'])} files, {human_size(summary.size)}"),
        ("integrity", _integrity(summary.problems, summary.rehashed)),
    ):
        table.add_row(key, value if key == "integrity" else escape(_opt(value)))
    console.print(table)
    if summary.tensors is not None:
        render_tensors(console, summary.tensors)
    render_metrics(console, summary.metrics)


def render_tensors(console: Console, tensors: list[dict[str, Any]]) -> None:
    """Name, dtype, shape and numel of each tensor, read from safetensors headers."""
    table = Table(title=f"{len(tensors)} tensors (from safetensors headers)", title_justify="left")
    for column in ("file", "name", "dtype", "shape", "numel"):
        table.add_column(column, justify="right" if column == "numel" else "left")
    for t in tensors:
        shape = "×".join(map(str, t["shape"])) or "scalar"
        table.add_row(t["file"], t["name"], str(t["dtype"]), shape, f"{t['numel']:,}")
    table.add_section()
    table.add_row("", "total", "", "", f"{sum(t['numel'] for t in tensors):,}")
    console.print(table)


def render_metrics(console: Console, metrics: Metrics | None) -> None:
    """The training loss sparkline (first → last) and eval losses per epoch."""
    if metrics is None or not metrics.losses:
        return
    console.print(f"train loss {metrics.losses[0]:.4f} {metrics.sparkline()} {metrics.losses[-1]:.4f} "
                  f"({len(metrics.losses)} logged steps)")
    if metrics.eval_losses:
        console.print("eval loss per epoch: " + " → ".join(f"{v:.4f}" for v in metrics.eval_losses))
    if metrics.skipped_lines:
        console.print(f"[yellow]{metrics.skipped_lines} unreadable line(s) in metrics.jsonl skipped[/yellow]")


def render_load(console: Console, report: dict[str, Any]) -> None:
    """What ``codex ckpt load`` loaded and what its forward pass produced."""
    table = Table(title=f"Loaded {escape(report['name'])}", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in report.items():
        if key != "name":
            table.add_row(key.replace("_", " "), escape(str(value)))
    console.print(table)


def _opt(value: Any) -> str:
    return "-" if value is None else str(value)
