"""Stub engines and settings shared by the serving tests (no torch)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
from conftest import codex_exe

from codex_cli.config import MaskConfig, ServeConfig
from codex_cli.serving.batching import Job, JobResult
from codex_cli.serving.output import CompletionText
from codex_cli.serving.settings import ServeSettings

# Looks like an OpenAI key to the masker; split so no single piece is a secret on its own.
SECRET = "sk-proj-" + "Q7fA9xL2mN4pR6tV8wY0zB3cD5eG1hJ"
SECRET_PIECES = ["key = ", SECRET[:5], SECRET[5:14], SECRET[14:26], SECRET[26:], " # done"]


def settings(**serve: object) -> ServeSettings:
    """Server settings with serve.* overrides (echo model unless an engine is given)."""
    base = ServeConfig(model="echo")
    return ServeSettings(serve=replace(base, **serve))


class ScriptEngine:
    """Emits the same pieces of text for every prompt, one piece per token."""

    def __init__(self, pieces: list[str], name: str = "script", mask: MaskConfig = MaskConfig()) -> None:
        self.pieces = pieces
        self.name = name
        self.mask = mask  # what the server's CompletionText gets from its settings
        self.batches: list[int] = []

    def run(self, jobs: list[Job]) -> None:
        self.batches.append(len(jobs))
        for job in jobs:
            text = CompletionText(job.request.stop, self.mask)
            parts = []
            pieces = self.pieces[: job.request.max_new_tokens]
            for piece in pieces:
                parts.append(text.feed(piece))
                job.emit(parts[-1])
                if text.stopped:
                    break
            parts.append(text.finish())
            job.emit(parts[-1])
            job.finish(JobResult("".join(parts), 1, len(pieces), "length", text.masked))


class BlockingEngine(ScriptEngine):
    """Holds every batch until ``release`` is set; ``entered``/``finished`` mark a batch starting/ending."""

    def __init__(self) -> None:
        super().__init__(["ok"], name="blocking")
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def run(self, jobs: list[Job]) -> None:
        self.entered.set()
        self.release.wait(10)
        super().run(jobs)
        self.finished.set()


class Server:
    """A server process and what it printed."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen([*args, "--port", str(self.port)], env=full_env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = ""

    def wait_ready(self, path: str = "/healthz", timeout: float = 90) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stop()
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"server not ready: {self.stop()}")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=60)
        self.output = out.decode(errors="replace")
        return self.output


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def codex_serve(*args: str) -> list[str]:
    """The ``codex serve`` command line with these arguments."""
    return [codex_exe(), "serve", *args]
