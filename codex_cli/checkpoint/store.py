"""Atomic checkpoint writes, latest.json, retention and metrics.jsonl (the write side of layout.py).

A checkpoint is written into ``<dir>/.tmp-<name>-<pid>``, every file and directory is fsynced, the
directory is renamed to ``<name>`` and only then is ``latest.json`` replaced atomically. A crash at
any instant therefore leaves latest.json absent or naming a complete checkpoint. Retention runs
last, so older checkpoints disappear only once a newer one is complete and recorded.

Heavy libraries (torch, peft) are only reached through the objects passed in. Under
torch.distributed only rank 0 calls anything here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_cli import __version__
from codex_cli.checkpoint.layout import (
    LATEST_FILE,
    METADATA_FILE,
    METRICS_FILE,
    SCHEMA_VERSION,
    TMP_PREFIX,
    file_manifest,
    list_checkpoints,
    read_latest,
    read_metadata,
)
from codex_cli.checkpoint.resume import TrainState, save_training_state
from codex_cli.errors import CheckpointError
from codex_cli.model import quiet_hf_progress

if TYPE_CHECKING:
    import torch

# Test-only fault injection: "<point>" or "<point>:<global_step>" makes the process SIGKILL itself
# at that point of a checkpoint write (points: write-weights, write-state, before-rename,
# before-latest, before-retention). Used by tests/test_checkpoint_store.py and tests/test_resume.py.
CRASH_ENV = "CODEX_TEST_CRASH_AT"


def crash_point(point: str, global_step: int) -> None:
    """SIGKILL this process when $CODEX_TEST_CRASH_AT names ``point`` (tests only; no-op otherwise)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    name, _, step = wanted.partition(":")
    if name == point and (not step or int(step) == global_step):
        _die()


def _die() -> None:
    """Die like kill -9 would: no cleanup, no flush (tests replace this to simulate the crash in-process)."""
    os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(
    ckpt_dir: Path,
    name: str,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    info: dict[str, Any],
    keep_last: int | None = None,
    keep_best: bool = False,
) -> Path:
    """Write checkpoint ``name`` atomically, point latest.json at it, then apply retention.

    ``model.save_pretrained`` gives the standard layout (PEFT adapter or full transformers model);
    ``info`` holds the run's metadata fields (kind, reason, base_model, config, epoch, metrics...),
    to which the schema version, library versions, created_at and the file manifest are added.
    """
    ckpt_dir = Path(ckpt_dir)
    final = ckpt_dir / name
    if is_written(ckpt_dir, name):
        return final  # the same name means the same step and reason: nothing new to write
    step = state.global_step
    _remove_dead_writes(ckpt_dir)
    tmp = ckpt_dir / f"{TMP_PREFIX}{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        with quiet_hf_progress():
            model.save_pretrained(tmp)
            crash_point("write-weights", step)
            tokenizer.save_pretrained(tmp)
        save_training_state(tmp, optimizer, state)
        crash_point("write-state", step)
        _write_json(tmp / METADATA_FILE, _metadata(tmp, info))
        _fsync_tree(tmp)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint '{final}' ({e.strerror or e}); "
                              "check free space and permissions") from e
    crash_point("before-rename", step)
    _replace_dir(tmp, final)
    crash_point("before-latest", step)
    write_latest(ckpt_dir, name, global_step=step, epoch=int(info.get("epoch", state.epoch)))
    crash_point("before-retention", step)
    if keep_last is not None:
        apply_retention(ckpt_dir, keep_last=keep_last, keep_best=keep_best)
    return final


def is_written(ckpt_dir: Path, name: str) -> bool:
    """True when checkpoint ``name`` is complete and latest.json names it: saving it again writes nothing."""
    return (Path(ckpt_dir) / name).is_dir() and read_latest(Path(ckpt_dir)) == name


def write_latest(ckpt_dir: Path, name: str, *, global_step: int, epoch: int) -> None:
    """Atomically replace ``latest.json`` (temp file, fsync, os.replace, fsync of the directory)."""
    record = {"checkpoint": name, "global_step": global_step, "epoch": epoch, "updated_at": _now()}
    _atomic_write_text(Path(ckpt_dir) / LATEST_FILE, json.dumps(record, indent=2) + "\n")


def apply_retention(ckpt_dir: Path, *, keep_last: int, keep_best: bool = False) -> list[str]:
    """Delete all but the newest ``keep_last`` checkpoints (and the best by eval loss); return the removed names.

    The checkpoint named by latest.json is never removed; checkpoints whose metadata cannot be read
    are left alone (``codex ckpt inspect`` reports them).
    """
    ckpt_dir = Path(ckpt_dir)
    latest = read_latest(ckpt_dir)
    known: list[tuple[int, str, str, float | None]] = []
    for path in list_checkpoints(ckpt_dir):
        try:
            meta = read_metadata(path)
        except CheckpointError:
            continue
        eval_loss = (meta.get("metrics") or {}).get("eval_loss")
        known.append((int(meta.get("global_step", 0)), str(meta.get("created_at", "")), path.name, eval_loss))
    known.sort()
    keep = {name for _, _, name, _ in known[-keep_last:]} | {latest}
    scored = [(loss, name) for *_, name, loss in known if isinstance(loss, (int, float))]
    if keep_best and scored:
        keep.add(min(scored)[1])
    removed = [name for _, _, name, _ in known if name not in keep]
    for name in removed:
        doomed = ckpt_dir / f"{TMP_PREFIX}delete-{name}-{os.getpid()}"
        os.rename(ckpt_dir / name, doomed)  # atomic: a half-deleted directory never carries a checkpoint name
        shutil.rmtree(doomed)
    return removed


def append_metrics(ckpt_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``metrics.jsonl`` and flush it to the OS."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    with open(ckpt_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_metrics(ckpt_dir: Path, *, after_step: int) -> int:
    """Drop metrics.jsonl lines logged after ``after_step`` (by a run that crashed); return how many.

    Used on resume so the file reads as if the run had never been interrupted.
    """
    path = Path(ckpt_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and _step_of(line) <= after_step]
    if len(kept) != len(lines):
        _atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return len(lines) - len(kept)


def reset_metrics(ckpt_dir: Path) -> bool:
    """Remove a metrics.jsonl left by a run that never checkpointed; True when one was removed."""
    path = Path(ckpt_dir) / METRICS_FILE
    if path.is_file():
        path.unlink()
        return True
    return False


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a torn last line from a crash: drop it


def _metadata(tmp: Path, info: dict[str, Any]) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    versions = {
        "schema_version": SCHEMA_VERSION,
        "codex_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "peft_version": peft.__version__,
        "created_at": _now(),
    }
    return {**versions, **info, "files": file_manifest(tmp)}


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():  # a complete checkpoint left by a run that crashed before updating latest.json
        stale = final.with_name(f"{TMP_PREFIX}stale-{final.name}-{os.getpid()}")
        os.rename(final, stale)
        shutil.rmtree(stale)
    os.rename(tmp, final)
    _fsync_dir(final.parent)


def _remove_dead_writes(ckpt_dir: Path) -> None:
    """Delete temp directories of writes whose process is gone (killed mid-write)."""
    if not ckpt_dir.is_dir():
        return
    for path in ckpt_dir.glob(f"{TMP_PREFIX}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers are never in use: this process writes one checkpoint at a time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            _fsync_dir(path)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
