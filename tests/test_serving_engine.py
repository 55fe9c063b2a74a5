"""The torch engine: encode → batched sampling loop → decode, per-request settings inside a batch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch
from ckpt_fixtures import load_tiny, make_checkpoint
from serving_stubs import SECRET

from codex_cli.config import MaskConfig
from codex_cli.serving.errors import ApiError
from codex_cli.serving.generation import GenRequest, Job, JobResult, Target
from codex_cli.serving.generation.engine import TorchEngine
from codex_cli.serving.generation.lora import read_adapter

PROMPTS = ["def add(a, b):", "class Point:\n    x", "The quick brown fox jumps", "import"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def codex_tiny() -> tuple[Any, Any]:
    """The built-in pretrained model: unlike a random one, its greedy choices hinge on every position."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codex_cli.model import BUILTIN_DIR

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(BUILTIN_DIR).eval(), AutoTokenizer.from_pretrained(BUILTIN_DIR)


Outcome = tuple[JobResult | ApiError, list[str]]


def _drive(engine: TorchEngine, arrivals: list[list[GenRequest | tuple[GenRequest, Target]]], stream: bool = False,
           on_step: Callable[[list[Job]], None] | None = None) -> list[Outcome]:
    """Run the engine as the scheduler does: ``arrivals[i]`` join before step i; step until every row ends."""
    loop = asyncio.new_event_loop()
    jobs: list[Job] = []
    running: list[Job] = []
    step = 0
    while step < len(arrivals) or running:
        for arrival in arrivals[step] if step < len(arrivals) else []:
            request, target = arrival if isinstance(arrival, tuple) else (arrival, None)
            job = Job(request, loop, stream=stream, target=target)
            job.seed = request.seed if request.seed is not None else 0
            jobs.append(job)
            try:
                job.footprint = engine.prepare(job)
            except ApiError as e:
                job.finish(e)
                continue
            engine.join(job)
            running.append(job)
        ended = engine.step()
        running = [job for job in running if job not in ended]
        if on_step is not None:
            on_step(running)
        step += 1
    loop.run_until_complete(asyncio.sleep(0))  # deliver what the engine posted
    out = []
    for job in jobs:
        chunks = []
        while stream and (chunk := job.chunks.get_nowait()) is not None:
            chunks.append(chunk)
        out.append((job.done.result(), chunks))
    loop.close()
    return out


def _run(engine: TorchEngine, requests: list[GenRequest], stream: bool = False) -> list[Outcome]:
    return _drive(engine, [requests], stream)


def _engine(model: Any, tokenizer: Any, max_prompt_tokens: int = 64, chunk: int = 256) -> TorchEngine:
    return TorchEngine(model, tokenizer, "tiny", max_prompt_tokens=max_prompt_tokens, mask=MaskConfig(),
                       prefill_chunk_tokens=chunk)


def _generate(model: Any, tok: Any, prompt: str, n: int) -> str:
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_greedy_batch_matches_transformers_generate(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    lengths = [12, 3, 20, 1]  # rows finish at different steps and leave the batch
    results = _run(_engine(model, tok), [GenRequest(p, n, temperature=0.0) for p, n in zip(PROMPTS, lengths)])
    for prompt, n, (result, _) in zip(PROMPTS, lengths, results):
        assert result.text == _generate(model, tok, prompt, n)
        assert (result.prompt_tokens, result.completion_tokens, result.finish_reason) == (
            len(tok(prompt)["input_ids"]), n, "length")


LONG = "def add(a, b):\n    return a + b\n\nclass Point:\n    x: int = 0\n" * 3


def test_rows_joining_mid_flight_and_chunked_prompts_match_generate(codex_tiny: tuple[Any, Any]) -> None:
    model, tok = codex_tiny
    assert len(tok(LONG)["input_ids"]) > 3 * 16  # prefilled in several chunks of 16
    arrivals = [[GenRequest(PROMPTS[0], 30, temperature=0.0)], [], [GenRequest(LONG, 12, temperature=0.0)],
                [GenRequest(PROMPTS[1], 3, temperature=0.0), GenRequest(PROMPTS[2], 20, temperature=0.0)],
                [], [], [GenRequest(PROMPTS[3], 8, temperature=0.0)]]
    results = _drive(_engine(model, tok, max_prompt_tokens=200, chunk=16), arrivals)
    expected = [(r.prompt, r.max_new_tokens) for step in arrivals for r in step]
    assert [result.text for result, _ in results] == [_generate(model, tok, p, n) for p, n in expected]


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two LoRA checkpoints on the tiny model whose random B matrices make them answer differently."""
    root = tmp_path_factory.mktemp("adapters")
    return {name: make_checkpoint(tiny_model_dir, root, name, seed=seed, latest=False)
            for name, seed in (("a", 1), ("b", 2))}


def _alone(tiny_model_dir: Path, tok: Any, adapter: Path | None, requests: list[GenRequest]) -> list[str]:
    """Greedy texts from an engine serving only this adapter (peft's own forward), or only the base."""
    from peft import PeftModel

    model = load_tiny(tiny_model_dir)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).eval()
    return [result.text for result, _ in _run(_engine(model, tok, max_prompt_tokens=200), requests)]


def test_rows_on_different_adapters_share_a_batch_and_answer_as_each_alone(
        tiny: tuple[Any, Any], tiny_model_dir: Path, adapters: dict[str, Path]) -> None:
    _, tok = tiny
    engine = _engine(load_tiny(tiny_model_dir), tok, max_prompt_tokens=200, chunk=16)
    for name, path in adapters.items():
        engine.attach(f"inner_{name}", read_adapter(str(path), "cpu"))
    targets = {"a": Target("a", "a", "inner_a"), "b": Target("b", "b", "inner_b"), None: Target("tiny", "tiny")}
    requests = [GenRequest(PROMPTS[0], 12, temperature=0.0), GenRequest(LONG, 10, temperature=0.0),
                GenRequest(PROMPTS[2], 16, temperature=0.0)]
    # every adapter (and the base) in one batch, rows joining mid-flight, a long prompt prefilled in chunks
    arrivals = [[(requests[0], targets["a"]), (requests[0], targets["b"]), (requests[0], targets[None])],
                [(requests[1], targets["b"])], [(requests[2], targets["a"]), (requests[1], targets[None])],
                [(requests[2], targets["b"]), (requests[1], targets["a"]), (requests[2], targets[None])]]
    texts = [result.text for result, _ in _drive(engine, arrivals)]
    alone = {key: _alone(tiny_model_dir, tok, adapters.get(key), requests) for key in ("a", "b", None)}
    key = {id(target): name for name, target in targets.items()}
    expected = [alone[key[id(target)]][requests.index(request)] for step in arrivals for request, target in step]
    assert texts == expected
    assert len({alone["a"][0], alone["b"][0], alone[None][0]}) == 3  # the adapters do change the answers

    engine.detach("inner_a")  # the other adapter and the base are unaffected
    again = _drive(engine, [[(requests[0], targets["b"]), (requests[0], targets[None])]])
    assert [result.text for result, _ in again] == [alone["b"][0], alone[None][0]]


def test_new_weights_wait_until_the_rows_on_the_old_ones_are_done(tiny: tuple[Any, Any], tiny_model_dir: Path) -> None:
    model, tok = tiny
    engine = _engine(model, tok)
    other = load_tiny(tiny_model_dir)
    with torch.no_grad():
        other.model.embed_tokens.weight.add_(0.25)
    loop = asyncio.new_event_loop()
    old = Job(GenRequest(PROMPTS[0], 6, temperature=0.0), loop, target=Target("tiny", "epoch-1"))
    new = Job(GenRequest(PROMPTS[0], 6, temperature=0.0), loop, target=Target("tiny", "epoch-2", weights=other))
    for job in (old, new):
        job.footprint = engine.prepare(job)
    assert engine.can_join(old)
    engine.join(old)
    ended = engine.step()
    assert not ended and not engine.can_join(new) and engine.model is model  # the running row keeps the old weights
    while not ended:
        ended = engine.step()
    assert engine.can_join(new) and engine.model is other
    engine.join(new)
    while engine.step() != [new]:
        pass
    loop.run_until_complete(asyncio.sleep(0))
    assert old.done.result().text == _generate(model, tok, PROMPTS[0], 6)
    assert new.done.result().text == _generate(other, tok, PROMPTS[0], 6) != old.done.result().text
    loop.close()


def test_the_kv_cache_stays_within_rows_times_the_longest_row(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    engine = _engine(model, tok, max_prompt_tokens=200, chunk=16)
    seen: list[tuple[int, int]] = []

    def check(running: list[Job]) -> None:
        bound = len(running) * max((job.footprint for job in running), default=0)
        assert engine.cache_tokens <= bound
        seen.append((len(running), engine.cache_tokens))

    arrivals = [[GenRequest(LONG, 4, temperature=0.0), GenRequest("x", 12, temperature=0.0)]]
    _drive(engine, arrivals, on_step=check)
    # once the long prompt's row has left, its width is cut off: one short row holds a few slots
    assert seen[-2][0] == 1 and seen[-2][1] < 16 and seen[-1] == (0, 0)


def test_sampling_settings_and_seeds_stay_per_request(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    engine = _engine(model, tok)
    seeded = GenRequest("def add(a, b):", 16, temperature=1.0, top_p=0.9, seed=7)
    alone = _run(engine, [seeded])[0][0].text
    mixed = _run(engine, [GenRequest("x", 5, temperature=0.0), seeded, GenRequest("class", 9, temperature=1.5, seed=1)])
    assert mixed[1][0].text == alone
    joined_late = _drive(engine, [[GenRequest("class", 30, temperature=1.5, seed=1)], [], [], [seeded]])
    assert joined_late[1][0].text == alone
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
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                cache: Any = None, use_cache: bool = True, logits_to_keep: int = 0) -> SimpleNamespace:
        step, self.calls = self.calls, self.calls + 1  # one row: its prefill, then one call per token
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
