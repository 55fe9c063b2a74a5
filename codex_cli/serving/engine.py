"""Generation with a causal LM: encode → batched sampling loop with a KV cache → decode.

A hand-written loop rather than ``generate`` so every row keeps its own sampling settings and
seed, streams its text as it goes, and leaves the batch (freeing its compute) as soon as it ends.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import torch

from codex_cli.config import MaskConfig
from codex_cli.serving.batching import Job, JobResult
from codex_cli.serving.output import CompletionText, IncrementalDecoder
from codex_cli.serving.sampling import BatchSampler
from codex_cli.serving.schemas import ApiError, prompt_too_long


class _Row:
    """One job's generation state: its tokens, its text pipeline, and why it ended."""

    def __init__(self, job: Job, prompt_tokens: int, tokenizer: Any, mask: MaskConfig) -> None:
        self.job = job
        self.prompt_tokens = prompt_tokens
        self.decoder = IncrementalDecoder(tokenizer)
        self.text = CompletionText(job.request.stop, mask)
        self.parts: list[str] = []
        self.generated = 0
        self.reason: Optional[str] = None

    def push(self, token: int, eos: frozenset[int]) -> None:
        if token in eos:
            self.reason = "stop"
            return
        self.generated += 1
        self._send(self.text.feed(self.decoder.add(token)))
        if self.text.stopped:
            self.reason = "stop"
        elif self.generated >= self.job.request.max_new_tokens:
            self.reason = "length"
        elif self.job.cancelled:
            self.reason = "cancelled"

    def close(self) -> None:
        if not self.text.stopped:
            self._send(self.text.feed(self.decoder.flush()))
        self._send(self.text.finish())
        self.job.finish(JobResult("".join(self.parts), self.prompt_tokens, self.generated,
                                  "length" if self.reason in (None, "cancelled") else self.reason, self.text.masked))

    def _send(self, safe: str) -> None:
        if safe:
            self.parts.append(safe)
            self.job.emit(safe)


class TorchEngine:
    """A transformers causal LM and its tokenizer, run one batch at a time on the worker thread."""

    def __init__(self, model: Any, tokenizer: Any, name: str, *, max_prompt_tokens: int, mask: MaskConfig) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self._max_prompt_tokens = max_prompt_tokens
        self._mask = mask
        self._context = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
        self._eos = frozenset(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self._pad = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)
        self._start = next((t for t in (tokenizer.bos_token_id, tokenizer.eos_token_id) if t is not None), None)
        self._device = next(model.parameters()).device
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # transformers 5 renamed past_key_values to cache (the old name warns)
        self._cache_arg = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    def run(self, jobs: list[Job]) -> None:
        """Encode the prompts, refuse the ones that do not fit, generate for the rest."""
        encoded = self.tokenizer([job.request.prompt for job in jobs])["input_ids"]
        rows, prompts = [], []
        for job, ids in zip(jobs, encoded):
            ids = list(ids) or ([self._start] if self._start is not None else [])
            problem = self._check(job, len(ids))
            if problem is not None:
                job.finish(problem)
                continue
            rows.append(_Row(job, len(ids), self.tokenizer, self._mask))
            prompts.append(ids)
        if rows:
            with torch.inference_mode():
                self._generate(rows, prompts)

    def _check(self, job: Job, tokens: int) -> Optional[ApiError]:
        if tokens == 0:
            return ApiError(422, "the prompt is empty and this tokenizer has no BOS token to start from")
        if tokens > self._max_prompt_tokens:
            return prompt_too_long(tokens, self._max_prompt_tokens)
        if self._context is not None and tokens + job.request.max_new_tokens > self._context:
            return ApiError(422, f"prompt ({tokens} tokens) plus max_new_tokens ({job.request.max_new_tokens}) "
                                 f"exceed the model's context of {self._context} tokens")
        return None

    def _generate(self, rows: list[_Row], prompts: list[list[int]]) -> None:
        input_ids, mask = self._left_pad(prompts)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        sampler = BatchSampler([r.job.request.temperature for r in rows], [r.job.request.top_p for r in rows],
                               [r.job.seed for r in rows], self._device)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1)
        cache, active = getattr(out, self._cache_arg), rows
        while True:
            tokens = sampler.next_tokens(out.logits[:, -1, :])
            for row, token in zip(active, tokens.tolist()):
                row.push(token, self._eos)
                if row.reason is not None:
                    row.close()  # answer it now, not when the whole batch ends
            keep = [i for i, row in enumerate(active) if row.reason is None]
            if not keep:
                break
            if len(keep) < len(active):  # finished rows leave the batch, and the KV cache
                index = torch.tensor(keep, dtype=torch.long, device=self._device)
                cache.batch_select_indices(index)
                tokens, mask, positions = tokens[index], mask[index], positions[index]
                sampler.select(keep)
                active = [active[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(input_ids=tokens.unsqueeze(1), attention_mask=mask, position_ids=positions,
                             use_cache=True, **{self._cache_arg: cache})

    def _left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids):] = 1
        return input_ids.to(self._device), mask.to(self._device)
