"""Multi-process training on torch.distributed: one process per rank, started by torchrun.

Modules, one concern each:
  world     who this process is (RANK, WORLD_SIZE), its process group, collectives the loop agrees with
  strategy  train.strategy: the check before any work, wrapping the model, gradient sync and clipping
  fsdp      fully_shard per decoder layer then the root, mixed precision, lockstep forwards

Without torchrun's variables codex runs as one plain process and every helper here is a no-op.
"""

from codex_cli.distributed.fsdp import in_lockstep
from codex_cli.distributed.strategy import STRATEGIES, check_strategy, clip_grad_norm, no_sync, wrap_model
from codex_cli.distributed.world import (
    DEFAULT_TIMEOUT_S,
    FAULT_ENV,
    FAULT_EXIT_CODE,
    World,
    agree_to_stop,
    all_reduce_sum,
    all_reduce_sums,
    any_rank,
    backend_for,
    broadcast_json,
    detect_world,
    init_distributed,
    launched_by_torchrun,
    main_process_first,
    seed_rank,
    shutdown,
)

__all__ = [
    "DEFAULT_TIMEOUT_S", "FAULT_ENV", "FAULT_EXIT_CODE", "STRATEGIES", "World", "agree_to_stop", "all_reduce_sum",
    "all_reduce_sums", "any_rank", "backend_for", "broadcast_json", "check_strategy", "clip_grad_norm",
    "detect_world", "in_lockstep", "init_distributed", "launched_by_torchrun", "main_process_first", "no_sync",
    "seed_rank", "shutdown", "wrap_model",
]
