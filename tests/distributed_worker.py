"""A tiny torchrun worker that drives codex_cli.distributed without the training loop (tests only).

``python tests/distributed_worker.py OUT.json GLOBAL_BATCH STRATEGY`` (one process) and
``torchrun --nproc-per-node N tests/distributed_worker.py OUT.json GLOBAL_BATCH STRATEGY`` train the
same small MLP with SGD over the same global batches (accumulated over 2 micro-steps, gradient sync
skipped on the first), clipping gradients to a norm they exceed. STRATEGY is ddp or fsdp (each hidden
layer sharded, then the root). Rank 0 writes the final weights, what the collectives returned and, with
fsdp, what the gradients looked like after a micro-step without sync and what sharding a model whose
ranks built different weights says; every rank then streams the weights into OUT.safetensors with
codex's writer (rank 0 writes, the others gather) and cuts the file back into its shards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from codex_cli import distributed
from codex_cli.training.batches import epoch_windows, rank_windows

EXAMPLES, FEATURES, HIDDEN, STEPS_AT_MOST, MAX_NORM = 21, 4, 6, 10, 0.5


def main(out: str, global_batch: int, strategy: str) -> None:
    torch.set_num_threads(1)
    world = distributed.init_distributed("cpu", timeout_s=60)
    x = torch.randn(EXAMPLES, FEATURES, generator=torch.Generator().manual_seed(1))
    y = x.sum(dim=1, keepdim=True) + 0.5
    torch.manual_seed(0 if strategy == "fsdp" else world.rank)  # ddp: different on purpose, DDP broadcasts rank 0's
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1))
    if strategy == "fsdp" and world.enabled:
        from codex_cli.distributed.fsdp import shard_model

        model = shard_model(model, world, precision="fp32", layers=[model[0], model[2]])
    else:
        model = distributed.wrap_model(model, world)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    windows = epoch_windows(EXAMPLES, batch_size=global_batch, grad_accum=2, seed=7, epoch=0)
    unsynced, norms = [], []
    for step, window in enumerate(rank_windows(windows, world.rank, world.world_size)):
        if distributed.agree_to_stop(step >= STEPS_AT_MOST, step):
            break
        real = [mb for mb in window if not mb.stand_in]
        count = distributed.all_reduce_sum(sum(len(mb.indices) for mb in real))
        for i, mb in enumerate(window):
            with distributed.no_sync(model, skip_sync=i < len(window) - 1):
                summed = ((model(x[mb.indices]) - y[mb.indices]) ** 2).sum() * (0.0 if mb.stand_in else 1.0)
                # DDP and FSDP average gradients over ranks; times world_size, that is the global sum.
                (summed * world.world_size / count).backward()
            if i < len(window) - 1:  # FSDP keeps a skipped sync's gradients unsharded, out of sight of p.grad
                unsynced.append([p.grad is None for p in model.parameters()])
        norms.append(distributed.clip_grad_norm(model.parameters(), MAX_NORM))
        optimizer.step()
        optimizer.zero_grad()
    report = {"world_size": world.world_size, "steps": step, "params": _full_params(model), "norms": norms,
              "unsynced_grads_hidden": unsynced,
              "rank_sum": distributed.all_reduce_sum(world.rank + 1),
              "any_rank_last": distributed.any_rank(world.rank == world.world_size - 1),
              "broadcast": distributed.broadcast_json({"from": world.rank, "path": "ck/é"})}
    report["reloaded_shards_equal"] = _stream_and_reload(model, Path(out).with_suffix(".safetensors"), world)
    if strategy == "fsdp" and world.enabled:
        report["other_weights"] = _shard_other_weights(world)
    if world.is_main:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
    distributed.shutdown()


def _full_params(model: torch.nn.Module) -> dict[str, list[float]]:
    from codex_cli.checkpoint.tensorfile import whole

    inner = getattr(model, "module", model)  # the DDP wrapper holds the trained module
    return {name: whole(p).flatten().tolist() for name, p in inner.named_parameters()}


def _stream_and_reload(model: torch.nn.Module, path: Path, world: distributed.World) -> bool:
    from safetensors.torch import load_file

    from codex_cli.checkpoint.sharded import shard_like
    from codex_cli.checkpoint.tensorfile import gather_only, save_tensors

    params = dict(getattr(model, "module", model).named_parameters())
    if world.is_main:
        save_tensors(path, params)
    else:
        gather_only(params)
    distributed.any_rank(False)  # the file is complete before any rank reads it
    back = load_file(str(path))
    local = [shard_like(back[name], p) for name, p in params.items()]
    return all(torch.equal(_local(a), _local(p.detach())) for a, p in zip(local, params.values()))


def _shard_other_weights(world: distributed.World) -> str:
    """What sharding says when the ranks built different weights (each rank seeds its own)."""
    from codex_cli.distributed.fsdp import shard_model
    from codex_cli.errors import DistributedError

    torch.manual_seed(world.rank)
    other = torch.nn.Sequential(torch.nn.Linear(FEATURES, 1))
    try:
        shard_model(other, world, precision="fp32", layers=[])
    except DistributedError as e:
        return str(e)
    return "sharded without a word"


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
