"""FSDP with ``torch.distributed.fsdp.fully_shard`` (FSDP2): every parameter, its gradient and its optimizer
state held as a DTensor sharded across the ranks, so each rank keeps 1/N of them.

``fully_shard`` is applied to each decoder layer, then to the root (embeddings, final norm, head): a
forward or backward pass gathers one layer's full parameters at a time and frees them after, and
gradients are reduce-scattered layer by layer. The layers are the modules of the classes transformers
names in the model's ``_no_split_modules`` (:func:`codex_cli.model.decoder_layers`); a family without
them is refused before any work. On CUDA with ``train.precision: bf16``, ``MixedPrecisionPolicy``
computes in bf16 and reduces gradients in fp32; the sharded weights and optimizer state stay fp32.

Every rank must run the same sequence of forwards (each gathers parameters from all ranks), which is
why evaluation pads a rank with fewer batches with stand-in forwards (:func:`in_lockstep`).
Checkpoints of a sharded model are gathered tensor by tensor in :mod:`codex_cli.checkpoint.sharded`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, Optional, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from codex_cli.distributed.world import World, any_rank, collective_device
from codex_cli.errors import DistributedError

if TYPE_CHECKING:
    from codex_cli.config import ModelConfig

T = TypeVar("T")
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
_MMAP_THRESHOLD_BYTES = 1 << 20


def check_shardable(cfg: ModelConfig, *, full: bool) -> None:
    """Refuse a model FSDP cannot shard layer by layer, or (``full``) cannot save tensor by tensor; loads no weights."""
    from codex_cli.checkpoint.sharded import weight_file_names
    from codex_cli.model import decoder_layers, meta_model

    model = meta_model(cfg)
    decoder_layers(model)
    if full:
        weight_file_names(model, model.state_dict())


def shard_model(model: torch.nn.Module, world: World, *, precision: Literal["fp32", "bf16"],
                layers: Optional[list[torch.nn.Module]] = None) -> torch.nn.Module:
    """Shard ``model`` in place across the run's ranks: each of ``layers`` (its decoder layers unless given),
    then the root; return it.

    On CUDA the model may still be on the CPU: each layer moves to this rank's GPU as it is sharded,
    so no GPU ever holds more than one full layer.
    """
    from torch.distributed.device_mesh import init_device_mesh

    from codex_cli.model import decoder_layers

    layers = decoder_layers(model) if layers is None else layers
    _check_same_weights(model, world)
    device_type = collective_device().type
    if device_type == "cpu":
        _return_freed_buffers_to_the_system()
    mesh = init_device_mesh(device_type, (world.world_size,))
    policy = mixed_precision(precision, device_type)
    for layer in layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def mixed_precision(precision: Literal["fp32", "bf16"], device_type: str) -> MixedPrecisionPolicy:
    """bf16 compute with fp32 gradient reduction on CUDA for ``bf16``; otherwise none (on the CPU autocast
    does bf16, as under DDP)."""
    if precision == "bf16" and device_type == "cuda":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def is_sharded(model: Any) -> bool:
    """True for a model sharded by :func:`shard_model` (its parameters are DTensors)."""
    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def no_gradient_sync(model: Any) -> Iterator[None]:
    """Backward passes inside accumulate unsharded gradients locally, without reduce-scattering them."""
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def clip_sharded_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """``clip_grad_norm_`` for sharded gradients: the total norm is reduced over every rank's shards first."""
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads)
    if isinstance(total, DTensor):  # a partial norm per rank until reduced
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return float(total)


def in_lockstep(model: Any, batches: Iterable[T]) -> Iterator[Optional[T]]:
    """``batches``, then None while another rank still has some: under FSDP every forward gathers parameters
    from all ranks, so a rank with fewer batches runs stand-ins until all are done (one all-reduce per batch)."""
    if not is_sharded(model):
        yield from batches
        return
    remaining = iter(batches)
    while True:
        batch = next(remaining, None)
        if not any_rank(batch is not None):
            return
        yield batch


def _return_freed_buffers_to_the_system() -> None:
    """On the CPU with glibc, give every allocation of 1 MiB or more its own mapping, unmapped when freed.

    FSDP gathers and frees every layer's weights and gradients on every pass. By default glibc raises its
    mmap threshold to 32 MiB after the first large free, so these buffers land in the heap, whose freed
    holes stay resident: 200-450 MiB per rank in benchmarks/train_memory.py. Nothing happens where the
    C library has no mallopt, or where the user set MALLOC_MMAP_THRESHOLD_ (their setting stands).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _check_same_weights(model: torch.nn.Module, world: World) -> None:
    """Every rank must start from rank 0's weights: fully_shard keeps each rank's own slice, it broadcasts nothing.

    They are the same by construction (same files, same seed for LoRA's random init); a checksum
    all-gather catches a node whose model files differ, instead of training on a mix.
    """
    total = torch.zeros(1, dtype=torch.float64)
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            total += tensor.detach().double().sum().cpu()
    sums = [torch.zeros(1, dtype=torch.float64, device=collective_device()) for _ in range(world.world_size)]
    dist.all_gather(sums, total.to(collective_device()))
    differ = [rank for rank, value in enumerate(sums) if not torch.equal(value, sums[0])]
    if differ:
        raise DistributedError(f"rank {differ[0]} built other initial weights than rank 0; every node needs the same "
                               "model files at model.name and the same codex")
