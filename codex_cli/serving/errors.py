"""Requests the server refuses, shared by both halves: the generation side raises them, the HTTP side sends them.

Messages name the field or the limit, never the value a client sent (it may hold a secret).
"""

from __future__ import annotations

from typing import Any, Optional


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


def prompt_too_long(tokens: int, limit: int) -> ApiError:
    """The 422 for a prompt over serve.max_prompt_tokens."""
    return ApiError(422, f"the prompt has {tokens} tokens; the limit is {limit} (serve.max_prompt_tokens)")


def never_fits(tokens: int, budget: int) -> ApiError:
    """The 422 for a request whose prompt plus max_new_tokens is over the whole KV-cache budget."""
    return ApiError(422, f"prompt plus max_new_tokens ({tokens} tokens) can never fit the KV-cache budget of "
                         f"{budget} tokens (serve.max_batch_tokens); shorten the prompt or lower max_new_tokens")


def unavailable(reason: str) -> ApiError:
    """The 503 when the model could not be loaded."""
    return ApiError(503, f"the model could not be loaded: {reason}", "model_unavailable")


def server_error() -> ApiError:
    """The 500 for a request that failed because of a bug (logged with its traceback)."""
    return ApiError(500, "generation failed; see the server log", "server_error")
