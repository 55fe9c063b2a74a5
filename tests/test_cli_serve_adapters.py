"""``codex serve --adapter`` and ``--follow`` for real: uvicorn in a subprocess, a training run writing checkpoints."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from ckpt_fixtures import make_checkpoint, write_latest
from conftest import build_tiny_model, codex_exe, run_codex
from serving_stubs import Server, codex_serve

from codex_cli.checkpoint.layout import ADAPTER_WEIGHTS

PROMPTS = ["def add(a, b):", "class Point:", "import os", "for i in range(10):"]
KEY = "test-key-456"


@functools.lru_cache(maxsize=4)
def _loaded(path: Path) -> Any:
    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.config import ModelConfig

    return load_for_inference(path, ModelConfig())


def _greedy(path: Path, prompt: str, tokens: int) -> str:
    """What the checkpoint (or model) at ``path`` answers alone, loaded in this process the way serve loads it."""
    import torch

    loaded = _loaded(path)
    ids = loaded.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = loaded.model.generate(**ids, max_new_tokens=tokens, do_sample=False,
                                    pad_token_id=loaded.tokenizer.pad_token_id)
    return loaded.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def _infer(url: str, model: str, prompt: str, tokens: int = 12) -> dict:
    r = httpx.post(f"{url}/infer", json={"model": model, "prompt": prompt, "max_new_tokens": tokens,
                                         "temperature": 0}, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_one_process_serves_two_adapters_and_each_answers_as_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    a = make_checkpoint(tiny_model_dir, tmp_path / "a", "epoch-0001", seed=1)
    b = make_checkpoint(tiny_model_dir, tmp_path / "b", "epoch-0001", seed=2)
    args = codex_serve("--model", str(tiny_model_dir), "--adapter", f"a={a}", "--adapter", f"b={b}", "--preload")
    server = Server(args, env={"CODEX_API_KEY": KEY})
    alone = Server(codex_serve("--checkpoint", str(a), "--preload"))  # both start at once
    try:
        server.wait_ready("/readyz")
        alone.wait_ready("/readyz")
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list().data] == [str(tiny_model_dir), "a", "b"]
        jobs = [(model, prompt) for prompt in PROMPTS for model in ("a", "b", str(tiny_model_dir))]
        with ThreadPoolExecutor(len(jobs)) as pool:  # concurrent: the adapters share decode steps
            answers = list(pool.map(lambda job: client.completions.create(
                model=job[0], prompt=job[1], max_tokens=12, temperature=0), jobs))
        texts = {job: answer.choices[0].text for job, answer in zip(jobs, answers)}
        assert {(answer.model, answer.system_fingerprint) for answer in answers} == {
            ("a", "epoch-0001"), ("b", "epoch-0001"), (str(tiny_model_dir), str(tiny_model_dir))}
        for prompt in PROMPTS:
            assert texts["a", prompt] == _infer(alone.url, "epoch-0001", prompt)["completion"]
            assert texts["b", prompt] == _greedy(b, prompt, 12)
            assert texts[str(tiny_model_dir), prompt] == _greedy(tiny_model_dir, prompt, 12)
        assert len({texts[model, PROMPTS[0]] for model in ("a", "b", str(tiny_model_dir))}) == 3

        url = f"{server.url}/v1/adapters"
        assert httpx.post(url, json={"name": "c", "path": str(b)}).status_code == 401
        added = httpx.post(url, json={"name": "c", "path": str(b)}, headers={"Authorization": f"Bearer {KEY}"})
        assert added.status_code == 201 and added.json()["parent"] == str(tiny_model_dir)
        assert _infer(server.url, "c", PROMPTS[0])["completion"] == texts["b", PROMPTS[0]]
        removed = httpx.delete(f"{url}/c", headers={"Authorization": f"Bearer {KEY}"})
        assert removed.json() == {"id": "c", "object": "model", "deleted": True}
        with pytest.raises(openai.NotFoundError, match="this server serves models"):
            client.completions.create(model="c", prompt="x")
        metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
        assert f'codex_model_requests_total{{model="a"}} {len(PROMPTS)}' in metrics
    finally:
        output = server.stop()
        alone.stop()
    assert KEY not in output


def test_an_adapter_for_another_base_stops_the_start_with_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = build_tiny_model(tmp_path / "other-base", hidden=48)
    stranger = make_checkpoint(other, tmp_path / "ck", "epoch-0001")
    result = run_codex("serve", "--model", str(tiny_model_dir), "--adapter", f"s={stranger}", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"codex: error: adapter 's' was trained on base model '{other}', but this server runs '{tiny_model_dir}'; "
        "serve it with that base model or leave it out"]


@pytest.mark.slow
def test_follow_a_training_run_while_clients_send_requests(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "completion": a}) + "\n"
                            for q, a in [("ping:", " pong"), ("hello:", " world")] * 8))
    ckpts = tmp_path / "ckpts"
    train = ["train", "--lora", "--model", str(tiny_model_dir), "--data", str(data), "--lr", "5e-2", "--quiet",
             f"checkpoint.dir={ckpts}", "train.batch_size=8", "data.eval_fraction=0", "train.scheduler=constant"]
    first = run_codex(*train, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    server = Server(codex_serve("--follow", str(ckpts), "--preload", "serve.follow_interval_s=0.2")) \
        .wait_ready("/readyz")
    answers: list[tuple[int, str, str]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.wait(0.02):  # leave the training run most of the CPU
            r = httpx.post(f"{server.url}/infer", json={"prompt": "ping:", "max_new_tokens": 6, "temperature": 0},
                           timeout=60)
            body = r.json()
            answers.append((r.status_code, body.get("checkpoint", ""), body.get("completion", "")))

    clients = [threading.Thread(target=client) for _ in range(2)]
    try:
        for thread in clients:
            thread.start()
        resumed = subprocess.run([codex_exe(), *train, "--epochs", "4", "--resume"], capture_output=True, text=True,
                                 timeout=240)
        assert resumed.returncode == 0, resumed.stderr
        deadline = time.monotonic() + 60
        while not answers or answers[-1][1] != "epoch-0004":  # the last checkpoint is picked up
            assert time.monotonic() < deadline, answers[-3:]
            time.sleep(0.1)
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    finally:
        stop.set()
        output = server.stop()
    assert [a for a in answers if a[0] != 200] == []
    seen = {checkpoint for _, checkpoint, _ in answers}
    assert {"epoch-0001", "epoch-0004"} <= seen and seen <= {f"epoch-000{i}" for i in range(1, 5)}
    by_checkpoint = {checkpoint: {text for _, c, text in answers if c == checkpoint} for checkpoint in seen}
    assert all(len(texts) == 1 for texts in by_checkpoint.values())  # never a mix of two checkpoints' weights
    assert by_checkpoint["epoch-0004"] == {_greedy(ckpts / "epoch-0004", "ping:", 6)}
    assert "--follow: now serving checkpoint 'epoch-0004'" in output


def test_follow_skips_a_corrupt_checkpoint_and_keeps_serving(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_checkpoint(tiny_model_dir, run, "epoch-0001", seed=1)
    server = Server(codex_serve("--follow", str(run), "--preload", "serve.follow_interval_s=0.1")) \
        .wait_ready("/readyz")
    try:
        first = _infer(server.url, "run", PROMPTS[0])
        assert first["checkpoint"] == "epoch-0001"
        corrupt = shutil.copytree(run / "epoch-0001", run / "epoch-0002")
        weights = bytearray((corrupt / ADAPTER_WEIGHTS).read_bytes())
        weights[-1] ^= 0xFF
        (corrupt / ADAPTER_WEIGHTS).write_bytes(bytes(weights))
        write_latest(run, "epoch-0002")
        deadline = time.monotonic() + 30
        while "skipping checkpoint 'epoch-0002'" not in server.read_output():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert _infer(server.url, "run", PROMPTS[0]) == first
        make_checkpoint(tiny_model_dir, run, "epoch-0003", seed=3)
        while _infer(server.url, "run", PROMPTS[0])["checkpoint"] != "epoch-0003":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        output = server.stop()
    assert f"codex: --follow: skipping checkpoint 'epoch-0002': checkpoint '{corrupt}' is corrupt: {ADAPTER_WEIGHTS} " \
           "does not match its SHA256 in metadata.json (changed or corrupted)" in output
    assert "still serving 'epoch-0001'" in output
