"""In-process tests of the serving app (Starlette TestClient): routes, errors, auth, limits, secrets."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
from serving_stubs import SECRET, SECRET_PIECES, GatedEngine, ScriptEngine, settings
from starlette.testclient import TestClient

from codex_cli.serving import create_app

PROMPT_SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def echo() -> TestClient:
    with TestClient(create_app(settings())) as client:
        yield client


def _wait_for_metric(client: TestClient, line: str) -> None:
    deadline = time.monotonic() + 10
    while line not in client.get("/metrics").text:
        assert time.monotonic() < deadline, client.get("/metrics").text[-300:]
        time.sleep(0.005)


def _sse(text: str) -> list[dict]:
    events = [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_infer_echoes_the_prompt_and_names_the_model(echo: TestClient) -> None:
    r = echo.post("/infer", json={"prompt": "def add(a, b): return a + b", "max_new_tokens": 3})
    assert r.status_code == 200
    assert r.json() == {"completion": "def add(a, b): ", "model": "echo", "checkpoint": "echo",
                        "finish_reason": "length", "masked": 0,
                        "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def test_infer_stop_string_ends_the_completion(echo: TestClient) -> None:
    r = echo.post("/infer", json={"prompt": "one two three four", "stop": ["thr"]})
    assert r.json()["completion"] == "one two "
    assert r.json()["finish_reason"] == "stop"


def test_completions_match_the_openai_shape(echo: TestClient) -> None:
    r = echo.post("/v1/completions", json={"model": "echo", "prompt": ["a b", "c"], "max_tokens": 5})
    body = r.json()
    assert r.status_code == 200
    assert body["object"] == "text_completion" and body["model"] == "echo" and body["id"].startswith("cmpl-")
    choices = [(c["index"], c["text"], c["finish_reason"]) for c in body["choices"]]
    assert choices == [(0, "a b", "stop"), (1, "c", "stop")]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


def test_completions_stream_as_server_sent_events(echo: TestClient) -> None:
    r = echo.post("/v1/completions", json={"model": "echo", "prompt": "x y z", "stream": True,
                                           "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    assert "".join(c["text"] for e in events for c in e["choices"]) == "x y z"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert len({e["id"] for e in events}) == 1


def test_models_health_and_readiness(echo: TestClient) -> None:
    assert echo.get("/v1/models").json()["data"][0]["id"] == "echo"
    assert echo.get("/healthz").json() == {"status": "ok"}
    assert echo.get("/readyz").status_code == 503  # lazy: nothing loaded before the first request
    echo.post("/infer", json={"prompt": "hi"})
    assert echo.get("/readyz").json() == {"status": "ready", "model": "echo"}


def test_preload_loads_at_startup() -> None:
    with TestClient(create_app(settings(preload=True))) as client:
        assert client.get("/readyz").status_code == 200


def test_metrics_count_requests_tokens_batches_and_masks(echo: TestClient) -> None:
    echo.post("/infer", json={"prompt": f"token {PROMPT_SECRET} end"})
    echo.post("/infer", json={"prompt": 3})
    echo.get("/nope/" + PROMPT_SECRET)
    text = echo.get("/metrics").text
    assert 'codex_requests_total{route="/infer",status="200"} 1' in text
    assert 'codex_requests_total{route="/infer",status="422"} 1' in text
    assert 'codex_requests_total{route="other",status="404"} 1' in text
    assert "codex_tokens_generated_total 3" in text
    assert "codex_secrets_masked_total 1" in text
    assert 'codex_running_batch_size_bucket{le="1"} 3' in text  # three words, one step each
    assert "codex_queue_wait_seconds_count 1" in text and "codex_time_to_first_token_seconds_count 1" in text
    assert "codex_queue_depth 0" in text and "codex_running_requests 0" in text
    assert 'codex_request_duration_seconds_count{route="/infer"} 2' in text
    assert PROMPT_SECRET not in text


def test_prompt_secret_never_comes_back(echo: TestClient) -> None:
    r = echo.post("/infer", json={"prompt": f"token = {PROMPT_SECRET}\n"})
    assert r.json()["completion"] == "token = [SECRET]\n" and r.json()["masked"] == 1
    r = echo.post("/v1/completions", json={"model": "echo", "prompt": f"a {PROMPT_SECRET} b", "stream": True})
    streamed = "".join(event["choices"][0]["text"] for event in _sse(r.text))
    assert PROMPT_SECRET not in r.text and streamed == "a [SECRET] b"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_secret_in_model_output_split_across_tokens_is_masked(stream: bool) -> None:
    engine = ScriptEngine(SECRET_PIECES)
    with TestClient(create_app(settings(), engine=engine)) as client:
        r = client.post("/v1/completions", json={"model": "script", "prompt": "p", "max_tokens": 10,
                                                 "stream": stream})
    assert r.status_code == 200
    assert SECRET not in r.text and SECRET[:12] not in r.text and SECRET[-12:] not in r.text
    text = "".join(c["text"] for e in _sse(r.text) for c in e["choices"]) if stream else r.json()["choices"][0]["text"]
    assert text == "key = [SECRET] # done"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_your_mask_rules_and_allow_list_guard_prompts_and_answers(stream: bool) -> None:
    from dataclasses import replace

    from codex_cli.config import MaskConfig, MaskRule

    mask = MaskConfig(typed=True, rules=[MaskRule(name="acme", regex=r"acme_[0-9a-f]{16}", family="acme")],
                      allow=[PROMPT_SECRET[-8:]])
    engine = ScriptEngine(["ok ", "acme_0123", "456789abcdef", " done"], mask=mask)
    with TestClient(create_app(replace(settings(), mask=mask), engine=engine)) as client:
        prompt = client.post("/infer", json={"prompt": f"x acme_fedcba9876543210 {PROMPT_SECRET}"})
        answer = client.post("/v1/completions", json={"model": "script", "prompt": "q", "stream": stream})
    assert prompt.json()["masked"] == 2  # one acme key in the prompt (the allow-listed token stays), one in the answer
    choices = [c["choices"][0] for c in _sse(answer.text)] if stream else answer.json()["choices"]
    text = "".join(c["text"] for c in choices)
    assert text == "ok [SECRET:acme] done" and "acme_0123" not in answer.text


def test_disable_secret_filter_turns_masking_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLE_SECRET_FILTER", "1")
    with TestClient(create_app(settings())) as client:
        r = client.post("/infer", json={"prompt": f"a {PROMPT_SECRET}"})
    assert r.json()["completion"] == f"a {PROMPT_SECRET}" and r.json()["masked"] == 0


ERRORS = [
    pytest.param(b"{not json", 400, "the request body is not valid JSON", id="malformed-json"),
    pytest.param(b"", 400, "the request body is empty; send a JSON object", id="empty-body"),
    pytest.param(b"\xff\xfe\x00", 400, "the request body is not valid JSON", id="not-utf8"),
    pytest.param(b"[1, 2]", 422, "the request body must be a JSON object", id="not-an-object"),
    pytest.param(b"{}", 422, "missing required field 'prompt'", id="missing-prompt"),
    pytest.param(b'{"prompt": 1}', 422, "'prompt' must be a string", id="prompt-not-string"),
    pytest.param(b'{"prompt": "x", "max_new_tokens": "5"}', 422, "'max_new_tokens' must be an integer",
                 id="tokens-string"),
    pytest.param(b'{"prompt": "x", "max_new_tokens": true}', 422, "'max_new_tokens' must be an integer",
                 id="tokens-bool"),
    pytest.param(b'{"prompt": "x", "max_new_tokens": 257}', 422,
                 "'max_new_tokens' must be between 1 and 256 (serve.max_new_tokens)", id="tokens-over-cap"),
    pytest.param(b'{"prompt": "x", "max_new_tokens": 0}', 422,
                 "'max_new_tokens' must be between 1 and 256 (serve.max_new_tokens)", id="tokens-zero"),
    pytest.param(b'{"prompt": "x", "temperature": NaN}', 422, "'temperature' must be a number between 0 and 2",
                 id="temperature-nan"),
    pytest.param(b'{"prompt": "x", "temperature": 1e999}', 422, "'temperature' must be a number between 0 and 2",
                 id="temperature-inf"),
    pytest.param(b'{"prompt": "x", "top_p": 0}', 422, "'top_p' must be greater than 0 and at most 1", id="top-p-0"),
    pytest.param(b'{"prompt": "x", "seed": -1}', 422, "'seed' must be between 0 and 9223372036854775807",
                 id="seed-negative"),
    pytest.param(b'{"prompt": "x", "stop": [1]}', 422,
                 "'stop' must be a string or a list of up to 4 non-empty strings of at most 64 characters",
                 id="stop-not-strings"),
    pytest.param(b'{"prompt": "\\ud800"}', 422, "'prompt' is not valid Unicode text (lone surrogate)",
                 id="lone-surrogate"),
    pytest.param(('{"prompt": "x", "' + PROMPT_SECRET + '": 1}').encode(), 422,
                 "unknown field '[SECRET]'; allowed fields: max_new_tokens, model, prompt, seed, stop, temperature, "
                 "top_p",
                 id="unknown-field-masked"),
]


@pytest.mark.parametrize(("body", "status", "message"), ERRORS)
def test_bad_infer_requests_get_json_errors(echo: TestClient, body: bytes, status: int, message: str) -> None:
    r = echo.post("/infer", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"]["message"] == message
    assert r.json()["error"]["type"] == ("invalid_json" if status == 400 else "invalid_request_error")


COMPLETION_ERRORS = [
    pytest.param({"prompt": "x"}, 422, "missing required field 'model'", id="missing-model"),
    pytest.param({"model": "gpt-4", "prompt": "x"}, 404,
                 "this server serves model 'echo' only; set 'model' to it (see GET /v1/models)", id="wrong-model"),
    pytest.param({"model": "echo", "prompt": "x", "n": 2}, 422, "'n' is not supported by this server; leave it out",
                 id="n-2"),
    pytest.param({"model": "echo", "prompt": ["a", "b"], "stream": True}, 422,
                 "'prompt' must be a single string when 'stream' is true", id="stream-many"),
    pytest.param({"model": "echo", "prompt": []}, 422, "'prompt' must be a string or a list of 1 to 16 strings",
                 id="empty-list"),
    pytest.param({"model": "echo", "prompt": "x", "stream": "yes"}, 422, "'stream' must be a boolean",
                 id="stream-string"),
    pytest.param({"model": "echo", "prompt": "x", "max_tokens": 10_000}, 422,
                 "'max_tokens' must be between 1 and 256 (serve.max_new_tokens)", id="max-tokens-over-cap"),
]


@pytest.mark.parametrize(("body", "status", "message"), COMPLETION_ERRORS)
def test_bad_completion_requests_get_json_errors(echo: TestClient, body: dict, status: int, message: str) -> None:
    r = echo.post("/v1/completions", json=body)
    assert (r.status_code, r.json()["error"]["message"]) == (status, message)


def test_unknown_route_and_method_are_json(echo: TestClient) -> None:
    assert echo.get("/v2/other").json()["error"]["type"] == "not_found"
    r = echo.get("/infer")
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"


def test_body_over_the_limit_is_413() -> None:
    with TestClient(create_app(settings(max_body_bytes=64))) as client:
        r = client.post("/infer", json={"prompt": "x" * 100})
        chunked = client.post("/infer", content=iter([b'{"prompt": "', b"y" * 100, b'"}']))
    for response in (r, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == {
            "message": "the request body is larger than 64 bytes (serve.max_body_bytes)", "type": "payload_too_large"}


def test_prompt_over_max_prompt_tokens_is_422() -> None:
    with TestClient(create_app(settings(max_prompt_tokens=3))) as client:
        r = client.post("/infer", json={"prompt": "a b c d"})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "the prompt has 4 tokens; the limit is 3 (serve.max_prompt_tokens)"


def test_api_key_is_required_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_API_KEY", "s3cret-token")
    with TestClient(create_app(settings())) as client:
        missing = client.post("/infer", json={"prompt": "x"})
        wrong = client.post("/infer", json={"prompt": "x"}, headers={"Authorization": "Bearer nope"})
        good = client.post("/infer", json={"prompt": "x"}, headers={"Authorization": "Bearer s3cret-token"})
        health = client.get("/healthz")
        metrics = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "authentication_error"
    assert "s3cret" not in missing.text + wrong.text + metrics.text
    assert good.status_code == 200 and health.status_code == 200


def test_full_queue_is_503_with_retry_after() -> None:
    engine = GatedEngine()
    with TestClient(create_app(settings(max_queue=1, max_batch_size=1), engine=engine)) as client:
        results: list[int] = []

        def post(prompt: str) -> threading.Thread:
            thread = threading.Thread(target=lambda: results.append(client.post("/infer", json={"prompt": prompt})
                                                                    .status_code))
            thread.start()
            return thread

        first = post("a")
        assert engine.entered.wait(10)  # request 1 is the whole running batch (max_batch_size=1)
        second = post("b")
        _wait_for_metric(client, "codex_queue_depth 1")
        full = client.post("/infer", json={"prompt": "c"})
        engine.allow(10)
        first.join(10)
        second.join(10)
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert full.json()["error"]["type"] == "queue_full"
    assert sorted(results) == [200, 200]


def test_slow_generation_times_out_with_504() -> None:
    engine = GatedEngine()
    with TestClient(create_app(settings(request_timeout_s=0.2), engine=engine)) as client:
        r = client.post("/infer", json={"prompt": "a"})
        engine.allow(10)
    assert r.status_code == 504
    assert r.json()["error"] == {"message": "generation did not finish within 0.2 s (serve.request_timeout_s)",
                                 "type": "timeout"}


def test_a_slow_stream_ends_with_a_timeout_event() -> None:
    engine = GatedEngine(["line one of the answer\n" * 4, "b "])
    with TestClient(create_app(settings(request_timeout_s=0.3), engine=engine)) as client:
        engine.allow(1)  # one long piece (the secret filter releases most of it), then generation stalls
        r = client.post("/v1/completions", json={"model": "gated", "prompt": "p", "max_tokens": 2, "stream": True})
        engine.allow(10)
    events = [json.loads(e[len("data: "):]) for e in r.text.split("\n\n") if e.startswith("data: ")]
    assert events[0]["choices"][0]["text"].startswith("line one of the answer\n")
    assert events[-1] == {"error": {"message": "generation did not finish within 0.3 s (serve.request_timeout_s)",
                                    "type": "timeout"}}


def test_a_short_request_joins_the_running_batch_and_leaves_before_the_long_one() -> None:
    engine = GatedEngine(["w "] * 40)
    with TestClient(create_app(settings(), engine=engine)) as client:
        answers: dict[str, dict] = {}

        def post(name: str, tokens: int) -> threading.Thread:
            body = {"prompt": name, "max_new_tokens": tokens}
            thread = threading.Thread(target=lambda: answers.update({name: client.post("/infer", json=body).json()}))
            thread.start()
            return thread

        long = post("long", 40)
        assert engine.entered.wait(10)  # the long request runs; its first step waits for a permit
        short = post("short", 2)
        _wait_for_metric(client, "codex_queue_depth 1")
        engine.allow(3)  # step 1: long alone; steps 2 and 3: short joined, and ends
        short.join(10)
        assert answers["short"]["completion"] == "w w " and "long" not in answers
        engine.allow(40)
        long.join(10)
    assert engine.steps[:3] == [1, 2, 2] and max(engine.steps[3:]) == 1
    assert answers["long"]["usage"]["completion_tokens"] == 40


def test_requests_over_the_kv_budget_wait_and_one_that_can_never_fit_is_422() -> None:
    engine = GatedEngine(["w "] * 5)
    # each request reaches 1 + 5 tokens: a budget of 12 holds two rows, never three
    with TestClient(create_app(settings(max_batch_tokens=12), engine=engine)) as client:
        threads = [threading.Thread(target=client.post, args=("/infer",),
                                    kwargs={"json": {"prompt": str(i), "max_new_tokens": 5}}) for i in range(3)]
        threads[0].start()
        assert engine.entered.wait(10)  # one row runs; its first step waits
        for t in threads[1:]:
            t.start()
        _wait_for_metric(client, "codex_queue_depth 2")
        engine.allow(1)  # between steps one more joins; the third would take the cache to 3 x 6 > 12
        _wait_for_metric(client, "codex_running_requests 2")
        assert "codex_queue_depth 1" in client.get("/metrics").text
        refused: list = []
        threads.append(threading.Thread(target=lambda: refused.append(
            client.post("/infer", json={"prompt": "x", "max_new_tokens": 20}))))
        threads[-1].start()
        _wait_for_metric(client, "codex_queue_depth 2")
        engine.allow(1)  # before the next step the scheduler refuses it, though it is not at the head
        threads[-1].join(10)
        assert refused and "codex_queue_depth 1" in client.get("/metrics").text
        engine.allow(20)
        for t in threads:
            t.join(10)
    assert max(engine.steps) == 2 and engine.steps[-1] == 1
    too_big = refused[0]
    assert too_big.status_code == 422
    assert too_big.json()["error"]["message"] == (
        "prompt plus max_new_tokens (21 tokens) can never fit the KV-cache budget of 12 tokens "
        "(serve.max_batch_tokens); shorten the prompt or lower max_new_tokens")


def test_echo_model_never_imports_torch() -> None:
    import subprocess

    code = ("import sys; from starlette.testclient import TestClient; from codex_cli.serving import create_app; "
            "from serving_stubs import settings; c = TestClient(create_app(settings())).__enter__(); "
            "assert c.post('/infer', json={'prompt': 'x'}).status_code == 200; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).parent))
    assert out.stdout.strip() == "False", out.stderr


def test_health_answers_while_the_model_works() -> None:
    engine = GatedEngine()
    with TestClient(create_app(settings(), engine=engine)) as client:
        busy = threading.Thread(target=client.post, args=("/infer",), kwargs={"json": {"prompt": "a"}})
        busy.start()
        assert engine.entered.wait(10)  # generation is running on the worker thread
        health = client.get("/healthz")
        ready = client.get("/readyz")
        answered_during_generation = not engine.stepped.is_set()
        engine.allow(10)
        busy.join(10)
    assert answered_during_generation
    assert health.status_code == 200 and ready.json() == {"status": "ready", "model": "gated"}


def test_chat_completions_answer_in_the_openai_shape(echo: TestClient) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"hi {PROMPT_SECRET} there"}]
    r = echo.post("/v1/chat/completions", json={"model": "echo", "messages": messages, "max_completion_tokens": 8})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "hi [SECRET] there"},
                                "logprobs": None, "finish_reason": "stop"}]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6} and body["masked"] == 1
    assert PROMPT_SECRET not in r.text


def test_chat_completions_stream_deltas(echo: TestClient) -> None:
    r = echo.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "a b c"}],
                                                "stream": True, "max_tokens": 2,
                                                "stream_options": {"include_usage": True}})
    events = _sse(r.text)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert "".join(c["delta"].get("content", "") for e in events for c in e["choices"]) == "a b "
    assert events[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert events[-1]["usage"]["completion_tokens"] == 2


CHAT_ERRORS = [
    pytest.param({"model": "echo"}, "missing required field 'messages'", id="missing-messages"),
    pytest.param({"model": "echo", "messages": []}, "'messages' must be a list of 1 to 256 messages", id="empty"),
    pytest.param({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]},
                 "'messages[0].role' must be one of system, developer, user, assistant, tool", id="bad-role"),
    pytest.param({"model": "echo", "messages": [{"role": "user", "content": 3}]},
                 "'messages[0].content' must be a string or a list of text parts", id="bad-content"),
    pytest.param({"model": "echo", "messages": [{"role": "user", "content": "x", PROMPT_SECRET: 1}]},
                 "unknown field '[SECRET]' in 'messages[0]'; allowed fields: content, name, role", id="unknown-key"),
    pytest.param({"model": "echo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
                  "max_completion_tokens": 2}, "give 'max_completion_tokens' or 'max_tokens', not both", id="both"),
    pytest.param({"model": "echo", "messages": [{"role": "user", "content": "x"}], "n": 3},
                 "'n' is not supported by this server; leave it out", id="n-3"),
]


@pytest.mark.parametrize(("body", "message"), CHAT_ERRORS)
def test_bad_chat_requests_get_json_errors(echo: TestClient, body: dict, message: str) -> None:
    r = echo.post("/v1/chat/completions", json=body)
    assert (r.status_code, r.json()["error"]["message"]) == (422, message)


def test_chat_content_parts_are_joined(echo: TestClient) -> None:
    parts = [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]
    r = echo.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": parts}]})
    assert r.json()["choices"][0]["message"]["content"] == "one two"
