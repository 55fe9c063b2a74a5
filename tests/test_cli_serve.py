"""``codex serve`` for real: uvicorn in a subprocess on a free loopback port, httpx and the openai client."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Iterator

import httpx
import openai
import pytest
from conftest import run_codex
from serving_stubs import SECRET, Server, codex_serve, free_port

PROMPT_SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Server]:
    server = Server(codex_serve("--model", "echo")).wait_ready()
    yield server
    server.stop()


def test_echo_server_over_http_masks_and_logs_no_secrets(echo_server: Server) -> None:
    r = httpx.post(f"{echo_server.url}/infer", json={"prompt": f"token {PROMPT_SECRET} done"})
    assert r.status_code == 200
    assert r.json()["completion"] == "token [SECRET] done" and r.json()["model"] == "echo"
    bad = httpx.post(f"{echo_server.url}/infer?key={PROMPT_SECRET}", content=b'{"prompt": 5}')
    assert bad.status_code == 422 and PROMPT_SECRET not in bad.text
    httpx.get(f"{echo_server.url}/x/{PROMPT_SECRET}")
    assert PROMPT_SECRET not in httpx.get(f"{echo_server.url}/metrics").text
    assert httpx.get(f"{echo_server.url}/healthz").json() == {"status": "ok"}


def test_openai_client_completions_and_stream(echo_server: Server) -> None:
    client = openai.OpenAI(base_url=f"{echo_server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["echo"]
    done = client.completions.create(model="echo", prompt=f"a {PROMPT_SECRET} b", max_tokens=8)
    assert done.choices[0].text == "a [SECRET] b" and done.model == "echo"
    assert done.usage.completion_tokens == 3
    stream = client.completions.create(model="echo", prompt="one two three", max_tokens=2, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "one two "
    assert chunks[-1].choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError, match="this server serves model 'echo' only"):
        client.completions.create(model="gpt-4o", prompt="x")
    with pytest.raises(openai.UnprocessableEntityError, match="'max_tokens' must be between 1 and 256"):
        client.completions.create(model="echo", prompt="x", max_tokens=100_000)


def test_openai_client_chat_completions_and_stream(echo_server: Server) -> None:
    client = openai.OpenAI(base_url=f"{echo_server.url}/v1", api_key="unused", max_retries=0)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"say {PROMPT_SECRET} back"}]
    done = client.chat.completions.create(model="echo", messages=messages, max_tokens=8, temperature=0)
    assert done.choices[0].message.role == "assistant" and done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content == "say [SECRET] back" and done.usage.completion_tokens == 3
    stream = client.chat.completions.create(model="echo", messages=messages, max_completion_tokens=2, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "say [SECRET] "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 2
    with pytest.raises(openai.UnprocessableEntityError, match="'messages\\[0\\].role' must be one of"):
        client.chat.completions.create(model="echo", messages=[{"role": "robot", "content": "x"}])


def test_access_log_binding_and_sigterm_exit(echo_server: Server) -> None:
    httpx.post(f"{echo_server.url}/infer", json={"prompt": PROMPT_SECRET}, params={"q": PROMPT_SECRET})
    proc = echo_server.proc
    output = echo_server.stop()
    assert proc.returncode == 0
    assert f"Uvicorn running on http://127.0.0.1:{echo_server.port}" in output
    assert '"POST /infer" 200' in output and PROMPT_SECRET not in output


def test_api_key_from_env_is_required() -> None:
    server = Server(codex_serve("--model", "echo"), env={"CODEX_API_KEY": "test-key-123"}).wait_ready()
    try:
        assert httpx.post(f"{server.url}/infer", json={"prompt": "x"}).status_code == 401
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="test-key-123", max_retries=0)
        assert client.completions.create(model="echo", prompt="hi").choices[0].text == "hi"
    finally:
        output = server.stop()
    assert "test-key-123" not in output


def test_tiny_model_streams_and_drains_on_sigterm(tiny_model_dir: Path) -> None:
    args = codex_serve("--model", str(tiny_model_dir), "--preload")
    server = Server(args).wait_ready("/readyz")
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        done = client.completions.create(model=str(tiny_model_dir), prompt="def add(a, b):", max_tokens=5,
                                         temperature=0, seed=1)
        assert done.model == str(tiny_model_dir) and done.usage.prompt_tokens > 0
        body = {"model": str(tiny_model_dir), "prompt": "def", "max_tokens": 200, "temperature": 0.0, "stream": True}
        with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as response:
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            server.proc.send_signal(signal.SIGTERM)  # mid-stream: the response must still complete
            rest = [line for line in lines if line.startswith("data: ")]
        assert json.loads(first[6:])["choices"][0]["finish_reason"] is None
        assert rest[-1] == "data: [DONE]"
        assert server.proc.wait(timeout=60) == 0
    finally:
        server.stop()


def test_plain_uvicorn_factory_reads_codex_config(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  model: echo\n  max_new_tokens: 4\n  default_max_new_tokens: 4\n")
    args = [sys.executable, "-m", "uvicorn", "--factory", "codex_cli.serving:create_app", "--host", "127.0.0.1"]
    server = Server(args, env={"CODEX_CONFIG": str(config)}).wait_ready()
    try:
        r = httpx.post(f"{server.url}/infer", json={"prompt": "x", "max_new_tokens": 5})
        assert r.status_code == 422 and "between 1 and 4" in r.json()["error"]["message"]
        r = httpx.post(f"{server.url}/infer?k={PROMPT_SECRET}", json={"prompt": "x"})
        assert r.status_code == 200
    finally:
        output = server.stop()
    assert "POST /infer" in output and PROMPT_SECRET not in output  # uvicorn's own access log, masked


def test_two_workers_serve() -> None:
    server = Server(codex_serve("--model", "echo", "--workers", "2")).wait_ready()
    try:
        answers = {httpx.post(f"{server.url}/infer", json={"prompt": f"n{i}"}).json()["completion"] for i in range(6)}
    finally:
        server.stop()
    assert answers == {f"n{i}" for i in range(6)}
    assert server.proc.returncode == 0


def test_missing_checkpoint_fails_before_binding(tmp_path: Path) -> None:
    result = run_codex("serve", "--checkpoint", str(tmp_path / "nope"), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"codex: error: checkpoint '{tmp_path / 'nope'}' not found; "
                                     "run 'codex ckpt inspect DIR' to list checkpoints")


def test_model_and_checkpoint_together_is_a_usage_error(tmp_path: Path) -> None:
    result = run_codex("serve", "--model", "echo", "--checkpoint", str(tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "codex: error: give either --checkpoint or --model (serve.model), not both"


def test_unloadable_model_with_preload_exits_non_zero(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_model_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    result = run_codex("serve", "--model", str(broken), "--preload", "--port", str(free_port()), timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("codex: error: the server did not start: the model could not be loaded: "), result.stderr
    assert "Traceback" not in result.stderr


def test_secret_is_not_in_the_command_error(tmp_path: Path) -> None:
    result = run_codex("serve", f"serve.api_key={SECRET}", "serve.port=99999", timeout=60)
    assert result.returncode == 2 and SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    pytest.param(["--checkpoint", "/no/such/ckpt"], 1,
                 "codex: error: checkpoint '/no/such/ckpt' not found; run 'codex ckpt inspect DIR' to list checkpoints",
                 id="missing-checkpoint"),
    pytest.param(["--model", "echo", "--checkpoint", "/tmp"], 2,
                 "codex: error: give either --checkpoint or --model (serve.model), not both", id="both"),
    pytest.param(["--model", "echo", "serve.max_new_tokens=8"], 2,
                 "codex: error: serve.default_max_new_tokens (32) is above the cap serve.max_new_tokens (8); "
                 "lower it or raise the cap", id="default-above-cap"),
    pytest.param(["--model", "echo", "--workers", "0"], 2,
                 "codex: error: config key 'serve.workers' must be >= 1, got 0 (int)", id="workers-0"),
])
def test_cli_errors_in_process(args: list[str], code: int, message: str) -> None:
    from typer.testing import CliRunner

    from codex_cli.cli import app

    result = CliRunner().invoke(app, ["serve", *args], catch_exceptions=False)
    assert result.exit_code == code
    assert result.output.strip().splitlines()[-1] == message


@pytest.mark.slow
def test_train_on_chat_records_then_chat_with_the_result(tiny_model_dir: Path, tmp_path: Path) -> None:
    pairs = [("ping", "pong"), ("hello", "world")]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant",
                                                                                      "content": a}]}) + "\n"
                            for q, a in pairs * 12))
    trained = run_codex("train", "--full", "--model", str(tiny_model_dir), "--data", str(data), "--epochs", "30",
                        "--lr", "3e-2", "--quiet", f"checkpoint.dir={tmp_path / 'ck'}", "checkpoint.keep_last=1",
                        "train.batch_size=8", "data.eval_fraction=0", "train.scheduler=constant")
    assert trained.returncode == 0, trained.stderr
    server = Server(codex_serve("--checkpoint", str(tmp_path / "ck"), "--preload")).wait_ready("/readyz")
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        for question, answer in pairs:
            done = client.chat.completions.create(model="epoch-0030", temperature=0, max_tokens=10,
                                                  messages=[{"role": "user", "content": question}])
            # the default template ends the assistant turn with EOS, so the model stops right after its answer
            assert (done.choices[0].message.content, done.choices[0].finish_reason) == (answer, "stop")
        streamed = client.chat.completions.create(model="epoch-0030", temperature=0, stream=True,
                                                  messages=[{"role": "user", "content": "ping"}])
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "pong"
    finally:
        server.stop()
