"""The running batch's KV cache: one transformers DynamicCache whose rows are right-aligned (left-padded).

Every row ends at the last column, so one decode step appends one column for all rows. A row that
joins brings its own prefilled cache, and the narrower side is padded on the left to the wider; a row
that leaves is dropped with ``select``, and columns that are padding for every remaining row are cut
off, so the cache is always (rows × longest row) wide. Padding is masked out by the attention mask.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from transformers import DynamicCache


def new_cache() -> DynamicCache:
    """An empty cache of full-attention layers (filled by the model's forward)."""
    return DynamicCache()


class BatchCache:
    """The KV cache and attention mask of the rows being decoded, in batch order."""

    def __init__(self) -> None:
        self.cache: Optional[DynamicCache] = None
        self.mask: Optional[torch.Tensor] = None  # [rows, width], 1 for real tokens, 0 for padding

    @property
    def tokens(self) -> int:
        """Token slots the cache holds: rows × width."""
        return 0 if self.mask is None else self.mask.numel()

    def merge(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Append the rows of another cache (with their mask) after the current ones."""
        if self.cache is None or self.mask is None:
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
        self.mask = torch.cat([_pad_left_2d(self.mask, width), _pad_left_2d(mask, width)])

    def select(self, rows: list[int]) -> None:
        """Keep only these rows, in this order, and cut the columns that are now padding for all of them."""
        if not rows:
            self.cache = self.mask = None
            return
        assert self.cache is not None and self.mask is not None
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        self.mask = self.mask[index]
        start = int(self.mask.any(dim=0).int().argmax())  # the first column some row still uses
        self.mask = self.mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]

    def extend(self) -> torch.Tensor:
        """The mask for one more decode step: every row gains one real column."""
        assert self.mask is not None
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        return self.mask


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - states.shape[-2]
    return F.pad(states, (0, 0, missing, 0)) if missing else states


def _pad_left_2d(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return F.pad(mask, (missing, 0)) if missing else mask


def slice_rows(cache: DynamicCache, mask: torch.Tensor, rows: list[int]) -> tuple[DynamicCache, torch.Tensor]:
    """A prefilled cache and mask restricted to some of its rows (the others already ended)."""
    index = torch.tensor(rows, dtype=torch.long, device=mask.device)
    cache.batch_select_indices(index)
    return cache, mask[index]
