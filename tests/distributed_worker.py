"""A tiny torchrun worker that drives codex_cli.distributed without the training loop (tests only).

``python tests/distributed_worker.py OUT.json GLOBAL_BATCH`` (one process) and
``torchrun --nproc-per-node N tests/distributed_worker.py OUT.json GLOBAL_BATCH`` train the same
linear model with SGD over the same global batches (accumulated over 2 micro-steps, no_sync on the
first); rank 0 writes the final weights and what the collectives returned.
"""

from __future__ import annotations

import json
import sys

import torch

from codex_cli import distributed
from codex_cli.training.batches import epoch_windows, rank_windows

EXAMPLES, FEATURES, STEPS_AT_MOST = 21, 4, 10


def main(out: str, global_batch: int) -> None:
    torch.set_num_threads(1)
    world = distributed.init_distributed("cpu", timeout_s=60)
    x = torch.randn(EXAMPLES, FEATURES, generator=torch.Generator().manual_seed(1))
    y = x.sum(dim=1, keepdim=True) + 0.5
    torch.manual_seed(world.rank)  # different on purpose: DDP must broadcast rank 0's initial weights
    model = distributed.wrap_model(torch.nn.Linear(FEATURES, 1), world, torch.device("cpu"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    windows = epoch_windows(EXAMPLES, batch_size=global_batch, grad_accum=2, seed=7, epoch=0)
    for step, window in enumerate(rank_windows(windows, world.rank, world.world_size)):
        if distributed.agree_to_stop(step >= STEPS_AT_MOST, step):
            break
        real = [mb for mb in window if not mb.stand_in]
        count = distributed.all_reduce_sum(sum(len(mb.indices) for mb in real))
        for i, mb in enumerate(window):
            with distributed.no_sync(model, skip_sync=i < len(window) - 1):
                summed = ((model(x[mb.indices]) - y[mb.indices]) ** 2).sum() * (0.0 if mb.stand_in else 1.0)
                # DDP averages gradients over ranks; scaling by world_size turns that into the global sum.
                (summed * world.world_size / count).backward()
        optimizer.step()
        optimizer.zero_grad()
    inner = model.module if world.enabled else model  # the DDP wrapper holds the trained module
    report = {"world_size": world.world_size, "steps": step,
              "weight": inner.weight.detach().flatten().tolist(), "bias": inner.bias.detach().tolist(),
              "rank_sum": distributed.all_reduce_sum(world.rank + 1),
              "any_rank_last": distributed.any_rank(world.rank == world.world_size - 1),
              "broadcast": distributed.broadcast_json({"from": world.rank, "path": "ck/é"})}
    if world.is_main:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
