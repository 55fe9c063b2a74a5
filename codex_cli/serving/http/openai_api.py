"""The OpenAI-compatible routes: POST /v1/completions, POST /v1/chat/completions (JSON or server-sent
events) and GET /v1/models.

``model`` picks the base or an adapter and is echoed back; ``system_fingerprint`` (and codex's own
``checkpoint``) name the checkpoint whose weights produced the answer, which changes under --follow.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, AsyncIterator, Callable, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from codex_cli.serving.errors import ApiError
from codex_cli.serving.generation import Job, JobResult, Target
from codex_cli.serving.http.schemas import parse_chat, parse_completion
from codex_cli.serving.http.state import ServerState, timed_out

OWNER = "codex"
_TIMED_OUT: Any = object()  # put in a stream's chunk queue when serve.request_timeout_s is up
Chunk = Callable[[str, Optional[str]], dict[str, Any]]  # (text, finish_reason) -> one choice


async def models(request: Request) -> Response:
    """GET /v1/models: the base model, then every adapter served on it."""
    state: ServerState = request.app.state.codex
    assert state.registry is not None
    return JSONResponse({"object": "list", "data": [model_entry(t) for t in state.registry.targets()]})


def model_entry(target: Target) -> dict[str, Any]:
    """A /v1/models entry: OpenAI's fields, plus the base an adapter runs on and the checkpoint that answers."""
    entry = {"id": target.name, "object": "model", "created": 0, "owned_by": OWNER, "checkpoint": target.checkpoint}
    return {**entry, "parent": target.parent} if target.parent else entry


async def completions(request: Request) -> Response:
    """POST /v1/completions: OpenAI's legacy completions API, streaming included."""
    state: ServerState = request.app.state.codex
    call = parse_completion(await state.read_json(request), state.settings.serve)
    prompts = [state.mask_prompt(r) for r in call.requests]
    if call.stream:
        job = state.submit(prompts[0][0], call.model, stream=True)
        head = _head(job.target, "cmpl", "text_completion")
        return _stream(_events(state, job, head, _text_choice, prompts[0][1], call.include_usage))
    jobs = state.submit_all([gen for gen, _ in prompts], call.model)
    head = _head(jobs[0].target, "cmpl", "text_completion")
    try:
        results = await asyncio.gather(*(state.result(job) for job in jobs))
    finally:
        for job in jobs:  # on any failure, stop the siblings
            job.cancelled = job.cancelled or not job.done.done()
    choices = [{**_text_choice(r.text, r.finish_reason), "index": i} for i, r in enumerate(results)]
    masked = sum(m for _, m in prompts) + sum(r.masked for r in results)
    return JSONResponse({**head, "choices": choices, "usage": _usage(results), "masked": masked})


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions: messages rendered with the model's chat template, streaming included."""
    state: ServerState = request.app.state.codex
    call = parse_chat(await state.read_json(request), state.settings.serve)
    gen, prompt_masked = state.mask_prompt(call.request)
    job = state.submit(gen, call.model, stream=call.stream)
    if call.stream:
        head = _head(job.target, "chatcmpl", "chat.completion.chunk")
        return _stream(_events(state, job, head, _delta_choice, prompt_masked, call.include_usage,
                               first={"role": "assistant", "content": ""}))
    result = await state.result(job)
    choice = {"index": 0, "message": {"role": "assistant", "content": result.text}, "logprobs": None,
              "finish_reason": result.finish_reason}
    return JSONResponse({**_head(job.target, "chatcmpl", "chat.completion"), "choices": [choice],
                         "usage": _usage([result]), "masked": prompt_masked + result.masked})


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _events(state: ServerState, job: Job, head: dict[str, Any], choice: Chunk, prompt_masked: int,
                  include_usage: bool, first: Optional[dict[str, Any]] = None) -> AsyncIterator[str]:
    timeout = state.settings.serve.request_timeout_s
    chunks = job.chunks
    assert chunks is not None
    # one timer per stream, not a wait_for (a task and a timer) per chunk
    timer = asyncio.get_running_loop().call_later(timeout, chunks.put_nowait, _TIMED_OUT)
    try:
        if first is not None:  # chat streams open with the assistant's role
            yield _sse({**head, "choices": [{"index": 0, "delta": first, "logprobs": None, "finish_reason": None}]})
        ended = False
        while not ended:
            texts = [await chunks.get()]
            while not chunks.empty():  # what piled up since the last write goes out in one write
                texts.append(chunks.get_nowait())
            late = _TIMED_OUT in texts
            texts = texts[: texts.index(_TIMED_OUT)] if late else texts
            ended = bool(texts) and texts[-1] is None
            events = "".join(_sse({**head, "choices": [choice(text, None)]}) for text in texts if text is not None)
            if events:
                yield events
            if late and not ended:
                job.cancelled = True
                yield _sse(timed_out(timeout).body())
                return
        outcome = job.done.result()
        if isinstance(outcome, ApiError):
            yield _sse(outcome.body())
            return
        yield _sse({**head, "choices": [choice("", outcome.finish_reason)], "masked": prompt_masked + outcome.masked})
        if include_usage:
            yield _sse({**head, "choices": [], "usage": _usage([outcome])})
        yield "data: [DONE]\n\n"
    finally:
        timer.cancel()
        if not job.done.done():
            job.cancelled = True  # the client went away: stop generating for it


def _head(target: Target, prefix: str, kind: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
            "model": target.name, "system_fingerprint": target.checkpoint, "checkpoint": target.checkpoint}


def _text_choice(text: str, finish_reason: Optional[str]) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}


def _delta_choice(text: str, finish_reason: Optional[str]) -> dict[str, Any]:
    return {"index": 0, "delta": {"content": text} if text else {}, "logprobs": None, "finish_reason": finish_reason}


def _usage(results: list[JobResult]) -> dict[str, int]:
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
