"""Hypothesis fuzz of request bodies: never a 500, always the JSON error shape, the server stays up."""

from __future__ import annotations

import json
from typing import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_stubs import Server, codex_serve
from serving_stubs import settings as serve_settings
from starlette.testclient import TestClient

from codex_cli.serving import create_app

FIELDS = ["prompt", "model", "max_new_tokens", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
          "stream_options", "n", "echo", "logprobs", "user"]
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats()
           | st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=10)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=6).map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({"prompt": st.text(max_size=40), "model": st.just("echo")},
                          optional={k: values for k in FIELDS[2:]}).map(lambda d: json.dumps(d).encode()),
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)
routes = st.sampled_from(["/infer", "/v1/completions"])
ALLOWED = {200, 400, 404, 413, 422}


def _check(status: int, text: str) -> None:
    assert status in ALLOWED, text
    if status >= 400:
        error = json.loads(text)["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(serve_settings(max_body_bytes=512))) as client:
        yield client


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=routes, body=bodies)
def test_fuzzed_bodies_in_process(client: TestClient, route: str, body: bytes) -> None:
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    _check(r.status_code, r.text)


@pytest.fixture(scope="module")
def live() -> Iterator[Server]:
    server = Server(codex_serve("--model", "echo", "serve.max_body_bytes=512")).wait_ready()
    yield server
    server.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=routes, body=bodies)
def test_fuzzed_bodies_against_a_live_server(live: Server, route: str, body: bytes) -> None:
    r = httpx.post(live.url + route, content=body, headers={"content-type": "application/json"}, timeout=30)
    _check(r.status_code, r.text)
    assert httpx.get(live.url + "/healthz").status_code == 200


def test_live_server_still_answers_after_fuzzing(live: Server) -> None:
    r = httpx.post(live.url + "/infer", json={"prompt": "still here"})
    assert r.json()["completion"] == "still here"
    assert 'status="500"' not in httpx.get(live.url + "/metrics").text


