"""Summaries of checkpoints for ``codex ckpt inspect``: one checkpoint, or every checkpoint in a directory.

Stdlib only, and no tensor data is read: integrity is checked from sizes and safetensors headers,
or by re-hashing every file when asked. Summaries are plain dataclasses that render as a rich
table or as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import prod
from pathlib import Path
from typing import Any

from codex_cli.checkpoint import layout
from codex_cli.errors import CheckpointError

_SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class Row:
    """One checkpoint in a directory listing."""

    name: str
    kind: str | None = None
    epoch: int | None = None
    step: int | None = None
    train_loss: float | None = None
    eval_loss: float | None = None
    size: int = 0
    created: str | None = None
    latest: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Metrics:
    """The run's metrics.jsonl reduced to what a summary shows."""

    steps: list[int]
    losses: list[float]
    eval_losses: list[float]
    skipped_lines: int = 0

    def sparkline(self, width: int = 40) -> str:
        """The training loss as a one-line unicode sparkline."""
        return sparkline(self.losses, width)


@dataclass
class DirSummary:
    """Every checkpoint in a checkpoint.dir, which one is latest, and what is wrong."""

    directory: str
    rehashed: bool
    rows: list[Row]
    latest: str | None
    latest_error: str | None
    unfinished: list[str]
    metrics: Metrics | None

    def problem(self) -> str | None:
        """One line describing what failed, or None when everything checked out."""
        bad = [row for row in self.rows if row.problems]
        if self.latest_error:
            return self.latest_error
        if not bad:
            return None
        first = bad[0]
        return (f"{len(bad)} of {len(self.rows)} checkpoints in '{self.directory}' failed checks "
                f"({first.name}: {first.problems[0]}); run 'codex ckpt inspect {self.directory}/{first.name} --verify'")


@dataclass
class CheckpointSummary:
    """One checkpoint: its metadata, size, integrity and (optionally) its tensors."""

    path: str
    rehashed: bool
    metadata: dict[str, Any]
    size: int
    problems: list[str]
    tensors: list[dict[str, Any]] | None
    metrics: Metrics | None

    def problem(self) -> str | None:
        """One line describing the first integrity problem, or None."""
        return layout.corrupt_message(self.path, self.problems) if self.problems else None


def summarize(path: Path, *, rehash: bool = False, tensors: bool = False) -> DirSummary | CheckpointSummary:
    """Summarize a checkpoint directory, or a checkpoint.dir holding several checkpoints."""
    path = Path(path)
    if layout.is_checkpoint(path):
        return summarize_checkpoint(path, rehash=rehash, tensors=tensors)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' not found; pass a checkpoint directory or a checkpoint.dir")
    if tensors:
        raise CheckpointError(f"--tensors needs one checkpoint, and '{path}' is a directory of checkpoints; "
                              f"pass '{path}/<name>'")
    return summarize_dir(path, rehash=rehash)


def summarize_checkpoint(path: Path, *, rehash: bool = False, tensors: bool = False) -> CheckpointSummary:
    """Metadata, size and integrity of one checkpoint; its tensor table from headers when ``tensors``."""
    metadata = layout.read_metadata(path)
    problems = layout.check_checkpoint(path, metadata["files"], rehash=rehash)
    table = tensor_table(path, metadata["files"]) if tensors else None
    metrics = read_metrics(path.parent / layout.METRICS_FILE, until_step=metadata.get("global_step"))
    return CheckpointSummary(str(path), rehash, metadata, _disk_size(path), problems, table, metrics)


def summarize_dir(ckpt_dir: Path, *, rehash: bool = False) -> DirSummary:
    """One row per checkpoint in ``ckpt_dir``, ordered by global step, with latest.json checked."""
    latest, latest_error = None, None
    try:
        latest = layout.read_latest(ckpt_dir)
    except CheckpointError as error:
        latest_error = str(error)
    rows = [_row(path, rehash, latest) for path in layout.list_checkpoints(ckpt_dir)]
    if not rows and latest_error is None:
        raise CheckpointError(
            f"no checkpoints in '{ckpt_dir}'; run 'codex train' to write some, or pass a checkpoint directory"
        )
    rows.sort(key=lambda r: (r.step is None, r.step or 0, r.created or "", r.name))
    unfinished = [p.name for p in layout.unfinished_writes(ckpt_dir)]
    metrics = read_metrics(Path(ckpt_dir) / layout.METRICS_FILE)
    return DirSummary(str(ckpt_dir), rehash, rows, latest, latest_error, unfinished, metrics)


def tensor_table(path: Path, files: dict[str, Any]) -> list[dict[str, Any]]:
    """Name, dtype, shape and numel of every tensor in the checkpoint's safetensors files (headers only)."""
    table: list[dict[str, Any]] = []
    for rel in sorted(name for name in files if name.endswith(".safetensors")):
        try:
            header = layout.read_safetensors_header(Path(path) / rel)
        except (OSError, ValueError) as e:
            raise CheckpointError(
                f"cannot read tensors of '{Path(path) / rel}' ({e}); the checkpoint is corrupt"
            ) from e
        for name, info in sorted(header.items()):
            if name != "__metadata__":
                table.append({"file": rel, "name": name, "dtype": info.get("dtype"), "shape": info.get("shape"),
                              "numel": prod(info.get("shape") or [])})
    return table


def read_metrics(path: Path, until_step: int | None = None) -> Metrics | None:
    """Per-step training losses and per-epoch eval losses from metrics.jsonl, or None when there is none.

    Rows with an ``event`` other than "step" (such as "epoch_end") do not add to the loss curve.

    A line that is not a JSON object (for example the last line cut short by a kill) is counted in
    ``skipped_lines`` rather than aborting the summary.
    """
    if not path.is_file():
        return None
    rows, skipped = layout.read_metric_rows(path)
    steps, losses, evals = [], [], []
    for row in rows:
        if until_step is not None and (row.get("step") or 0) > until_step:
            continue
        if row.get("event", "step") == "step" and isinstance(row.get("loss"), (int, float)):
            steps.append(row.get("step"))
            losses.append(float(row["loss"]))
        if isinstance(row.get("eval_loss"), (int, float)):
            evals.append(float(row["eval_loss"]))
    return Metrics(steps, losses, evals, skipped)


def sparkline(values: list[float], width: int = 40) -> str:
    """Values as unicode block characters, averaged into at most ``width`` buckets."""
    if not values:
        return ""
    n = min(width, len(values))
    buckets = [values[i * len(values) // n:(i + 1) * len(values) // n] for i in range(n)]
    means = [sum(b) / len(b) for b in buckets]
    low, high = min(means), max(means)
    span = (high - low) or 1.0
    return "".join(_SPARK[min(len(_SPARK) - 1, int((m - low) / span * len(_SPARK)))] for m in means)


def to_json(summary: DirSummary | CheckpointSummary) -> dict[str, Any]:
    """The summary as JSON-ready data (the same fields the tables show, and more)."""
    data = asdict(summary)
    data["type"] = "directory" if isinstance(summary, DirSummary) else "checkpoint"
    data["ok"] = summary.problem() is None
    if summary.metrics is not None:
        data["metrics"]["sparkline"] = summary.metrics.sparkline()
    return data


def _row(path: Path, rehash: bool, latest: str | None) -> Row:
    row = Row(name=path.name, latest=path.name == latest, size=_disk_size(path))
    try:
        metadata = layout.read_metadata(path)
    except CheckpointError as error:
        row.problems.append(str(error))
        return row
    metrics = metadata.get("metrics") or {}
    row.kind, row.epoch, row.step = metadata.get("kind"), metadata.get("epoch"), metadata.get("global_step")
    row.train_loss, row.eval_loss = metrics.get("train_loss"), metrics.get("eval_loss")
    row.created = metadata.get("created_at")
    row.problems = layout.check_checkpoint(path, metadata["files"], rehash=rehash)
    return row


def _disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
