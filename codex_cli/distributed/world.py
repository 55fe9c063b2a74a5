"""The torch.distributed runtime of ``codex train``: who each process is, its process group, and rank agreement.

One process per rank, started by torchrun (``torchrun --nproc_per_node N -m codex_cli train``) or by
``codex train --nproc N`` (see :mod:`codex_cli.launch`). torchrun tells each process who it is through
RANK, WORLD_SIZE and LOCAL_RANK; without them codex runs as one plain process and every helper here
is a no-op, so the training loop reads the same either way.

The backend follows the device: ``nccl`` on CUDA, ``gloo`` on CPU. Every collective has a timeout,
so a rank that hangs makes the others fail instead of waiting forever; a rank that *dies* is seen
sooner by torchrun's agent, which stops the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator, Literal

import torch
import torch.distributed as dist

from codex_cli.errors import DistributedError, UsageError

DEFAULT_TIMEOUT_S = 1800.0  # as HF Trainer's ddp_timeout: long enough for rank 0 to write a big checkpoint
# Test-only fault injection: "RANK:STEP" makes that rank exit abruptly (os._exit) at that optimizer step.
FAULT_ENV = "CODEX_TEST_EXIT_AT"
FAULT_EXIT_CODE = 17
_RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class World:
    """Who this process is among the processes of one run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when several processes train together (a process group is needed)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics.jsonl and the progress bar."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True inside a process started by torchrun's agent (or any launcher that sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


def detect_world() -> World:
    """This process's place in the run, from the RANK / WORLD_SIZE / LOCAL_RANK variables torchrun sets."""
    if not launched_by_torchrun():
        return World()
    values = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        raw = os.environ.get(name, "0")
        try:
            values[name] = int(raw)
        except ValueError as e:
            raise UsageError(f"environment variable {name}={raw!r} is not an integer; "
                             "launch codex with torchrun") from e
    world = World(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if not 0 <= world.rank < world.world_size:
        raise UsageError(f"RANK={world.rank} is outside WORLD_SIZE={world.world_size}; launch codex with torchrun")
    return world


def backend_for(device: str) -> Literal["nccl", "gloo"]:
    """``nccl`` for CUDA (``model.device`` cuda, or auto with a GPU present), ``gloo`` for everything else."""
    on_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return "nccl" if on_cuda else "gloo"


def init_distributed(device: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the run's process group for ``model.device`` (a no-op for a single process); return this process's World.

    On CUDA each rank first selects its own GPU (LOCAL_RANK), so a later ``.to("cuda")`` lands there.
    """
    world = detect_world()
    if not world.enabled or dist.is_initialized():
        return world
    backend = backend_for(device)
    if backend == "nccl":
        gpus = torch.cuda.device_count()
        if world.local_rank >= gpus:
            raise UsageError(f"local rank {world.local_rank} has no GPU (this machine has {gpus}); "
                             "start at most one process per GPU (--nproc / --nproc-per-node)")
        torch.cuda.set_device(world.local_rank)
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"rank {world.rank} could not join the {backend} process group ({e}); "
                               "check --rdzv-endpoint / MASTER_ADDR and that every node can reach it") from e
    return world


def shutdown() -> None:
    """Leave the process group together: every rank waits for the others first (safe without a group).

    A rank that tears gloo down while a peer is still in a collective can abort the peer
    ("terminate called without an active exception"), so no rank leaves before all have arrived.
    """
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def seed_rank(seed: int, world: World, step: int = 0) -> None:
    """Give each rank > 0 its own torch RNG stream (dropout masks) from (seed, rank, step); rank 0 keeps its own.

    Call it after the model is built and wrapped (so initialisation is the same everywhere) and after a
    resume has restored rank 0's RNG state, passing the step resumed from.
    """
    if world.rank > 0:
        torch.manual_seed(seed + _RANK_SEED_STRIDE * world.rank + step)


def broadcast_json(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s JSON-serialisable ``value`` on every rank (sent as UTF-8 JSON bytes, never pickled)."""
    if not dist.is_initialized():
        return value
    device = collective_device()
    payload = json.dumps(value).encode("utf-8") if dist.get_rank() == src else b""
    size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=src)
    data = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if payload:
        data.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(data, src=src)
    return json.loads(bytes(data.cpu().tolist()).decode("utf-8"))


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (to fill a cache, say), the other ranks after it (a no-op for one process)."""
    others_wait = dist.is_initialized() and dist.get_rank() != 0
    if others_wait:
        dist.barrier()
    yield
    if dist.is_initialized() and not others_wait:
        dist.barrier()


def all_reduce_sum(value: float) -> float:
    """The sum of ``value`` over all ranks (see :func:`all_reduce_sums`)."""
    return all_reduce_sums(value)[0]


def all_reduce_sums(*values: float) -> tuple[float, ...]:
    """Each value summed over all ranks in one all-reduce, in float64 (ints stay ints, exact up to 2**53)."""
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tuple(int(total) if isinstance(value, int) else total for value, total in zip(values, tensor.tolist()))


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on at least one (stop requests, early stop)."""
    if not dist.is_initialized():
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def agree_to_stop(requested: bool, step: int) -> bool:
    """Called once per optimizer step on every rank: True everywhere when any rank was asked to stop.

    All ranks must leave the loop at the same step, or the ones still training would wait forever in
    the next gradient all-reduce. (Also where the test-only fault injection of ``CODEX_TEST_EXIT_AT`` fires.)
    """
    _inject_fault(step)
    return any_rank(requested)


def collective_device() -> torch.device:
    """Where tensors for a collective live: the rank's GPU under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _inject_fault(step: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    rank, _, at_step = spec.partition(":")
    if int(rank) == detect_world().rank and int(at_step) == step:
        os._exit(FAULT_EXIT_CODE)
