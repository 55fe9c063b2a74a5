"""Which examples go into which micro-batch and accumulation window, per epoch, from the seed alone.

The order is a permutation drawn from a ``torch.Generator`` seeded with ``seed + epoch``, never from
the global RNG, so it is the same in every run, on every rank and after a resume, and the data
position inside an epoch is just the number of windows already done. Under torch.distributed the
windows are those of the global batch (processes x batch_size) and each rank takes its own slice of
every global micro-batch (:func:`rank_windows`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def epoch_order(num_examples: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example indices of ``epoch`` (0-based)."""
    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_examples, generator=generator).tolist()


def epoch_windows(
    num_examples: int, *, batch_size: int, grad_accum: int, seed: int, epoch: int
) -> list[list[list[int]]]:
    """Accumulation windows of ``epoch``: each a list of up to ``grad_accum`` micro-batches of example indices."""
    order = epoch_order(num_examples, seed, epoch)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i:i + grad_accum] for i in range(0, len(batches), grad_accum)]


class MicroBatch(NamedTuple):
    """One rank's examples for one micro-step.

    ``stand_in`` is True when a short last global micro-batch has fewer examples than ranks: the rank
    then gets a copy of one example only so that it joins the step's gradient all-reduce, and the
    loop counts neither its loss nor its tokens.
    """

    indices: list[int]
    stand_in: bool = False


def rank_windows(windows: list[list[list[int]]], rank: int, world_size: int) -> list[list[MicroBatch]]:
    """What ``rank`` of ``world_size`` trains on in each window: its contiguous slice of every global micro-batch.

    Built from the windows of the *global* batch (``world_size x batch_size``), so N ranks with batch B
    see, step by step, exactly the examples one process with batch N x B sees, every rank takes the
    same number of steps and micro-steps, and the data position (steps done in the epoch) means the
    same on any world size with the same examples per step.
    """
    return [[_rank_slice(batch, rank, world_size) for batch in window] for window in windows]


def _rank_slice(batch: list[int], rank: int, world_size: int) -> MicroBatch:
    # Near-equal contiguous slices: a full global batch gives every rank exactly batch_size examples.
    base, extra = divmod(len(batch), world_size)
    begin = rank * base + min(rank, extra)
    size = base + (1 if rank < extra else 0)
    if size == 0:
        return MicroBatch([batch[0]], stand_in=True)
    return MicroBatch(batch[begin:begin + size])
