"""The OpenAI-compatible routes: POST /v1/completions (JSON or server-sent events) and GET /v1/models."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, AsyncIterator, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from codex_cli.serving.batching import Job, JobResult
from codex_cli.serving.schemas import ApiError, CompletionRequest, parse_completion
from codex_cli.serving.state import ServerState, timed_out

OWNER = "codex"


async def models(request: Request) -> Response:
    """GET /v1/models: the one model this server answers with."""
    state: ServerState = request.app.state.codex
    return JSONResponse({"object": "list", "data": [
        {"id": state.model_name, "object": "model", "created": 0, "owned_by": OWNER}]})


async def completions(request: Request) -> Response:
    """POST /v1/completions: OpenAI's legacy completions API, streaming included."""
    state: ServerState = request.app.state.codex
    call = parse_completion(await state.read_json(request), state.settings.serve)
    if call.model not in (state.model_name, state.source.name if state.source else None):
        raise ApiError(404, f"this server serves model '{state.model_name}' only; set 'model' to it "
                            "(see GET /v1/models)", "model_not_found")
    prompts = [state.mask_prompt(r) for r in call.requests]
    if call.stream:
        job = state.submit(prompts[0][0], stream=True)
        return StreamingResponse(_events(state, call, job, prompts[0][1]), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    jobs: list[Job] = []
    try:
        for gen, _ in prompts:
            jobs.append(state.submit(gen))
        results = await asyncio.gather(*(state.result(job) for job in jobs))
    finally:
        for job in jobs:  # on any failure, stop the siblings
            job.cancelled = job.cancelled or not job.done.done()
    body = _completion(state.model_name, results, [masked for _, masked in prompts])
    return JSONResponse(body)


def _completion(model: str, results: list[JobResult], prompt_masked: list[int]) -> dict[str, Any]:
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return {
        **_head(model),
        "choices": [{"text": r.text, "index": i, "logprobs": None, "finish_reason": r.finish_reason}
                    for i, r in enumerate(results)],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        "masked": sum(prompt_masked) + sum(r.masked for r in results),
    }


async def _events(state: ServerState, call: CompletionRequest, job: Job, prompt_masked: int) -> AsyncIterator[str]:
    head = _head(state.model_name)
    timeout = state.settings.serve.request_timeout_s
    deadline = time.monotonic() + timeout
    assert job.chunks is not None
    try:
        while True:
            try:
                text = await asyncio.wait_for(job.chunks.get(), max(deadline - time.monotonic(), 0.0))
            except asyncio.TimeoutError:
                job.cancelled = True
                yield _sse(timed_out(timeout).body())
                return
            if text is None:
                break
            yield _sse({**head, "choices": [_choice(text, None)]})
        outcome = job.done.result()
        if isinstance(outcome, ApiError):
            yield _sse(outcome.body())
            return
        yield _sse({**head, "choices": [_choice("", outcome.finish_reason)], "masked": prompt_masked + outcome.masked})
        if call.include_usage:
            total = outcome.prompt_tokens + outcome.completion_tokens
            yield _sse({**head, "choices": [], "usage": {"prompt_tokens": outcome.prompt_tokens,
                                                         "completion_tokens": outcome.completion_tokens,
                                                         "total_tokens": total}})
        yield "data: [DONE]\n\n"
    finally:
        if not job.done.done():
            job.cancelled = True  # the client went away: stop generating for it


def _head(model: str) -> dict[str, Any]:
    return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
            "model": model}


def _choice(text: str, finish_reason: Optional[str]) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
