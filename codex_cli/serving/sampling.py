"""Per-request sampling inside a batch: each row has its own temperature, top_p and torch.Generator.

A row's random stream depends only on its own seed, so its tokens do not depend on which other
requests share the batch. Temperature 0 means greedy.
"""

from __future__ import annotations

import torch


class BatchSampler:
    """Picks the next token of every row from that row's logits and settings."""

    def __init__(self, temperatures: list[float], top_ps: list[float], seeds: list[int],
                 device: torch.device | str = "cpu") -> None:
        self.temperature = torch.tensor(temperatures, dtype=torch.float32, device=device)
        self.top_p = torch.tensor(top_ps, dtype=torch.float32, device=device)
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def select(self, rows: list[int]) -> None:
        """Keep only these rows (the others finished)."""
        index = torch.tensor(rows, dtype=torch.long, device=self.temperature.device)
        self.temperature = self.temperature[index]
        self.top_p = self.top_p[index]
        self.generators = [self.generators[i] for i in rows]

    def next_tokens(self, logits: torch.Tensor) -> torch.Tensor:
        """One token id per row from ``logits`` of shape [rows, vocab] (on the sampler's device)."""
        logits = logits.float()
        temperature, top_p = self.temperature, self.top_p
        greedy = temperature <= 0.0
        best = logits.argmax(dim=-1)
        if bool(greedy.all()):
            return best
        probs = torch.softmax(logits / temperature.clamp(min=1e-6).unsqueeze(1), dim=-1)
        order = None
        if bool((top_p < 1.0).any()):
            probs, order = probs.sort(dim=-1, descending=True)
            # keep the smallest prefix whose mass reaches top_p (the top token always stays)
            probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= top_p.unsqueeze(1), 0.0)
        cdf = probs.cumsum(dim=-1)
        # the generators live on the CPU: a row's draws never depend on the device or the batch
        uniform = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(logits.device) * cdf[:, -1]
        pick = torch.searchsorted(cdf, uniform.unsqueeze(1), right=True).clamp(max=probs.shape[-1] - 1)
        sampled = (pick if order is None else order.gather(1, pick)).squeeze(1)
        return torch.where(greedy, best, sampled)
