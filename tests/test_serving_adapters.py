"""Many LoRA adapters on one base, added and removed at runtime, and --follow, in process (Starlette TestClient)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from ckpt_fixtures import make_checkpoint, write_latest
from conftest import build_tiny_model
from serving_stubs import settings
from starlette.testclient import TestClient

from codex_cli.checkpoint.layout import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from codex_cli.errors import UsageError
from codex_cli.serving import create_app
from codex_cli.serving.settings import ServeSettings
from codex_cli.serving.source import select_source

PROMPT = "def add(a, b):"


@pytest.fixture(scope="module")
def lora(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Adapters on the tiny base (a, b; 'plain' is a's adapter without codex metadata), one on another base, a
    full checkpoint."""
    root = tmp_path_factory.mktemp("lora")
    paths = {name: make_checkpoint(tiny_model_dir, root, name, seed=seed, latest=False)
             for name, seed in (("a", 1), ("b", 2))}
    paths["plain"] = root / "plain"
    paths["plain"].mkdir()
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        shutil.copy2(paths["a"] / name, paths["plain"] / name)
    other = build_tiny_model(root / "other-base", hidden=48)
    paths["stranger"] = make_checkpoint(other, root, "stranger", latest=False)
    paths["full"] = make_checkpoint(tiny_model_dir, root, "full", kind="full", latest=False)
    paths["dora"] = _peft_adapter(tiny_model_dir, root / "dora", use_dora=True)
    paths["base"] = tiny_model_dir
    return paths


def _peft_adapter(base: Path, path: Path, **lora: object) -> Path:
    """A plain PEFT LoRA directory (save_pretrained, no codex metadata) on ``base``."""
    from ckpt_fixtures import load_tiny
    from peft import LoraConfig, get_peft_model

    from codex_cli.model import quiet_peft_deprecation

    with quiet_peft_deprecation():
        model = get_peft_model(load_tiny(base), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], **lora))
    model.save_pretrained(path)
    return path


def _settings(base: Path, adapters: list[str], **serve: object) -> ServeSettings:
    config = settings(**serve)
    return replace(config, serve=replace(config.serve, model=str(base), adapters=adapters, preload=True))


@pytest.fixture(scope="module")
def client(lora: dict[str, Path]) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(lora["base"], [f"a={lora['a']}", f"b={lora['b']}"]))) as client:
        yield client


def _infer(client: TestClient, model: str | None, tokens: int = 8) -> dict:
    body = {"prompt": PROMPT, "max_new_tokens": tokens, "temperature": 0}
    r = client.post("/infer", json=body if model is None else {**body, "model": model})
    assert r.status_code == 200, r.text
    return r.json()


def test_one_server_answers_with_the_adapter_each_request_names(client: TestClient, lora: dict[str, Path]) -> None:
    base = str(lora["base"])
    listed = client.get("/v1/models").json()["data"]
    assert [(m["id"], m.get("parent"), m["checkpoint"]) for m in listed] == [(base, None, base), ("a", base, "a"),
                                                                            ("b", base, "b")]
    answers = {name: _infer(client, name) for name in ("a", "b", base)}
    assert len({a["completion"] for a in answers.values()}) == 3  # each adapter changes the answer
    assert (answers["a"]["model"], answers["a"]["checkpoint"]) == ("a", "a")
    assert _infer(client, None)["completion"] == answers[base]["completion"]  # no 'model': the base

    completion = client.post("/v1/completions", json={"model": "b", "prompt": [PROMPT, PROMPT], "max_tokens": 8,
                                                      "temperature": 0}).json()
    assert [c["text"] for c in completion["choices"]] == [answers["b"]["completion"]] * 2
    assert (completion["model"], completion["system_fingerprint"], completion["checkpoint"]) == ("b", "b", "b")
    chat = client.post("/v1/chat/completions", json={"model": "a", "messages": [{"role": "user", "content": "hi"}],
                                                     "max_tokens": 4, "temperature": 0, "stream": True})
    events = [json.loads(line[6:]) for line in chat.text.split("\n\n") if line.startswith("data: {")]
    assert {(e["model"], e["system_fingerprint"]) for e in events} == {("a", "a")}

    missing = client.post("/infer", json={"prompt": "x", "model": "gpt-4o"})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == (f"this server serves models '{base}', 'a', 'b'; set 'model' to one "
                                                  "of them (see GET /v1/models)")
    metrics = client.get("/metrics").text
    assert 'codex_model_requests_total{model="a"} 2' in metrics
    assert 'codex_model_tokens_total{model="b",kind="completion"} 24' in metrics


def test_adapters_are_added_and_removed_at_runtime(client: TestClient, lora: dict[str, Path]) -> None:
    added = client.post("/v1/adapters", json={"name": "c", "path": str(lora["plain"])})
    assert added.status_code == 201
    assert added.json() == {"id": "c", "object": "model", "created": 0, "owned_by": "codex", "checkpoint": "plain",
                            "parent": str(lora["base"])}
    assert _infer(client, "c")["completion"] == _infer(client, "a")["completion"]  # the same weights as 'a'
    assert "c" in [m["id"] for m in client.get("/v1/models").json()["data"]]

    removed = client.delete("/v1/adapters/c")
    assert removed.json() == {"id": "c", "object": "model", "deleted": True}
    assert client.post("/infer", json={"prompt": "x", "model": "c"}).status_code == 404
    assert "c" not in [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert 'codex_requests_total{route="/v1/adapters/{name}",status="200"} 1' in client.get("/metrics").text


@pytest.mark.parametrize(("body", "status", "message"), [
    pytest.param({"name": "a", "path": "PLAIN"}, 409, "model 'a' is already served; remove it first "
                 "(DELETE /v1/adapters/a) or choose another name", id="taken"),
    pytest.param({"name": "s", "path": "STRANGER"}, 422, "adapter 's' was trained on base model 'OTHER', but this "
                 "server runs 'BASE'; serve it with that base model or leave it out", id="wrong-base"),
    pytest.param({"name": "f", "path": "FULL"}, 422, "adapter 'f': 'full' is a full checkpoint, not a LoRA adapter; "
                 "serve it with --checkpoint instead", id="full-checkpoint"),
    pytest.param({"name": "n", "path": "/no/such/dir"}, 422, "adapter 'n': no directory at '/no/such/dir'; pass a "
                 "LoRA checkpoint or PEFT adapter directory", id="bad-path"),
    pytest.param({"name": "a b", "path": "PLAIN"}, 422, "an adapter name must be 1 to 64 letters, digits, '.', '_', "
                 "':' or '-', starting with a letter or digit", id="bad-name"),
    pytest.param({"name": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "path": "PLAIN"}, 422,
                 "that adapter name looks like a secret (an API key or token); choose another", id="secret-name"),
    pytest.param({"name": "d", "path": "DORA"}, 422, "the adapter uses DoRA, which codex serve cannot batch per "
                 "request; serve it alone with --checkpoint", id="dora"),
    pytest.param({"name": "x"}, 422, "missing required field 'path'", id="no-path"),
])
def test_adapters_that_cannot_be_served_get_one_sentence(client: TestClient, lora: dict[str, Path], body: dict,
                                                         status: int, message: str) -> None:
    paths = {"PLAIN": lora["plain"], "STRANGER": lora["stranger"], "FULL": lora["full"], "DORA": lora["dora"]}
    body = {k: str(paths.get(v, v)) for k, v in body.items()}
    r = client.post("/v1/adapters", json=body)
    assert r.status_code == status
    expected = message.replace("OTHER", str(lora["stranger"].parent / "other-base")).replace("BASE", str(lora["base"]))
    assert r.json()["error"]["message"] == expected


def test_removing_an_unknown_adapter_is_404(client: TestClient) -> None:
    r = client.delete("/v1/adapters/nope")
    assert r.status_code == 404
    assert r.json()["error"] == {"message": "no adapter of that name is served (see GET /v1/models)",
                                 "type": "model_not_found"}


def test_a_removed_adapter_finishes_its_running_requests_first(lora: dict[str, Path]) -> None:
    app = create_app(_settings(lora["base"], [f"a={lora['a']}"]))
    with TestClient(app) as client:
        alone = _infer(client, "a", tokens=40)
        body = {"model": "a", "prompt": PROMPT, "max_tokens": 40, "temperature": 0, "stream": True}
        with client.stream("POST", "/v1/completions", json=body) as stream:
            lines = stream.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert client.delete("/v1/adapters/a").status_code == 200  # while the stream is generating
            assert client.post("/infer", json={"prompt": "x", "model": "a"}).status_code == 404
            rest = [line for line in lines if line.startswith("data: ")]
        events = [json.loads(line[6:]) for line in [first, *rest[:-1]]]
        assert rest[-1] == "data: [DONE]" and events[-1]["choices"][0]["finish_reason"] == alone["finish_reason"]
        assert "".join(e["choices"][0]["text"] for e in events) == alone["completion"]
        model = app.state.scheduler.engine.model
        deadline = time.monotonic() + 10
        while list(model.peft_config):  # released on the worker once nothing runs on it
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_adapters_load_with_the_model_on_the_first_request(lora: dict[str, Path]) -> None:
    config = _settings(lora["base"], [f"a={lora['a']}"])
    with TestClient(create_app(replace(config, serve=replace(config.serve, preload=False)))) as client:
        assert client.get("/readyz").status_code == 503  # nothing loaded yet
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [str(lora["base"]), "a"]
        assert _infer(client, "a")["checkpoint"] == "a"


def test_the_echo_model_takes_no_adapters_at_runtime(lora: dict[str, Path]) -> None:
    with TestClient(create_app(settings())) as client:
        r = client.post("/v1/adapters", json={"name": "c", "path": str(lora["plain"])})
    assert (r.status_code, r.json()["error"]["message"]) == (409, "the echo model takes no adapters")


def test_runtime_changes_need_one_worker(lora: dict[str, Path]) -> None:
    with TestClient(create_app(_settings(lora["base"], [], workers=2))) as client:
        r = client.post("/v1/adapters", json={"name": "c", "path": str(lora["plain"])})
    assert r.status_code == 409
    assert r.json()["error"]["message"] == ("adapters can be added or removed at runtime only with --workers 1 (each "
                                            "worker holds its own model); name them with --adapter at start instead")


def test_runtime_changes_need_the_api_key(lora: dict[str, Path]) -> None:
    with TestClient(create_app(_settings(lora["base"], [], api_key="k-123"))) as client:
        assert client.post("/v1/adapters", json={"name": "c", "path": str(lora["plain"])}).status_code == 401
        assert client.delete("/v1/adapters/c").status_code == 401
        added = client.post("/v1/adapters", json={"name": "c", "path": str(lora["plain"])},
                            headers={"Authorization": "Bearer k-123"})
        assert added.status_code == 201


@pytest.mark.parametrize(("model", "specs", "message"), [
    pytest.param("echo", ["a={a}"], "the echo model takes no adapters; drop --adapter (serve.adapters) or serve a real "
                 "model", id="echo"),
    pytest.param("{base}", ["a"], "--adapter (serve.adapters) expects NAME=PATH, got 'a'", id="no-path"),
    pytest.param("{base}", ["a={a}", "a={b}"], "--adapter 'a' is given twice; give each adapter one name", id="twice"),
    pytest.param("codex-tiny", ["codex-tiny={a}"], "adapter 'codex-tiny' has the name of the base model; give it "
                 "another name", id="base-name"),
    pytest.param("{base}", ["s={stranger}"], "adapter 's' was trained on base model '{other}', but this server runs "
                 "'{base}'; serve it with that base model or leave it out", id="wrong-base"),
    pytest.param("codex-tiny", ["a={a}"], "adapter 'a' was trained on base model '{base}', but this server runs "
                 "'codex-tiny'; serve it with that base model or leave it out", id="other-base"),
])
def test_adapters_are_checked_before_the_server_starts(lora: dict[str, Path], model: str, specs: list[str],
                                                       message: str) -> None:
    paths = {**{k: str(v) for k, v in lora.items()}, "other": str(lora["stranger"].parent / "other-base")}
    config = settings(model=model.format(**paths), adapters=[spec.format(**paths) for spec in specs])
    with pytest.raises(UsageError) as info:
        select_source(config)
    assert str(info.value) == message.format(**paths)


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_follow_switches_to_each_verified_checkpoint(tiny_model_dir: Path, tmp_path: Path, kind: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    make_checkpoint(tiny_model_dir, run, "epoch-0001", kind=kind, seed=1)
    config = settings(model=None, follow=str(run), follow_interval_s=3600.0, preload=True)
    app = create_app(config)
    with TestClient(app) as client:
        first = _infer(client, None, tokens=40)
        assert (first["model"], first["checkpoint"]) == ("run", "epoch-0001")
        follower = app.state.follower
        assert follower.poll() is None  # nothing new
        assert client.delete("/v1/adapters/run").status_code == 409  # the base is not an adapter

        make_checkpoint(tiny_model_dir, run, "epoch-0002", kind=kind, seed=2)
        body = {"model": "run", "prompt": PROMPT, "max_tokens": 40, "temperature": 0, "stream": True}
        with client.stream("POST", "/v1/completions", json=body) as stream:
            lines = stream.iter_lines()
            head = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
            assert follower.poll() == "epoch-0002"  # while a request runs on epoch-0001
            rest = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        assert {e["checkpoint"] for e in [head, *rest]} == {"epoch-0001"}
        assert "".join(e["choices"][0]["text"] for e in [head, *rest]) == first["completion"]  # on the old weights
        second = _infer(client, "run", tokens=40)
        assert second["checkpoint"] == "epoch-0002" and second["completion"] != first["completion"]
        assert _infer(client, "epoch-0002", tokens=40) == second  # the current checkpoint's name works too
        if kind == "lora":  # epoch-0001's adapter is released once its request is done; epoch-0002's stays
            model = app.state.scheduler.engine.model
            deadline = time.monotonic() + 10
            while list(model.peft_config) != [app.state.registry.base.adapter]:
                assert time.monotonic() < deadline, list(model.peft_config)
                time.sleep(0.01)

        corrupt = shutil.copytree(run / "epoch-0002", run / "epoch-0003")
        weights = corrupt / (ADAPTER_WEIGHTS if kind == "lora" else "model.safetensors")
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
        write_latest(run, "epoch-0003")
        with caplog.at_level(logging.ERROR, logger="codex.serve"):
            assert follower.poll() is None
        assert _infer(client, "run", tokens=40) == second  # still the last good checkpoint
        assert f"codex: --follow: skipping checkpoint 'epoch-0003': checkpoint '{corrupt}' is corrupt: " \
               f"{weights.name} does not match its SHA256" in caplog.text
        assert "still serving 'epoch-0002'" in caplog.text

        other = "full" if kind == "lora" else "lora"
        make_checkpoint(tiny_model_dir, run, "epoch-0004", kind=other, seed=4)
        with caplog.at_level(logging.ERROR, logger="codex.serve"):
            assert follower.poll() is None
        assert _infer(client, "run", tokens=40) == second
        assert f"skipping checkpoint 'epoch-0004': it is a {other} checkpoint, but this server follows a {kind} " \
               "run; restart codex serve to serve it; still serving 'epoch-0002'" in caplog.text
