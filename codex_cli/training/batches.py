"""Which examples go into which micro-batch and accumulation window, per epoch, from the seed alone.

The order is a permutation drawn from a ``torch.Generator`` seeded with ``seed + epoch``, never from
the global RNG, so it is the same in every run and after a resume, and the data position inside an
epoch is just the number of windows already done. Under torch.distributed a rank would take its own
slice of each window here (see issue #7).
"""

from __future__ import annotations

import torch


def epoch_order(num_examples: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example indices of ``epoch`` (0-based)."""
    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_examples, generator=generator).tolist()


def epoch_windows(num_examples: int, *, batch_size: int, grad_accum: int, seed: int, epoch: int) -> list[list[list[int]]]:
    """Accumulation windows of ``epoch``: each a list of up to ``grad_accum`` micro-batches of example indices."""
    order = epoch_order(num_examples, seed, epoch)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i:i + grad_accum] for i in range(0, len(batches), grad_accum)]
