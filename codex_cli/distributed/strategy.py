"""``train.strategy``: how the ranks share the model. ``ddp`` (the default) keeps a full copy on every rank
and all-reduces gradients; ``fsdp`` shards parameters, gradients and optimizer state (see :mod:`.fsdp`).

Everything the training loop does differently per strategy goes through here: the check before any
work, wrapping the model, skipping the gradient sync of a non-final accumulation micro-step, and
gradient clipping. With one process every strategy trains the plain model.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ContextManager, Iterable, Literal, Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from codex_cli.checkpoint.tensorfile import is_dtensor
from codex_cli.distributed import fsdp
from codex_cli.distributed.world import World
from codex_cli.errors import UsageError

if TYPE_CHECKING:
    from codex_cli.config import ModelConfig

STRATEGIES = ("ddp", "fsdp")


def check_strategy(strategy: str, model: Optional[ModelConfig] = None, *, full: bool = False) -> None:
    """Refuse a ``train.strategy`` this codex cannot run with ``model``, before any process starts or loads anything.

    For ``fsdp`` the model's architecture is built on the meta device (no weights) to find its decoder
    layers and, for full fine-tuning (``full``), to check its weights can be written tensor by tensor.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"train.strategy '{strategy}' is not supported; use one of {', '.join(STRATEGIES)} "
                         "(docs/distributed.md says which to pick)")
    if strategy == "fsdp" and model is not None:
        fsdp.check_shardable(model, full=full)


def wrap_model(model: torch.nn.Module, world: World, *, strategy: str = "ddp",
               precision: Literal["fp32", "bf16"] = "fp32") -> torch.nn.Module:
    """The module training steps run through: DDP's wrapper, or ``model`` itself sharded in place by FSDP.

    One process trains ``model`` unchanged. Build the optimizer after this: FSDP replaces every
    parameter by its shard. DDP broadcasts rank 0's parameters and buffers when it wraps, so every rank
    starts from the same weights even where initialisation drew random numbers (LoRA's A matrices);
    FSDP checks that they are the same instead (each rank keeps its own slice).
    """
    if not world.enabled:
        return model
    if strategy == "fsdp":
        return fsdp.shard_model(model, world, precision=precision)
    device = next(model.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def no_sync(model: torch.nn.Module, skip_sync: bool) -> ContextManager[Any]:
    """Keep gradients local for a non-final accumulation micro-step; they are synced on the final one.

    DDP: ``no_sync()``; FSDP: ``set_requires_gradient_sync(False)`` (each rank accumulates unsharded
    gradients until the final micro-step reduce-scatters them).
    """
    if not skip_sync:
        return contextlib.nullcontext()
    if isinstance(model, DistributedDataParallel):
        return model.no_sync()
    if fsdp.is_sharded(model):
        return fsdp.no_gradient_sync(model)
    return contextlib.nullcontext()


def clip_grad_norm(params: Iterable[torch.nn.Parameter], max_norm: float) -> float:
    """Clip gradients to ``max_norm`` by their total 2-norm, over every rank's shard under FSDP; return the norm."""
    params = list(params)
    if dist.is_initialized() and any(is_dtensor(p) for p in params):
        return fsdp.clip_sharded_grad_norm(params, max_norm)
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
