"""Request validation for /infer, /v1/completions and /v1/chat/completions: JSON in, a GenRequest or an ApiError out.

Error messages name the field and the rule, never the value a client sent (it may hold a secret).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Optional

from codex_cli.data.chat import ROLES
from codex_cli.masking import mask_text
from codex_cli.serving.errors import ApiError
from codex_cli.serving.generation import GenRequest

if TYPE_CHECKING:
    from codex_cli.config import ServeConfig

MAX_SEED = 2**63 - 1
MAX_STOP = 4
MAX_STOP_CHARS = 64
MAX_PROMPTS = 16
INFER_FIELDS = frozenset({"model", "prompt", "max_new_tokens", "temperature", "top_p", "seed", "stop"})
ADAPTER_FIELDS = frozenset({"name", "path"})
# OpenAI completion fields we accept; the ones we cannot honour must keep their neutral value.
COMPLETION_FIELDS = frozenset({"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
                               "stream_options", "user", "n", "best_of", "echo", "logprobs", "suffix",
                               "presence_penalty", "frequency_penalty", "logit_bias"})
_NEUTRAL = {"n": (1,), "best_of": (1,), "echo": (False,), "logprobs": (None,), "suffix": (None, ""),
            "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0), "logit_bias": (None, {})}
CHAT_FIELDS = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
                         "stop", "stream", "stream_options", "user", "n", "logprobs", "top_logprobs",
                         "presence_penalty", "frequency_penalty", "logit_bias"})
_CHAT_NEUTRAL = {"n": (1,), "logprobs": (None, False), "top_logprobs": (None, 0), "presence_penalty": (0, 0.0),
                 "frequency_penalty": (0, 0.0), "logit_bias": (None, {})}
MESSAGE_FIELDS = frozenset({"role", "content", "name"})
MAX_MESSAGES = 256


@dataclass(frozen=True)
class CompletionRequest:
    """A /v1/completions call: one GenRequest per prompt, plus how to answer."""

    model: str
    requests: tuple[GenRequest, ...]
    stream: bool = False
    include_usage: bool = False


@dataclass(frozen=True)
class ChatRequest:
    """A /v1/chat/completions call: one GenRequest carrying the messages, plus how to answer."""

    model: str
    request: GenRequest
    stream: bool = False
    include_usage: bool = False


def parse_infer(body: Any, limits: ServeConfig) -> tuple[Optional[str], GenRequest]:
    """Validate a /infer body: the model it names (None: the base) and the request, its prompt unmasked."""
    obj = _object(body, INFER_FIELDS)
    model = _optional(obj, "model", str, "a string")
    return model, _gen_request(obj, _required_str(obj, "prompt"), "max_new_tokens", limits)


def parse_adapter(body: Any) -> tuple[str, str]:
    """Validate a POST /v1/adapters body: the adapter's name and its directory on the server."""
    obj = _object(body, ADAPTER_FIELDS)
    return _required_str(obj, "name"), _required_str(obj, "path")


def parse_completion(body: Any, limits: ServeConfig) -> CompletionRequest:
    """Validate an OpenAI /v1/completions body."""
    obj = _object(body, COMPLETION_FIELDS)
    model = _required_str(obj, "model")
    _neutral(obj, _NEUTRAL)
    prompts = _prompts(obj)
    stream, include_usage = _streaming(obj)
    if stream and len(prompts) != 1:
        raise ApiError(422, "'prompt' must be a single string when 'stream' is true")
    requests = tuple(_gen_request(obj, p, "max_tokens", limits) for p in prompts)
    return CompletionRequest(model=model, requests=requests, stream=stream, include_usage=include_usage)


def parse_chat(body: Any, limits: ServeConfig) -> ChatRequest:
    """Validate an OpenAI /v1/chat/completions body; message contents are returned unmasked."""
    obj = _object(body, CHAT_FIELDS)
    model = _required_str(obj, "model")
    _neutral(obj, _CHAT_NEUTRAL)
    messages = _messages(obj.get("messages"))
    stream, include_usage = _streaming(obj)
    if "max_tokens" in obj and "max_completion_tokens" in obj:
        raise ApiError(422, "give 'max_completion_tokens' or 'max_tokens', not both")
    tokens_field = "max_tokens" if "max_tokens" in obj else "max_completion_tokens"
    request = replace(_gen_request(obj, "", tokens_field, limits), messages=messages)
    return ChatRequest(model=model, request=request, stream=stream, include_usage=include_usage)


def _neutral(obj: dict[str, Any], neutral: dict[str, tuple[Any, ...]]) -> None:
    for name, allowed in neutral.items():
        if name in obj and obj[name] not in allowed:
            raise ApiError(422, f"'{name}' is not supported by this server; leave it out")


def _streaming(obj: dict[str, Any]) -> tuple[bool, bool]:
    stream = _optional(obj, "stream", bool, "a boolean") or False
    options = _optional(obj, "stream_options", dict, "an object") or {}
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise ApiError(422, "'stream_options.include_usage' must be a boolean")
    _optional(obj, "user", str, "a string")
    return stream, include_usage


def _messages(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        raise ApiError(422, "missing required field 'messages'")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MESSAGES:
        raise ApiError(422, f"'messages' must be a list of 1 to {MAX_MESSAGES} messages")
    messages = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApiError(422, f"'messages[{i}]' must be an object with 'role' and 'content'")
        unknown = sorted(k for k in item if k not in MESSAGE_FIELDS)
        if unknown:
            name, _ = mask_text(str(unknown[0])[:40])
            raise ApiError(422, f"unknown field '{name}' in 'messages[{i}]'; allowed fields: "
                                f"{', '.join(sorted(MESSAGE_FIELDS))}")
        if item.get("role") not in ROLES:
            raise ApiError(422, f"'messages[{i}].role' must be one of {', '.join(ROLES)}")
        _optional(item, "name", str, "a string")
        messages.append((item["role"], _content(item.get("content"), i)))
    return tuple(messages)


def _content(content: Any, i: int) -> str:
    if isinstance(content, str):
        return _text(content, f"messages[{i}].content")
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return _text("".join(p["text"] for p in content), f"messages[{i}].content")
    raise ApiError(422, f"'messages[{i}].content' must be a string or a list of text parts")


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
