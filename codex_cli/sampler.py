"""Which examples each rank trains on: one seeded global order, sliced per rank, resumable mid-epoch.

The order of an epoch is ``torch.randperm`` from a generator seeded with ``seed + epoch`` (never the
global RNG). It is cut into *global* micro-batches of ``world_size x batch_size`` examples, grouped
``grad_accum`` at a time into accumulation windows (one optimizer step each), and every rank takes
its contiguous slice of each global micro-batch. So N processes with batch B see, step by step,
exactly the examples one process with batch N x B sees, and a position inside an epoch is simply the
number of optimizer steps done, the same number whatever the world size as long as
``world_size x batch_size x grad_accum`` (the samples per step) is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from codex_cli.errors import CheckpointError


class MicroBatch(NamedTuple):
    """One rank's examples for one micro-step.

    ``stand_in`` is True when the last, short global micro-batch has fewer examples than ranks: this
    rank then gets a copy of one example only so that it joins the step's gradient all-reduce, and
    the loop must count neither its loss nor its tokens.
    """

    indices: list[int]
    stand_in: bool = False


def epoch_order(num_examples: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example indices of ``epoch`` (0-based), the same on every rank."""
    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_examples, generator=generator).tolist()


@dataclass(frozen=True)
class WindowSampler:
    """The accumulation windows of an epoch as this rank sees them."""

    num_examples: int
    batch_size: int  # per rank
    grad_accum: int = 1
    seed: int = 1234
    rank: int = 0
    world_size: int = 1

    @property
    def global_batch(self) -> int:
        """Examples in one micro-step across all ranks."""
        return self.batch_size * self.world_size

    @property
    def samples_per_step(self) -> int:
        """Examples in one optimizer step across all ranks (the effective batch)."""
        return self.global_batch * self.grad_accum

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch, the last window possibly short; the same on every rank."""
        return math.ceil(math.ceil(self.num_examples / self.global_batch) / self.grad_accum)

    def windows(self, epoch: int, start_step: int = 0) -> list[list[MicroBatch]]:
        """This rank's windows of ``epoch`` from optimizer step ``start_step`` on (0 = the epoch's start)."""
        order = epoch_order(self.num_examples, self.seed, epoch)
        start = start_step * self.samples_per_step
        batches = [self._rank_slice(order[i:i + self.global_batch])
                   for i in range(start, self.num_examples, self.global_batch)]
        return [batches[i:i + self.grad_accum] for i in range(0, len(batches), self.grad_accum)]

    def samples_before(self, step_in_epoch: int) -> int:
        """Examples (over all ranks) consumed by the first ``step_in_epoch`` steps of an epoch."""
        return min(step_in_epoch * self.samples_per_step, self.num_examples)

    def step_at(self, samples_in_epoch: int) -> int:
        """The optimizer step that starts right after ``samples_in_epoch`` examples of an epoch."""
        if samples_in_epoch >= self.num_examples:
            return self.steps_per_epoch()
        if samples_in_epoch % self.samples_per_step:
            raise CheckpointError(
                f"the checkpoint stopped after {samples_in_epoch} examples of its epoch, which is not a whole number "
                f"of optimizer steps of {self.samples_per_step} examples ({self.describe()}); "
                "resume with the checkpoint's processes x batch_size x grad_accum"
            )
        return samples_in_epoch // self.samples_per_step

    def describe(self) -> str:
        """``processes x batch_size x grad_accum``, for messages."""
        procs = "process" if self.world_size == 1 else "processes"
        return f"{self.world_size} {procs} x batch_size {self.batch_size} x grad_accum {self.grad_accum}"

    def _rank_slice(self, batch: list[int]) -> MicroBatch:
        # Contiguous, near-equal slices: full batches give every rank exactly batch_size examples.
        base, extra = divmod(len(batch), self.world_size)
        begin = self.rank * base + min(self.rank, extra)
        size = base + (1 if self.rank < extra else 0)
        if size == 0:
            return MicroBatch([batch[0]], stand_in=True)
        return MicroBatch(batch[begin:begin + size])
