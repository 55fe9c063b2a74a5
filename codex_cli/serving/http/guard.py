"""The ASGI layer around the routes: lifespan, bearer auth, metrics, access log, last-resort errors.

The access log names the method, the path (masked, without its query string), the status and the
latency; never headers or bodies. Failed startup is reported as one line, not a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any, Callable, Optional

from starlette.applications import Starlette

from codex_cli.errors import CodexError
from codex_cli.masking import mask_text
from codex_cli.serving.errors import ApiError
from codex_cli.serving.http.state import ServerState

access_log = logging.getLogger("codex.serve.access")
log = logging.getLogger("codex.serve")
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
STARTUP_FAILURES: list[str] = []  # read by run_server to explain why uvicorn did not start


class Guard:
    """Wraps the router: everything every request goes through."""

    def __init__(self, app: Starlette, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._routes = frozenset(route.path for route in app.routes if "{" not in route.path)
        self._templates = [(route.path_regex, route.path) for route in app.routes if "{" in route.path]
        self._auth: Optional[bytes] = f"Bearer {state.api_key}".encode() if state.api_key else None

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        started = time.perf_counter()
        path = scope["path"]
        known = path in self._routes  # a route's own path holds no secret: only other paths need masking
        label = path if known else next((t for regex, t in self._templates if regex.match(path)), "other")
        status = 500
        response_started = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        try:
            if self._auth is not None and path not in OPEN_PATHS and not self._authorized(scope):
                await send_error(send_wrapper, ApiError(401, "missing or wrong API key; send 'Authorization: Bearer "
                                                             "<key>'", "authentication_error",
                                                        {"WWW-Authenticate": "Bearer"}))
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception:  # a bug: log it with its traceback, answer 500 if we still can
            log.exception("unhandled error on %s %s", scope["method"], _safe_path(path))
            if not response_started:
                await send_error(send_wrapper, ApiError(500, "internal server error; see the server log",
                                                        "server_error"))
        finally:
            elapsed = time.perf_counter() - started
            self.state.metrics.observe_request(label, status, elapsed)
            access_log.info('%s "%s %s" %d %.1fms', _client(scope), scope["method"],
                            path if known else _safe_path(path), status, elapsed * 1000)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._auth)
        return False

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.state.start()
                except CodexError as e:
                    STARTUP_FAILURES.append(str(e))
                    await send({"type": "lifespan.startup.failed", "message": f"codex: error: {e}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.state.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def send_error(send: Callable, error: ApiError) -> None:
    """Answer with the JSON error body (used outside the router)."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _safe_path(path: str) -> str:
    return mask_text(path[:200])[0]


def _client(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


class MaskingFilter(logging.Filter):
    """Masks secrets in uvicorn's own access log lines (when it is not turned off)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_text(a)[0] if isinstance(a, str) else a for a in record.args)
        return True
