"""Generation with a causal LM, one scheduling step at a time: prefill newcomers, then decode every row.

A hand-written loop rather than ``generate`` (or transformers' paged continuous batching) so that
every row keeps its own sampling settings, seed and LoRA adapter, streams its text through the
stop-string and secret filters as it goes, and joins or leaves the batch between any two decode steps.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import itertools
from typing import Any, Optional

import torch

from codex_cli.config import MaskConfig
from codex_cli.serving.errors import ApiError, prompt_too_long
from codex_cli.serving.generation.jobs import Job
from codex_cli.serving.generation.kvcache import BatchCache, new_cache, slice_rows
from codex_cli.serving.generation.lora import PreparedAdapter, RowLora, attach, detach
from codex_cli.serving.generation.rows import Row
from codex_cli.serving.generation.sampling import sample


class TorchEngine:
    """A transformers causal LM and its tokenizer, advanced one step at a time on the worker thread."""

    def __init__(self, model: Any, tokenizer: Any, name: str, *, max_prompt_tokens: int, mask: MaskConfig,
                 prefill_chunk_tokens: int = 256) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self._max_prompt_tokens = max_prompt_tokens
        self._mask = mask
        self._chunk = prefill_chunk_tokens
        self._context = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
        self._eos = frozenset(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self._pad = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)
        self._start = next((t for t in (tokenizer.bos_token_id, tokenizer.eos_token_id) if t is not None), None)
        self._device = next(model.parameters()).device
        self._lora: Optional[RowLora] = None  # set once named adapters are served: one adapter per row
        self._weights: Any = None  # the followed full checkpoint now in use (None: the model loaded first)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # transformers 5 renamed past_key_values to cache (the old name warns)
        self._cache_arg = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        self._pending: collections.deque[Row] = collections.deque()  # joined, prompt not fully prefilled
        self._rows: list[Row] = []  # decoding, in the cache's batch order
        self._batch = BatchCache()

    @property
    def cache_tokens(self) -> int:
        """KV-cache token slots held now: the running batch's plus chunked prefills'."""
        return self._batch.tokens + sum(row.prefilled for row in self._pending)

    @property
    def device(self) -> str:
        """Where the model runs (adapters are read onto it)."""
        return str(self._device)

    def attach(self, name: str, adapter: PreparedAdapter) -> None:
        """Add a LoRA adapter that rows can name (between two steps); UsageError when it cannot be batched."""
        model = attach(self.model, name, adapter)
        try:
            for held in model.peft_config:  # a LoRA checkpoint served as the base brings its own adapter
                RowLora.check(model, held)
        except Exception:
            detach(model, name)
            raise
        self.model = model
        if self._lora is None:
            self._lora = RowLora(model)
        else:
            self._lora.refresh()

    def detach(self, name: str) -> None:
        """Remove a LoRA adapter no row uses any more."""
        detach(self.model, name)
        if self._lora is not None:
            self._lora.refresh()

    def can_join(self, job: Job) -> bool:
        """True unless the job needs other weights than the running rows; it gets them once they are done."""
        weights = job.target.weights if job.target is not None else None
        if weights is None or weights is self._weights:
            return True
        if self._rows or self._pending:
            return False  # rows that started on the current weights finish on them
        self.model, self._weights = weights.eval(), weights
        return True

    def prepare(self, job: Job) -> int:
        """Tokenize the prompt (or render the chat), refuse what can never run; return prompt + max_new_tokens."""
        ids = self._encode(job)
        max_new = job.request.max_new_tokens
        if not ids:
            raise ApiError(422, "the prompt is empty and this tokenizer has no BOS token to start from")
        if len(ids) > self._max_prompt_tokens:
            raise prompt_too_long(len(ids), self._max_prompt_tokens)
        if self._context is not None and len(ids) + max_new > self._context:
            raise ApiError(422, f"prompt ({len(ids)} tokens) plus max_new_tokens ({max_new}) "
                                f"exceed the model's context of {self._context} tokens")
        job.state = Row(job, ids, self.tokenizer, self._mask)
        return len(ids) + max_new

    def join(self, job: Job) -> None:
        """Queue a prepared job for prefill at the next step."""
        self._pending.append(job.state)

    def step(self) -> list[Job]:
        """Prefill up to prefill_chunk_tokens of newcomers' prompts, then decode one token for every row."""
        ended: list[Job] = []
        with torch.inference_mode():
            self._prefill(ended)
            if self._rows:
                self._decode(ended)
        return ended

    def abort(self) -> list[Job]:
        """Forget every row (after a failed step); return their jobs."""
        jobs = [row.job for row in itertools.chain(self._rows, self._pending)]
        self._rows, self._pending, self._batch = [], collections.deque(), BatchCache()
        return jobs

    def _encode(self, job: Job) -> list[int]:
        request = job.request
        if request.messages is not None:
            from codex_cli.data.chat import ChatTemplateError, render_chat

            try:
                text = render_chat(self.tokenizer, request.messages, add_generation_prompt=True)
            except ChatTemplateError as e:
                raise ApiError(422, str(e)) from e
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        ids = list(self.tokenizer(request.prompt)["input_ids"])
        return ids or ([self._start] if self._start is not None else [])

    def _prefill(self, ended: list[Job]) -> None:
        for row in [r for r in self._pending if r.job.cancelled]:
            self._pending.remove(row)
            row.close()
            ended.append(row.job)
        budget = self._chunk
        if self._pending and self._pending[0].prefilled:  # a long prompt part-way through goes on first
            budget -= self._prefill_chunk(self._pending[0], budget, ended)
        group: list[Row] = []
        for row in itertools.islice(self._pending, 1 if self._pending and self._pending[0].prefilled else 0, None):
            width = max(row.remaining, *(r.remaining for r in group)) if group else row.remaining
            if (len(group) + 1) * width <= budget:
                group.append(row)
                continue
            if not group and budget == self._chunk:  # a prompt longer than a chunk: start it on its own
                self._prefill_chunk(row, budget, ended)
            break
        if group:
            for row in group:
                self._pending.remove(row)
            self._prefill_group(group, ended)

    def _prefill_group(self, rows: list[Row], ended: list[Job]) -> None:
        width = max(len(row.prompt) for row in rows)
        ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row.prompt):] = torch.tensor(row.prompt, dtype=torch.long)
            mask[i, width - len(row.prompt):] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        cache = new_cache()
        logits = self._forward(ids, mask, positions, cache, rows)
        self._enter(rows, cache, mask, logits, ended)

    def _prefill_chunk(self, row: Row, budget: int, ended: list[Job]) -> int:
        n = min(budget, row.remaining)
        if row.cache is None:
            row.cache = new_cache()
        start = row.prefilled
        ids = torch.tensor([row.prompt[start:start + n]], dtype=torch.long, device=self._device)
        mask = torch.ones((1, start + n), dtype=torch.long, device=self._device)
        positions = torch.arange(start, start + n, device=self._device).unsqueeze(0)
        logits = self._forward(ids, mask, positions, row.cache, [row])
        row.prefilled += n
        if row.remaining == 0:
            self._pending.remove(row)
            cache, row.cache = row.cache, None
            self._enter([row], cache, mask, logits, ended)
        return n

    def _enter(self, rows: list[Row], cache: Any, mask: torch.Tensor, logits: torch.Tensor,
               ended: list[Job]) -> None:
        """Rows whose prompts are prefilled take their first token, then join the running batch."""
        keep = []
        for i, (row, token) in enumerate(zip(rows, sample(logits[:, -1, :], rows))):
            row.prefilled, row.position = len(row.prompt), len(row.prompt)
            if row.push(token, self._eos):
                row.close()
                ended.append(row.job)
            else:
                keep.append(i)
        if not keep:
            return
        if len(keep) < len(rows):
            cache, mask = slice_rows(cache, mask, keep)
        self._batch.merge(cache, mask)
        self._rows.extend(rows[i] for i in keep)

    def _decode(self, ended: list[Job]) -> None:
        rows = self._rows
        ids = torch.tensor([[row.next_token] for row in rows], dtype=torch.long, device=self._device)
        positions = torch.tensor([[row.position] for row in rows], dtype=torch.long, device=self._device)
        logits = self._forward(ids, self._batch.extend(), positions, self._batch.cache, rows)
        keep = []
        for i, (row, token) in enumerate(zip(rows, sample(logits[:, -1, :], rows))):
            row.position += 1
            if row.push(token, self._eos):
                row.close()  # answer it now, not when the batch ends
                ended.append(row.job)
            else:
                keep.append(i)
        if len(keep) < len(rows):  # finished rows leave the batch, and the KV cache
            self._batch.select(keep)
            self._rows = [rows[i] for i in keep]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any,
                 rows: list[Row]) -> torch.Tensor:
        lora = self._lora.rows([r.adapter for r in rows], self._device) if self._lora else contextlib.nullcontext()
        with lora:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             logits_to_keep=1, **{self._cache_arg: cache})
        return out.logits
