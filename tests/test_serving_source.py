"""Which model a server answers with: --checkpoint, serve.model, latest.json, model.name; no fallback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from ckpt_fixtures import make_checkpoint
from serving_stubs import settings
from starlette.testclient import TestClient

from codex_cli.config import ModelConfig
from codex_cli.errors import CheckpointError, ConfigError, ModelError, UsageError
from codex_cli.serving import create_app
from codex_cli.serving.settings import ServeSettings
from codex_cli.serving.source import select_source


def _settings(ckpt_dir: Path, model: str | None = None, checkpoint: str | None = None,
              name: str = "codex-tiny") -> ServeSettings:
    base = settings()
    return replace(base, serve=replace(base.serve, model=model), checkpoint_dir=str(ckpt_dir), checkpoint=checkpoint,
                   model=ModelConfig(name=name))


@pytest.fixture(scope="module")
def ckpt_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ckpts")
    make_checkpoint(tiny_model_dir, root, "epoch-0001", kind="lora", latest=False)
    make_checkpoint(tiny_model_dir, root, "epoch-0002", kind="full", latest=True)
    return root


def test_selection_order(ckpt_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    explicit = select_source(_settings(ckpt_dir, checkpoint=str(ckpt_dir / "epoch-0001")))
    assert (explicit.origin, explicit.name) == ("--checkpoint", "epoch-0001")
    assert select_source(_settings(ckpt_dir, model="echo")).is_echo
    named = select_source(_settings(ckpt_dir, model=str(tiny_model_dir)))
    assert (named.origin, named.ref) == ("serve.model", str(tiny_model_dir))
    latest = select_source(_settings(ckpt_dir))
    assert (latest.origin, latest.name) == ("latest.json", "epoch-0002")
    builtin = select_source(_settings(tmp_path / "no-checkpoints-yet"))
    assert (builtin.origin, builtin.name) == ("model.name", "codex-tiny")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    pytest.param({"model": "echo", "checkpoint": "x"}, UsageError,
                 "give either --checkpoint or --model (serve.model), not both", id="both"),
    pytest.param({"name": "/no/such/model"}, ModelError, "model directory '/no/such/model' not found; "
                 "check the path in model.name", id="missing-model-dir"),
])
def test_selection_errors_say_why(tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        select_source(_settings(tmp_path, **kwargs))
    assert str(info.value) == message


def test_broken_latest_json_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text('{"checkpoint": "gone"}')
    with pytest.raises(CheckpointError, match="names checkpoint 'gone', which does not exist"):
        select_source(_settings(tmp_path))


def test_default_tokens_above_the_cap_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"serve.default_max_new_tokens \(32\) is above the cap"):
        select_source(replace(settings(max_new_tokens=8), checkpoint_dir=str(tmp_path)))


@pytest.mark.parametrize("name", ["epoch-0001", "epoch-0002"], ids=["lora", "full"])
def test_checkpoints_are_served_and_named(ckpt_dir: Path, name: str) -> None:
    config = _settings(ckpt_dir, checkpoint=str(ckpt_dir / name))
    with TestClient(create_app(replace(config, serve=replace(config.serve, preload=True)))) as client:
        assert client.get("/readyz").json() == {"status": "ready", "model": name}
        r = client.post("/v1/completions", json={"model": name, "prompt": "def add(a, b):", "max_tokens": 4,
                                                 "temperature": 0})
    assert r.status_code == 200 and r.json()["model"] == name
    assert r.json()["usage"]["completion_tokens"] <= 4


def test_lazy_load_failure_answers_503_and_readyz_says_failed(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with TestClient(create_app(_settings(tmp_path, model=str(broken)))) as client:
        first = client.post("/infer", json={"prompt": "x"})
        second = client.post("/infer", json={"prompt": "x"})
        ready = client.get("/readyz")
    assert first.status_code == second.status_code == 503
    assert first.json()["error"]["type"] == "model_unavailable"
    assert first.json()["error"]["message"].startswith(f"the model could not be loaded: cannot load the tokenizer of "
                                                       f"model '{broken}'")
    assert ready.status_code == 503 and ready.json()["status"] == "failed"
