"""Prometheus text exposition (format 0.0.4), written by hand: a few counters, gauges and histograms.

Labels are route templates, status codes and the names of served models (the base and its adapters,
named by the operator or checked not to look like a secret when added at runtime), never anything
else a client sent.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from codex_cli.masking import mask_text

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Gauges:
    """The server's current state, read when /metrics is scraped."""

    queue_depth: int = 0
    running: int = 0
    cache_tokens: int = 0
    model_loaded: bool = False


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out, total = [], 0
        for bound, count in zip([*map(_num, self.buckets), "+Inf"], self.counts):
            total += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {total}')
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {_num(self.sum)}")
        out.append(f"{name}_count{braces} {total}")
        return out


class Metrics:
    """Server metrics, updated from the event loop and the worker thread."""

    def __init__(self, gauges: Callable[[], Gauges]) -> None:
        self._lock = threading.Lock()
        self._gauges = gauges
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._running = _Histogram(BATCH_BUCKETS)
        self._queue_wait = _Histogram(LATENCY_BUCKETS)
        self._first_token = _Histogram(LATENCY_BUCKETS)
        self._tokens = 0
        self._masked = 0
        self._by_model: dict[str, list[int]] = {}  # model -> [requests, prompt tokens, completion tokens]

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        with self._lock:
            self._requests[(route, status)] = self._requests.get((route, status), 0) + 1
            self._latency.setdefault(route, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_step(self, running: int) -> None:
        """Count one scheduling step and the requests in its running batch."""
        with self._lock:
            self._running.observe(running)

    def observe_job(self, queue_wait: float, first_token: Optional[float], completion_tokens: int,
                    masked: int, *, model: str, prompt_tokens: int) -> None:
        """Count a finished generation: its wait in the queue, its time to first token, its tokens and masks."""
        with self._lock:
            self._queue_wait.observe(queue_wait)
            if first_token is not None:
                self._first_token.observe(first_token)
            self._tokens += completion_tokens
            self._masked += masked
            counts = self._by_model.setdefault(model, [0, 0, 0])
            counts[0] += 1
            counts[1] += prompt_tokens
            counts[2] += completion_tokens

    def observe_masked(self, count: int) -> None:
        """Count secrets masked in a prompt."""
        with self._lock:
            self._masked += count

    def render(self) -> str:
        """The exposition text."""
        with self._lock:
            lines = _family("codex_requests_total", "counter", "HTTP requests answered, by route and status.")
            for (route, status), count in sorted(self._requests.items()):
                lines.append(f'codex_requests_total{{route="{route}",status="{status}"}} {count}')
            lines += _family("codex_request_duration_seconds", "histogram", "Request latency in seconds, by route.")
            for route, hist in sorted(self._latency.items()):
                lines += hist.lines("codex_request_duration_seconds", f'route="{route}"')
            lines += _family("codex_running_batch_size", "histogram", "Requests in the running batch, per step.")
            lines += self._running.lines("codex_running_batch_size", "")
            lines += _family("codex_queue_wait_seconds", "histogram",
                             "Seconds from arrival to joining the running batch.")
            lines += self._queue_wait.lines("codex_queue_wait_seconds", "")
            lines += _family("codex_time_to_first_token_seconds", "histogram",
                             "Seconds from arrival to the first generated token.")
            lines += self._first_token.lines("codex_time_to_first_token_seconds", "")
            lines += _family("codex_tokens_generated_total", "counter", "Completion tokens generated.")
            lines.append(f"codex_tokens_generated_total {self._tokens}")
            lines += _family("codex_secrets_masked_total", "counter", "Secrets masked in prompts and completions.")
            lines.append(f"codex_secrets_masked_total {self._masked}")
            lines += _family("codex_model_requests_total", "counter",
                             "Generations answered, by model (the base or an adapter).")
            for model, counts in sorted(self._by_model.items()):
                lines.append(f'codex_model_requests_total{{model="{_label(model)}"}} {counts[0]}')
            lines += _family("codex_model_tokens_total", "counter", "Tokens by model and kind (prompt, completion).")
            for model, counts in sorted(self._by_model.items()):
                lines.append(f'codex_model_tokens_total{{model="{_label(model)}",kind="prompt"}} {counts[1]}')
                lines.append(f'codex_model_tokens_total{{model="{_label(model)}",kind="completion"}} {counts[2]}')
        gauges = self._gauges()
        lines += _family("codex_queue_depth", "gauge", "Requests waiting to join the running batch.")
        lines.append(f"codex_queue_depth {gauges.queue_depth}")
        lines += _family("codex_running_requests", "gauge", "Requests in the running batch.")
        lines.append(f"codex_running_requests {gauges.running}")
        lines += _family("codex_kv_cache_tokens", "gauge", "Token slots the KV cache holds now.")
        lines.append(f"codex_kv_cache_tokens {gauges.cache_tokens}")
        lines += _family("codex_model_loaded", "gauge", "1 once the model is loaded.")
        lines.append(f"codex_model_loaded {int(gauges.model_loaded)}")
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _label(value: str) -> str:
    """A label value in the exposition format (backslash, double quote and newline escaped), secrets masked."""
    value = mask_text(value)[0]
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
