"""Per-request sampling inside a shared batch: each row brings its own temperature, top_p and torch.Generator.

A row's random stream depends only on its own seed (one draw per token it samples), so its tokens do
not depend on which other requests share the batch, or when they joined. Temperature 0 means greedy.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

import torch


class Sampled(Protocol):
    """What a row tells the sampler."""

    temperature: float
    top_p: float
    generator: Optional[torch.Generator]  # None for greedy rows


def seeded_generator(temperature: float, seed: int) -> Optional[torch.Generator]:
    """The row's own random stream (greedy rows need none)."""
    return torch.Generator().manual_seed(seed) if temperature > 0.0 else None


def sample(logits: torch.Tensor, rows: Sequence[Sampled]) -> list[int]:
    """One token id per row from ``logits`` of shape [rows, vocab]."""
    best = logits.argmax(dim=-1)
    sampled = [i for i, row in enumerate(rows) if row.generator is not None]
    if not sampled:
        return best.tolist()
    index = torch.tensor(sampled, dtype=torch.long, device=logits.device)
    picked = _sample_rows(logits[index].float(), [rows[i] for i in sampled])
    return best.index_copy(0, index, picked).tolist()


def _sample_rows(logits: torch.Tensor, rows: Sequence[Sampled]) -> torch.Tensor:
    temperature = torch.tensor([row.temperature for row in rows], dtype=torch.float32, device=logits.device)
    top_p = torch.tensor([row.top_p for row in rows], dtype=torch.float32, device=logits.device)
    probs = torch.softmax(logits / temperature.unsqueeze(1), dim=-1)
    order = None
    if bool((top_p < 1.0).any()):
        probs, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the top token always stays)
        probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= top_p.unsqueeze(1), 0.0)
    cdf = probs.cumsum(dim=-1)
    # the generators live on the CPU: a row's draws never depend on the device or the batch
    uniform = torch.cat([torch.rand(1, generator=row.generator) for row in rows]).to(logits.device) * cdf[:, -1]
    pick = torch.searchsorted(cdf, uniform.unsqueeze(1), right=True).clamp(max=probs.shape[-1] - 1)
    return (pick if order is None else order.gather(1, pick)).squeeze(1)
