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
from codex_cli.serving.generation import Job, JobResult
from codex_cli.serving.generation.output import CompletionText
from codex_cli.serving.settings import ServeSettings

# Looks like an OpenAI key to the masker; split so no single piece is a secret on its own.
SECRET = "sk-proj-" + "Q7fA9xL2mN4pR6tV8wY0zB3cD5eG1hJ"
SECRET_PIECES = ["key = ", SECRET[:5], SECRET[5:14], SECRET[14:26], SECRET[26:], " # done"]


def settings(**serve: object) -> ServeSettings:
    """Server settings with serve.* overrides (echo model unless an engine is given)."""
    base = ServeConfig(model="echo")
    return ServeSettings(serve=replace(base, **serve))


class _ScriptRow:
    def __init__(self, job: Job, pieces: list[str], mask: MaskConfig) -> None:
        self.job = job
        self.pieces = pieces[: job.request.max_new_tokens]
        self.text = CompletionText(job.request.stop, mask)
        self.parts: list[str] = []
        self.used = 0

    def advance(self) -> bool:
        if self.used < len(self.pieces) and not self.text.stopped:
            self.used += 1
            self.parts.append(self.text.feed(self.pieces[self.used - 1]))
            self.job.emit(self.parts[-1])
        if self.used < len(self.pieces) and not self.text.stopped and not self.job.cancelled:
            return False
        self.parts.append(self.text.finish())
        self.job.emit(self.parts[-1])
        self.job.finish(JobResult("".join(self.parts), 1, self.used, "length", self.text.masked))
        return True


class ScriptEngine:
    """Emits the same pieces of text for every prompt, one piece per step; records each step's batch size."""

    def __init__(self, pieces: list[str], name: str = "script", mask: MaskConfig = MaskConfig()) -> None:
        self.pieces = pieces
        self.name = name
        self.mask = mask  # what the server's CompletionText gets from its settings
        self.steps: list[int] = []  # rows in the batch at each step
        self.rows: list[_ScriptRow] = []

    def prepare(self, job: Job) -> int:
        job.state = _ScriptRow(job, self.pieces, self.mask)
        return 1 + job.request.max_new_tokens

    def can_join(self, job: Job) -> bool:
        return True

    def join(self, job: Job) -> None:
        self.rows.append(job.state)

    def step(self) -> list[Job]:
        self.steps.append(len(self.rows))
        ended = [row for row in self.rows if row.advance()]
        self.rows = [row for row in self.rows if row not in ended]
        return [row.job for row in ended]

    def abort(self) -> list[Job]:
        jobs, self.rows = [row.job for row in self.rows], []
        return jobs


class GatedEngine(ScriptEngine):
    """Runs one step per permit: ``entered`` is set once a step waits, ``allow(n)`` lets n more steps run."""

    def __init__(self, pieces: list[str] | None = None) -> None:
        super().__init__(pieces or ["ok"], name="gated")
        self.entered = threading.Event()
        self._permits = threading.Semaphore(0)
        self.stepped = threading.Event()

    def allow(self, steps: int = 1) -> None:
        for _ in range(steps):
            self._permits.release()

    def step(self) -> list[Job]:
        self.entered.set()
        assert self._permits.acquire(timeout=10), "the test did not allow this step"
        ended = super().step()
        self.stepped.set()
        return ended


class Server:
    """A server process and what it printed."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen([*args, "--port", str(self.port)], env=full_env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = ""
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.append(line.decode(errors="replace"))

    def read_output(self) -> str:
        """What the server has printed so far."""
        return "".join(self._lines)

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
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        self.proc.stdout.close()
        self.output = self.read_output()
        return self.output


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def codex_serve(*args: str) -> list[str]:
    """The ``codex serve`` command line with these arguments."""
    return [codex_exe(), "serve", *args]
