"""The torch engine: encode → batched sampling loop → decode, per-request settings inside a batch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from serving_stubs import SECRET

from codex_cli.config import MaskConfig
from codex_cli.serving.batching import Job, JobResult
from codex_cli.serving.engine import TorchEngine
from codex_cli.serving.schemas import ApiError, GenRequest

PROMPTS = ["def add(a, b):", "class Point:\n    x", "The quick brown fox jumps", "import"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


Outcome = tuple[JobResult | ApiError, list[str]]


def _run(engine: TorchEngine, requests: list[GenRequest], stream: bool = False) -> list[Outcome]:
    async def go() -> list[Outcome]:
        loop = asyncio.get_running_loop()
        jobs = [Job(r, loop, stream=stream) for r in requests]
        for job in jobs:
            job.seed = job.request.seed if job.request.seed is not None else 0
        await loop.run_in_executor(None, engine.run, jobs)
        out = []
        for job in jobs:
            chunks = []
            while stream and (chunk := await job.chunks.get()) is not None:
                chunks.append(chunk)
            out.append((await job.done, chunks))
        return out

    return asyncio.run(go())


def _engine(model: Any, tokenizer: Any, max_prompt_tokens: int = 64) -> TorchEngine:
    return TorchEngine(model, tokenizer, "tiny", max_prompt_tokens=max_prompt_tokens, mask=MaskConfig())


def test_greedy_batch_matches_transformers_generate(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    lengths = [12, 3, 20, 1]  # rows finish at different steps and leave the batch
    results = _run(_engine(model, tok), [GenRequest(p, n, temperature=0.0) for p, n in zip(PROMPTS, lengths)])
    for prompt, n, (result, _) in zip(PROMPTS, lengths, results):
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
        assert result.text == tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        assert (result.prompt_tokens, result.completion_tokens, result.finish_reason) == (
            ids["input_ids"].shape[1], n, "length")


def test_sampling_settings_and_seeds_stay_per_request(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    engine = _engine(model, tok)
    seeded = GenRequest("def add(a, b):", 16, temperature=1.0, top_p=0.9, seed=7)
    alone = _run(engine, [seeded])[0][0].text
    mixed = _run(engine, [GenRequest("x", 5, temperature=0.0), seeded, GenRequest("class", 9, temperature=1.5, seed=1)])
    assert mixed[1][0].text == alone
    other_seed = _run(engine, [GenRequest("def add(a, b):", 16, temperature=1.0, top_p=0.9, seed=8)])[0][0].text
    assert other_seed != alone
    greedy = _run(engine, [GenRequest("x", 5, temperature=0.0)])[0][0].text
    assert mixed[0][0].text == greedy


def test_stop_string_cuts_the_completion(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    engine = _engine(model, tok)
    full = _run(engine, [GenRequest("def add(a, b):", 30, temperature=0.0)])[0][0].text
    stop = full[10:13]
    result = _run(engine, [GenRequest("def add(a, b):", 30, temperature=0.0, stop=(stop,))], stream=True)[0]
    assert result[0].text == full[: full.index(stop)] == "".join(result[1])
    assert result[0].finish_reason == "stop"


def test_prompts_that_do_not_fit_are_refused_one_by_one(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    results = _run(_engine(model, tok, max_prompt_tokens=4),
                   [GenRequest("The quick brown fox jumps over the lazy dog", 4), GenRequest("x", 256),
                    GenRequest("import", 2, temperature=0.0)])
    assert isinstance(results[0][0], ApiError) and results[0][0].status == 422
    assert results[0][0].message.endswith("the limit is 4 (serve.max_prompt_tokens)")
    assert isinstance(results[1][0], ApiError)
    assert results[1][0].message == ("prompt (1 tokens) plus max_new_tokens (256) exceed the model's context "
                                     "of 256 tokens")
    assert isinstance(results[2][0], JobResult) and results[2][0].completion_tokens == 2


class ScriptedLM(torch.nn.Module):
    """A causal LM stand-in that emits a fixed token script, then EOS, whatever the prompt."""

    def __init__(self, script: list[int], vocab: int, eos: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.script, self.vocab, self.eos = script, vocab, eos
        self.config = SimpleNamespace(max_position_embeddings=512)
        self.generation_config = SimpleNamespace(eos_token_id=eos)
        self.width = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                cache: Any = None, use_cache: bool = True, logits_to_keep: int = 0) -> SimpleNamespace:
        if cache is None:
            self.width = attention_mask.shape[1]
            cache = SimpleNamespace(batch_select_indices=lambda index: None)
        step = attention_mask.shape[1] - self.width
        token = self.script[step] if step < len(self.script) else self.eos
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab)
        logits[:, :, token] = 100.0
        return SimpleNamespace(logits=logits, cache=cache)


@pytest.mark.parametrize("temperature", [0.0, 1.0], ids=["greedy", "sampled"])
def test_secret_generated_token_by_token_never_leaves(tiny: tuple[Any, Any], temperature: float) -> None:
    _, tok = tiny
    text = f"api_key = {SECRET}\nprint(1)\n"
    script = tok(text)["input_ids"]
    assert len(script) > 10 and tok.decode(script) == text  # the secret spans many tokens
    engine = _engine(ScriptedLM(script, len(tok), tok.eos_token_id), tok)
    (result, chunks), = _run(engine, [GenRequest("p", 100, temperature=temperature, seed=3)], stream=True)
    assert result.text == "api_key = [SECRET]\nprint(1)\n" == "".join(chunks)
    assert result.masked == 1 and result.finish_reason == "stop" and result.completion_tokens == len(script)
    assert not any(SECRET[i:i + 8] in chunk for chunk in chunks for i in range(len(SECRET) - 8))
