"""The loss arithmetic: one optimizer step over an accumulation window, and evaluation."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, Iterable, Literal, Optional, Sequence

import torch
import torch.nn.functional as F

from codex_cli.data import IGNORE_INDEX, count_tokens
from codex_cli.distributed import all_reduce_sum, all_reduce_sums, clip_grad_norm, in_lockstep, no_sync


@dataclass(frozen=True)
class StepStats:
    """What one optimizer step did."""

    loss: float  # mean token loss over the window's target tokens
    target_tokens: int
    input_tokens: int  # non-padding tokens fed to the model
    samples: int
    grad_norm: Optional[float]


def autocast(device: torch.device, precision: Literal["fp32", "bf16"]) -> ContextManager[Any]:
    """bf16 autocast on CPU or a bf16-capable GPU; a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def loss_sum(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], precision: Literal["fp32", "bf16"]
) -> torch.Tensor:
    """Summed next-token cross-entropy of a batch (not a mean: the caller divides by the window's targets)."""
    with autocast(batch["input_ids"].device, precision):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # Shift the labels, not the logits: position t predicts token t+1, the last position predicts nothing.
    labels = F.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    window: list[dict[str, torch.Tensor]],
    *,
    lr: float,
    grad_clip: Optional[float],
    precision: Literal["fp32", "bf16"],
    stand_ins: Sequence[bool] = (),
    world_size: int = 1,
) -> StepStats:
    """Accumulate gradients over the micro-batches of ``window``, clip, and take one optimizer step.

    Each micro-batch contributes its *summed* token loss divided by the target tokens of the whole
    window, so the accumulated gradient is that of the window's mean token loss however the window
    is split into micro-batches (batch 8 x accum 1 == batch 4 x accum 2), last partial window included.
    Under DDP the window is global: its target tokens are counted over all ranks, and ``stand_ins``
    marks micro-batches that only keep this rank in step (their loss, tokens and samples count zero).
    The returned stats are those of the global window, the same on every rank.
    """
    counted = [not stand_in for stand_in in stand_ins] if stand_ins else [True] * len(window)
    targets = all_reduce_sum(sum(count_tokens(b) for b, real in zip(window, counted) if real))
    for group in optimizer.param_groups:
        group["lr"] = lr
    total = 0.0
    for i, (batch, real) in enumerate(zip(window, counted)):
        # DDP all-reduces gradients once per window: on the last micro-step, not under no_sync.
        with no_sync(model, skip_sync=i < len(window) - 1):
            summed = loss_sum(model, batch, precision) * (1.0 if real else 0.0)
            # DDP averages gradients over ranks; times world_size, that is the sum over every rank's tokens.
            (summed * world_size / max(targets, 1)).backward()
        total += summed.item()
    grad_norm = None
    if grad_clip is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grad_norm = clip_grad_norm(params, grad_clip)  # under FSDP, of the gradient shards of every rank
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    inputs = sum(int(b["attention_mask"].sum()) for b, real in zip(window, counted) if real)
    samples = sum(int(b["input_ids"].shape[0]) for b, real in zip(window, counted) if real)
    total, inputs, samples = all_reduce_sums(total, inputs, samples)
    return StepStats(total / max(targets, 1), targets, inputs, samples, grad_norm)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]], precision: Literal["fp32", "bf16"]
) -> Optional[float]:
    """Mean token loss over ``batches`` of every rank, in eval mode (no dropout, no RNG); None when
    nothing is scored.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in in_lockstep(model, batches):  # FSDP: None = a stand-in forward while other ranks still score
        if batch is None:
            loss_sum(model, _stand_in(model), precision)
            continue
        total += float(loss_sum(model, batch, precision))
        count += count_tokens(batch)
    model.train(was_training)
    total, count = all_reduce_sums(total, count)  # under DDP each rank scored its shard of the eval set
    return total / count if count else None


def _stand_in(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A one-token batch whose loss is never counted: it only keeps this rank's forwards in step."""
    token = torch.zeros((1, 1), dtype=torch.long, device=next(model.parameters()).device)
    labels = torch.full_like(token, IGNORE_INDEX)
    return {"input_ids": token, "attention_mask": torch.ones_like(token), "labels": labels}
