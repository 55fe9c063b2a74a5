"""How many optimizer steps a run takes and the learning rate at each one (nanoGPT's get_lr, as a plan)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Optional

Schedule = Literal["cosine", "linear", "constant"]


@dataclass(frozen=True)
class Plan:
    """The shape of a run: batches, accumulation windows and the lr schedule over its steps."""

    batches_per_epoch: int
    steps_per_epoch: int  # accumulation windows per epoch (the last one may be partial)
    total_steps: int  # over all epochs, capped by max_steps
    warmup_steps: int
    schedule: Schedule
    lr: float

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON values (stored in checkpoints)."""
        return asdict(self)


def make_plan(
    num_examples: int,
    *,
    batch_size: int,
    grad_accum: int,
    epochs: int,
    max_steps: Optional[int],
    lr: float,
    schedule: Schedule,
    warmup_steps: int = 0,
    warmup_ratio: float = 0.0,
) -> Plan:
    """Count the steps of a run; ``warmup_steps`` wins over ``warmup_ratio`` when both are set."""
    batches = math.ceil(num_examples / batch_size)
    steps_per_epoch = math.ceil(batches / grad_accum)
    total = steps_per_epoch * epochs
    if max_steps is not None:
        total = min(total, max_steps)
    warmup = warmup_steps if warmup_steps > 0 else math.ceil(warmup_ratio * total)
    return Plan(batches, steps_per_epoch, total, min(warmup, total), schedule, lr)


def lr_at(step: int, plan: Plan) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then cosine/linear decay or constant."""
    if step < plan.warmup_steps:
        return plan.lr * (step + 1) / plan.warmup_steps
    if plan.schedule == "constant":
        return plan.lr
    decay_steps = max(1, plan.total_steps - plan.warmup_steps)
    progress = min(1.0, (step - plan.warmup_steps) / decay_steps)
    if plan.schedule == "linear":
        return plan.lr * (1.0 - progress)
    return plan.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
