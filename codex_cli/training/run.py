"""Everything one run holds, how it starts (fresh or from a checkpoint) and how it checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from codex_cli.checkpoint import store
from codex_cli.checkpoint.layout import LATEST_FILE, read_latest
from codex_cli.checkpoint.resume import (
    TrainState,
    check_compatible,
    load_checkpoint_for_resume,
    load_weights,
    restore_rng,
)
from codex_cli.checkpoint.sharded import GatheredModel, GatheredOptimizer, follow_save, shard_optimizer_state
from codex_cli.distributed import World, broadcast_json
from codex_cli.distributed.fsdp import is_sharded
from codex_cli.errors import CheckpointError
from codex_cli.tracking import Tracker
from codex_cli.training.progress import QuietReporter
from codex_cli.training.schedule import Plan

if TYPE_CHECKING:
    from codex_cli.config import CheckpointConfig, TrainConfig
    from codex_cli.data import Datasets
    from codex_cli.model import LoadedModel


@dataclass
class Run:
    """The model, data, optimizer, plan and counters of one training run (this rank's view under DDP)."""

    loaded: LoadedModel
    data: Datasets
    optimizer: torch.optim.Optimizer
    plan: Plan
    train_cfg: TrainConfig
    ckpt_cfg: CheckpointConfig
    seed: int
    base_model: dict[str, str]
    config: dict[str, Any]  # the resolved config, secrets redacted, recorded in every checkpoint
    reporter: QuietReporter
    world: World = field(default_factory=World)
    tracker: Tracker = field(default_factory=Tracker)  # MLflow when tracking is on (rank 0), else a no-op
    step_model: Optional[torch.nn.Module] = None  # what steps run through: the DDP wrapper, or loaded.model
    state: TrainState = field(default_factory=TrainState)
    resumed_from: Optional[Path] = None
    written: list[str] = field(default_factory=list)
    last_checkpoint: Optional[Path] = None
    last_train_loss: Optional[float] = None
    last_lr: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    steps_this_run: int = 0  # since this process started (a resumed run counts from the resume)
    tokens_this_run: int = 0  # input tokens of those steps, all ranks together

    @property
    def ckpt_dir(self) -> Path:
        """Where checkpoints, latest.json and metrics.jsonl go."""
        return Path(self.ckpt_cfg.dir)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.loaded.model.parameters()).device

    def data_fingerprint(self) -> dict[str, int]:
        """What must not change between a run and its resume for the data position to mean the same."""
        return {"train_examples": len(self.data.train), "eval_examples": len(self.data.eval)}


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters only (LoRA adapters, or everything for a full run)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def check_fresh_dir(ckpt_dir: Path) -> list[str]:
    """Refuse to start a new run over an existing one; return notes about what was cleaned up."""
    latest = ckpt_dir / LATEST_FILE
    if latest.exists():
        raise CheckpointError(
            f"checkpoint.dir '{ckpt_dir}' already holds a run ({LATEST_FILE} exists); continue it with "
            "'codex train --resume', or set checkpoint.dir to another directory (or remove this one)"
        )
    if store.reset_metrics(ckpt_dir):
        return [f"removed {ckpt_dir}/metrics.jsonl left by an earlier run that never checkpointed"]
    return []


def restore(run: Run, checkpoint: Path) -> list[str]:
    """Continue ``run`` from ``checkpoint``: weights, optimizer, counters, data position, then every RNG."""
    metadata, restored = load_checkpoint_for_resume(checkpoint)
    check_compatible(checkpoint, metadata, run.config, run.base_model,
                     saved_world_size=restored.state.world_size, world_size=run.world.world_size)
    if restored.state.data and restored.state.data != run.data_fingerprint():
        raise CheckpointError(
            f"cannot resume from '{checkpoint}': the training data changed ({_counts(run.data_fingerprint())} now, "
            f"{_counts(restored.state.data)} in the checkpoint); resume with the same data files"
        )
    notes = _adopt(run.ckpt_dir, checkpoint, restored.state) if run.world.is_main else []  # rank 0 writes
    load_weights(run.loaded.model, checkpoint, metadata["kind"])
    run.optimizer.load_state_dict(shard_optimizer_state(run.optimizer, restored.optimizer))  # FSDP: this rank's shard
    run.state = restored.state
    run.resumed_from = checkpoint
    run.last_checkpoint = checkpoint
    notes.insert(0, f"resuming from {checkpoint} (epoch {run.state.epoch}, step {run.state.global_step})")
    if run.state.schedule and run.state.schedule != run.plan.to_dict():
        notes.append(f"the run now has {run.plan.total_steps} steps (was {run.state.schedule.get('total_steps')}): "
                     "the learning-rate schedule is recomputed over the new total")
    dropped = store.truncate_metrics(run.ckpt_dir, after_step=run.state.global_step) if run.world.is_main else 0
    if dropped:
        notes.append(f"dropped {dropped} metrics.jsonl lines logged after step {run.state.global_step} "
                     "(not checkpointed)")
    restore_rng(restored.rng_tensors, restored.rng_json)  # last: building the model above consumed RNG
    return notes


def _adopt(ckpt_dir: Path, checkpoint: Path, state: TrainState) -> list[str]:
    """Make ``checkpoint`` the latest of ``ckpt_dir`` before training on from it (rewinding if it is older)."""
    latest = read_latest(Path(ckpt_dir))
    if checkpoint.resolve().parent != ckpt_dir.resolve():
        if latest is not None:
            raise CheckpointError(
                f"cannot resume '{checkpoint}' into checkpoint.dir '{ckpt_dir}': it already holds another run "
                f"({LATEST_FILE} names '{latest}'); set checkpoint.dir to the checkpoint's directory or an empty one"
            )
        return []
    if latest == checkpoint.name:
        return []
    store.write_latest(ckpt_dir, checkpoint.name, global_step=state.global_step, epoch=state.epoch)
    return [f"rewound {LATEST_FILE} from {latest} to {checkpoint.name}; "
            "later checkpoints are replaced as the run reaches them"]


def save(run: Run, reason: str, *, eval_loss: Optional[float] = None) -> Optional[Path]:
    """Checkpoint the run now (``reason``: epoch, steps or interrupt) through the checkpoint store.

    Only rank 0 writes. Under DDP it writes the unwrapped model (every rank holds the same weights) and
    the others return None at once and wait for it in their next collective. Under FSDP every rank takes
    part in gathering the full state from the shards, one tensor at a time as rank 0 writes it.
    """
    state = run.state
    name = {"epoch": f"epoch-{state.epoch:04d}", "steps": f"step-{state.global_step:08d}",
            "interrupt": f"interrupt-{state.global_step:08d}"}[reason]
    model, optimizer = run.loaded.model, run.optimizer
    # FSDP: all ranks gather the full state, one tensor at a time as rank 0 writes it (unless rank 0 has it already).
    if is_sharded(model) and not broadcast_json(run.world.is_main and store.is_written(run.ckpt_dir, name)):
        model, optimizer = GatheredModel(model, lora=run.loaded.kind == "lora"), GatheredOptimizer(model, optimizer)
        if not run.world.is_main:
            follow_save(model, optimizer)
    if not run.world.is_main:
        return None
    state.world_size = run.world.world_size
    state.schedule = run.plan.to_dict()
    state.data = run.data_fingerprint()
    path = store.save_checkpoint(run.ckpt_dir, name, model=model, tokenizer=run.loaded.tokenizer,
                                 optimizer=optimizer, state=state, info=_info(run, reason, eval_loss),
                                 keep_last=run.ckpt_cfg.keep_last, keep_best=run.ckpt_cfg.keep_best)
    run.written.append(name)
    run.last_checkpoint = path
    run.tracker.checkpoint(path)
    return path


def _info(run: Run, reason: str, eval_loss: Optional[float]) -> dict[str, Any]:
    state = run.state
    return {
        "kind": run.loaded.kind,
        "reason": reason,
        "base_model": run.base_model,
        "config": run.config,
        "epoch": state.epoch,
        "global_step": state.global_step,
        "samples_seen": state.samples_seen,
        "tokens_seen": state.tokens_seen,
        "metrics": {"train_loss": run.last_train_loss, "eval_loss": eval_loss,
                    "perplexity": perplexity(eval_loss), "initial_eval_loss": state.initial_eval_loss},
        "parameters": {"trainable": run.loaded.trainable_params, "total": run.loaded.total_params},
    }


def perplexity(loss: Optional[float]) -> Optional[float]:
    """exp(mean token loss), or None without a loss (inf when it overflows)."""
    if loss is None:
        return None
    return math.exp(loss) if loss < 700 else math.inf


def _counts(fingerprint: dict[str, int]) -> str:
    return f"{fingerprint.get('train_examples')} train / {fingerprint.get('eval_examples')} eval examples"
