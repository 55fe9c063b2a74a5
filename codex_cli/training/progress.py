"""What a run shows while it trains: a rich progress bar and epoch lines, or nothing with --quiet."""

from __future__ import annotations

from typing import Any, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class QuietReporter:
    """Shows nothing (``codex train --quiet``); the loop still writes metrics.jsonl."""

    def note(self, text: str) -> None:
        """Say something about the run before or after the bar."""

    def start(self, total_steps: int, done_steps: int, epoch: int) -> None:
        """The bar begins (``done_steps`` > 0 when resuming)."""

    def step(self, record: dict[str, Any]) -> None:
        """One optimizer step finished (``record`` is its metrics.jsonl line)."""

    def epoch_end(self, record: dict[str, Any]) -> None:
        """An epoch finished and was evaluated."""

    def stop(self) -> None:
        """The run ended, normally or not."""


class RichReporter(QuietReporter):
    """A rich progress bar with loss, lr, tokens/s and ETA, on stderr so stdout stays for results."""

    def __init__(self, console: Optional[Console] = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Optional[Progress] = None
        self._task: Optional[TaskID] = None

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def start(self, total_steps: int, done_steps: int, epoch: int) -> None:
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[tps]} tok/s"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=total_steps, completed=done_steps,
                                             epoch=epoch, loss="-", lr="-", tps="-")

    def step(self, record: dict[str, Any]) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.update(self._task, completed=record["step"], epoch=record["epoch"], loss=f"{record['loss']:.4f}",
                              lr=f"{record['lr']:.2e}", tps=f"{record['tokens_per_s']:,.0f}")

    def epoch_end(self, record: dict[str, Any]) -> None:
        eval_part = ""
        if record.get("eval_loss") is not None:
            eval_part = f", eval loss {record['eval_loss']:.4f}, perplexity {record['perplexity']:.2f}"
        self.console.print(f"epoch {record['epoch']}: train loss {record['loss']:.4f}{eval_part}", highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
