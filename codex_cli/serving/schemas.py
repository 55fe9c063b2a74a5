"""Request validation for /infer and /v1/completions: JSON in, a GenRequest or an ApiError out.

Error messages name the field and the rule, never the value a client sent (it may hold a secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from codex_cli.masking import mask_text

if TYPE_CHECKING:
    from codex_cli.config import ServeConfig

MAX_SEED = 2**63 - 1
MAX_STOP = 4
MAX_STOP_CHARS = 64
MAX_PROMPTS = 16
INFER_FIELDS = frozenset({"prompt", "max_new_tokens", "temperature", "top_p", "seed", "stop"})
# OpenAI completion fields we accept; the ones we cannot honour must keep their neutral value.
COMPLETION_FIELDS = frozenset({"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
                               "stream_options", "user", "n", "best_of", "echo", "logprobs", "suffix",
                               "presence_penalty", "frequency_penalty", "logit_bias"})
_NEUTRAL = {"n": (1,), "best_of": (1,), "echo": (False,), "logprobs": (None,), "suffix": (None, ""),
            "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0), "logit_bias": (None, {})}


class ApiError(Exception):
    """A request the server refuses: HTTP status, OpenAI-style error type, one-line message."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body: {"error": {"message", "type"}}."""
        return {"error": {"message": self.message, "type": self.type}}


@dataclass(frozen=True)
class GenRequest:
    """One generation: a prompt (already masked) and its own sampling settings."""

    prompt: str
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: Optional[int] = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompletionRequest:
    """A /v1/completions call: one GenRequest per prompt, plus how to answer."""

    model: str
    requests: tuple[GenRequest, ...]
    stream: bool = False
    include_usage: bool = False


def parse_infer(body: Any, limits: ServeConfig) -> GenRequest:
    """Validate a /infer body; the prompt is returned unmasked (the caller masks it)."""
    obj = _object(body, INFER_FIELDS)
    return _gen_request(obj, _required_str(obj, "prompt"), "max_new_tokens", limits)


def parse_completion(body: Any, limits: ServeConfig) -> CompletionRequest:
    """Validate an OpenAI /v1/completions body."""
    obj = _object(body, COMPLETION_FIELDS)
    model = _required_str(obj, "model")
    for name, allowed in _NEUTRAL.items():
        if name in obj and obj[name] not in allowed:
            raise ApiError(422, f"'{name}' is not supported by this server; leave it out")
    prompts = _prompts(obj)
    stream = _optional(obj, "stream", bool, "a boolean") or False
    options = _optional(obj, "stream_options", dict, "an object") or {}
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise ApiError(422, "'stream_options.include_usage' must be a boolean")
    if stream and len(prompts) != 1:
        raise ApiError(422, "'prompt' must be a single string when 'stream' is true")
    _optional(obj, "user", str, "a string")
    requests = tuple(_gen_request(obj, p, "max_tokens", limits) for p in prompts)
    return CompletionRequest(model=model, requests=requests, stream=stream, include_usage=include_usage)


def prompt_too_long(tokens: int, limit: int) -> ApiError:
    """The 422 for a prompt over serve.max_prompt_tokens."""
    return ApiError(422, f"the prompt has {tokens} tokens; the limit is {limit} (serve.max_prompt_tokens)")


def _object(body: Any, fields: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "the request body must be a JSON object")
    unknown = sorted(k for k in body if k not in fields)
    if unknown:
        name, _ = mask_text(unknown[0][:40])
        raise ApiError(422, f"unknown field '{name}'; allowed fields: {', '.join(sorted(fields))}")
    return body


def _gen_request(obj: dict[str, Any], prompt: str, tokens_field: str, limits: ServeConfig) -> GenRequest:
    max_new = _optional(obj, tokens_field, int, "an integer")
    if max_new is None:
        max_new = limits.default_max_new_tokens
    if max_new < 1 or max_new > limits.max_new_tokens:
        raise ApiError(422, f"'{tokens_field}' must be between 1 and {limits.max_new_tokens} (serve.max_new_tokens)")
    temperature = _number(obj, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(obj, "top_p", 1.0, 0.0, 1.0)
    if top_p <= 0.0:
        raise ApiError(422, "'top_p' must be greater than 0 and at most 1")
    seed = _optional(obj, "seed", int, "an integer")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ApiError(422, f"'seed' must be between 0 and {MAX_SEED}")
    return GenRequest(prompt=prompt, max_new_tokens=max_new, temperature=temperature, top_p=top_p, seed=seed,
                      stop=_stop(obj))


def _prompts(obj: dict[str, Any]) -> list[str]:
    prompt = obj.get("prompt")
    if isinstance(prompt, str):
        return [_text(prompt, "prompt")]
    if isinstance(prompt, list) and 1 <= len(prompt) <= MAX_PROMPTS and all(isinstance(p, str) for p in prompt):
        return [_text(p, "prompt") for p in prompt]
    if prompt is None:
        raise ApiError(422, "missing required field 'prompt'")
    raise ApiError(422, f"'prompt' must be a string or a list of 1 to {MAX_PROMPTS} strings")


def _stop(obj: dict[str, Any]) -> tuple[str, ...]:
    stop = obj.get("stop")
    if stop is None:
        return ()
    items = [stop] if isinstance(stop, str) else stop
    if (not isinstance(items, list) or len(items) > MAX_STOP
            or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in items)):
        raise ApiError(422, f"'stop' must be a string or a list of up to {MAX_STOP} non-empty strings "
                            f"of at most {MAX_STOP_CHARS} characters")
    return tuple(_text(s, "stop") for s in items)


def _required_str(obj: dict[str, Any], name: str) -> str:
    if name not in obj:
        raise ApiError(422, f"missing required field '{name}'")
    value = obj[name]
    if not isinstance(value, str):
        raise ApiError(422, f"'{name}' must be a string")
    return _text(value, name)


def _text(value: str, name: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ApiError(422, f"'{name}' is not valid Unicode text (lone surrogate)") from e
    return value


def _optional(obj: dict[str, Any], name: str, kind: type, description: str) -> Any:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(422, f"'{name}' must be {description}")
    return value


def _number(obj: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = obj.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ApiError(422, f"'{name}' must be a number between {low:g} and {high:g}")
    return float(value)
