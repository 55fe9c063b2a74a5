"""Serving under load: `codex serve` against its previous static batcher and `transformers serve`, in one run.

Phase `load` (issue 13): 16 keep-alive clients stream POST /v1/completions (greedy) from three servers on
the built-in codex-tiny, one at a time, interleaved and repeated: `codex serve` (continuous batching), the
same command at --static-rev (the static batcher it replaced), and `transformers serve --continuous-batching`
(launched as the issue says, in its own venv with fastapi, created once under --peer-venv). Workloads: `solo`
(1 client, 32 tokens), `mixed` (a seeded 75% 8-token / 25% 128-token list), `short-only` (the mix's 8-token
requests alone) and `uniform` (32 tokens each). Reported: short-request slowdown (p50 of the 8-token requests
under the mix / short-only), tokens/s on the mix and the uniform load, time to first text p50 under load vs
solo, the server's peak RSS, each with the machine's load average. Targets: slowdown <= 1.0x, mix tokens/s >=
1.1x the peer's, uniform tokens/s >= the static batcher's, TTFT under load <= 2x solo.
Phase `mechanism`: the same mix in process, codex's scheduler + engine vs transformers' ContinuousBatchingManager.
Phase `adapters` (issue 14): 8 random LoRA adapters of codex-tiny (r 8, every linear layer); 16 streaming clients
(32 tokens each, request i names adapter i mod 8) against `codex serve --adapter ...` with all 8, the same load on a
server with 1 adapter, and on the bare base, interleaved and repeated. Target: tokens/s with 8 >= 0.8x with 1. Then,
in process, one 16-row decode step with codex's stacked LoRA vs peft's `adapter_names` mixed batch (8 and 1 adapter).
Phase `switch` (issue 14): `codex serve --follow` on a LoRA run (`codex train --lora train.max_steps=2`) under 16
streaming clients, once still and once while --switches new checkpoints appear (complete directories renamed in
place, then latest.json, as training writes them; copies of the first checkpoint, since verifying, loading and
switching cost the same whatever the weights). Reported: failed requests (target 0), p99 latency of the requests in
flight during a switch (latest.json written -> first request answered by the new checkpoint) vs the still run.
All traffic stays on 127.0.0.1; torch threads are --threads (OMP_NUM_THREADS for the peer).

    python benchmarks/serve_load.py [--phases load,mechanism,adapters,switch,classic] [--rounds 3] [--requests 96]
                                    [--clients 16] [--threads 1] [--static-rev REV] [--peer-venv DIR] [--switches 4]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from revisions import checkout

PROMPTS = [
    "def add(a, b):", "class Point:\n    def __init__(self, x, y):", "import os\n\ndef list_files(path):",
    "for i in range(10):", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"",
    "with open(path) as handle:", "def is_prime(n):", "# sort a list of dicts by key\n",
    "async def fetch(url):", "def parse_args():\n    parser = argparse.ArgumentParser(",
    "x = [i * i for i in", "try:\n    import json\nexcept ImportError:", "def mean(values):",
    "class Stack:\n    def push(self, item):", "if __name__ == \"__main__\":", "def read_csv(path):",
]


@dataclass
class Row:
    scenario: str
    model: str
    batching: str
    clients: int
    requests: int
    errors: int = 0
    seconds: float = 0.0
    tokens: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class HttpClient:
    """A minimal HTTP/1.1 keep-alive client (asyncio streams): cheap enough not to be the bottleneck."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps(payload).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.partition(": ")[::2] for line in lines[1:] if line)
        length = int(headers.get("content-length", headers.get("Content-Length", "0")))
        return status, json.loads(await self.reader.readexactly(length))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, batch: int, threads: int, max_new: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    codex = str(Path(sys.executable).with_name("codex"))
    args = [codex, "serve", "--port", str(port), "--model", model, "--preload", f"threads={threads}",
            f"serve.max_batch_size={batch}", "serve.max_queue=1024", f"serve.max_new_tokens={max(max_new, 256)}"]
    log = tempfile.TemporaryFile()  # a pipe nobody reads would block the server once full
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server failed: {log.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


async def drive(port: int, clients: int, total: int, max_new: int, time_limit: float) -> Row:
    row = Row("", "", "", clients, 0)
    counter = iter(range(total))
    deadline = time.monotonic() + time_limit

    async def client_loop(client: HttpClient) -> None:
        for i in counter:
            if time.monotonic() > deadline:
                return
            payload = {"prompt": PROMPTS[i % len(PROMPTS)], "max_new_tokens": max_new, "temperature": 0.0}
            started = time.perf_counter()
            try:
                status, body = await client.post("/infer", payload)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, body = 0, {}
                await client.close()
                client.writer = None
            row.latencies.append(time.perf_counter() - started)
            row.requests += 1
            if status != 200:
                row.errors += 1
            else:
                row.tokens += body["usage"]["completion_tokens"]

    pool = [HttpClient(port) for _ in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in pool))
    row.seconds = time.perf_counter() - started
    for c in pool:
        await c.close()
    return row


def served(model: str, batch: int, clients: int, total: int, args: argparse.Namespace) -> Row:
    proc, port = start_server(model, batch, args.threads, args.max_new_tokens)
    try:
        asyncio.run(drive(port, 1, 8, args.max_new_tokens, args.time_limit))  # warm-up
        row = asyncio.run(drive(port, clients, total, args.max_new_tokens, args.time_limit))
    finally:
        stop_server(proc)
    row.scenario, row.model, row.batching = "codex serve", model, "on" if batch > 1 else "off"
    return row


def in_process(args: argparse.Namespace) -> tuple[Row, Row, object]:
    """transformers generate over a batch of 16 and one at a time; also returns codex's engine on that model."""
    import torch

    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.config import MaskConfig, ModelConfig
    from codex_cli.runtime import configure_threads
    from codex_cli.serving.generation.engine import TorchEngine

    configure_threads(args.threads)
    loaded = load_for_inference("codex-tiny", ModelConfig())
    model, tok = loaded.model, loaded.tokenizer
    tok.padding_side = "left"
    n = args.max_new_tokens
    batch16 = Row("in-process generate", "codex-tiny", "batch of 16", 1, 0)
    single = Row("in-process generate", "codex-tiny", "one at a time", 1, 0)
    rounds = max(1, args.tiny_requests // 16)
    with torch.inference_mode():
        model.generate(**tok(PROMPTS[:2], return_tensors="pt", padding=True), max_new_tokens=4, do_sample=False)
        for _ in range(rounds):
            started = time.perf_counter()
            out = model.generate(**tok(PROMPTS, return_tensors="pt", padding=True), max_new_tokens=n, do_sample=False)
            batch16.seconds += time.perf_counter() - started
            batch16.requests += len(PROMPTS)
            batch16.tokens += int((out[:, -n:] != tok.pad_token_id).sum())
        for i in range(min(args.tiny_requests, 32)):
            ids = tok(PROMPTS[i % 16], return_tensors="pt")
            started = time.perf_counter()
            out = model.generate(**ids, max_new_tokens=n, do_sample=False)
            single.latencies.append(time.perf_counter() - started)
            single.seconds += single.latencies[-1]
            single.requests += 1
            single.tokens += out.shape[1] - ids["input_ids"].shape[1]
    return batch16, single, TorchEngine(model, tok, "codex-tiny", max_prompt_tokens=1024, mask=MaskConfig())


def run_alone(engine: object, job: object) -> None:
    """One request through an engine, step by step, as the scheduler would run it alone."""
    job.footprint = engine.prepare(job)  # type: ignore[attr-defined]
    engine.join(job)  # type: ignore[attr-defined]
    while job.outcome is None:  # type: ignore[attr-defined]
        engine.step()  # type: ignore[attr-defined]


def paired(model: str, engine: object, count: int, args: argparse.Namespace) -> tuple[Row, Row]:
    """One client, alternating: the same request in-process (engine.run) and over HTTP, so both see the same load."""
    from codex_cli.serving.generation import GenRequest, Job

    direct = Row(f"in-process {model} engine", model, "one at a time", 1, 0)
    http = Row("codex serve", model, "on, 1 client", 1, 0)
    proc, port = start_server(model, 16, args.threads, args.max_new_tokens)

    async def run() -> None:
        client = HttpClient(port)
        loop = asyncio.get_running_loop()
        for i in range(count + 4):
            prompt = PROMPTS[i % len(PROMPTS)]
            job = Job(GenRequest(prompt, args.max_new_tokens, temperature=0.0), loop)
            started = time.perf_counter()
            run_alone(engine, job)
            await job.done
            in_process_s = time.perf_counter() - started
            started = time.perf_counter()
            status, body = await client.post("/infer", {"prompt": prompt, "max_new_tokens": args.max_new_tokens,
                                                        "temperature": 0.0})
            http_s = time.perf_counter() - started
            if i < 4:
                continue  # warm-up
            for row, seconds in ((direct, in_process_s), (http, http_s)):
                row.latencies.append(seconds)
                row.seconds += seconds
                row.requests += 1
                row.tokens += body["usage"]["completion_tokens"] if status == 200 else 0
            http.errors += status != 200
        await client.close()

    try:
        asyncio.run(run())
    finally:
        stop_server(proc)
    return direct, http


def print_table(rows: list[Row]) -> None:
    header = f"{'scenario':<28} {'model':<10} {'batching':<13} {'clients':>7} {'requests':>8} {'errors':>6} " \
             f"{'req/s':>9} {'tok/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        tok_s = r.tokens / r.seconds if r.seconds and r.tokens else float("nan")
        print(f"{r.scenario:<28} {r.model:<10} {r.batching:<13} {r.clients:>7} {r.requests:>8} {r.errors:>6} "
              f"{r.rps:>9.1f} {tok_s:>9.0f} {r.pct(0.5):>8.2f} {r.pct(0.99):>8.2f}")


def classic(args: argparse.Namespace) -> None:
    """Issue 6's phases: /infer with batching on/off, echo, in-process generate and server overhead."""
    from codex_cli.config import MaskConfig
    from codex_cli.serving.generation import EchoEngine

    batch16, single, tiny_engine = in_process(args)
    direct, tiny_seq = paired("codex-tiny", tiny_engine, min(args.tiny_requests, 48), args)
    echo_direct, echo_seq = paired("echo", EchoEngine(1024, MaskConfig()), 2000, args)
    tiny_on = served("codex-tiny", 16, args.clients, args.tiny_requests, args)
    tiny_off = served("codex-tiny", 1, args.clients, args.tiny_requests, args)
    echo_on = served("echo", 16, args.clients, args.echo_requests, args)
    echo_off = served("echo", 1, args.clients, max(args.echo_requests // 5, 1), args)
    rows = [batch16, single, direct, tiny_on, tiny_off, tiny_seq, echo_direct, echo_on, echo_off, echo_seq]
    import torch

    print(f"\ncodex serve load test: {args.clients} clients, max_new_tokens={args.max_new_tokens}, greedy, "
          f"torch threads={args.threads} (server and in-process), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs visible\n")
    print_table(rows)
    print()
    checks = [
        ("batching on / off (codex-tiny, 16 clients)", tiny_on.rps / tiny_off.rps, ">= 5.0x",
         tiny_on.rps / tiny_off.rps >= 5),
        ("served batching / in-process generate batch of 16", tiny_on.rps / batch16.rps, ">= 0.7x",
         tiny_on.rps / batch16.rps >= 0.7),
        ("in-process generate: batch of 16 / one at a time", batch16.rps / single.rps, "(reference)", True),
        (f"errors over the {echo_on.requests}-request echo run", float(echo_on.errors), "== 0",
         echo_on.errors == 0 and tiny_on.errors == 0),
        ("server overhead p50, echo (ms)", echo_seq.pct(0.5) - echo_direct.pct(0.5), "<= 2 ms",
         echo_seq.pct(0.5) - echo_direct.pct(0.5) <= 2),
        ("server overhead p50, codex-tiny (ms)", tiny_seq.pct(0.5) - direct.pct(0.5), "<= 2 ms",
         tiny_seq.pct(0.5) - direct.pct(0.5) <= 2),
    ]
    for name, value, target, ok in checks:
        print(f"{name:<52} {value:>8.2f}  target {target:<12} {'PASS' if ok else 'MISS'}")


# ---------------------------------------------------------------------------------------------------------------
# Issue 13: continuous batching. Streaming /v1/completions clients against codex serve, codex's previous static
# batcher and `transformers serve --continuous-batching`, on the same model, interleaved and repeated.
# ---------------------------------------------------------------------------------------------------------------

STATIC_REV = "62b88cf"  # the last commit with the static batcher (issue 13 replaced it)
PEER_PACKAGES = ["fastapi", "uvicorn", "openai", "pydantic", "accelerate"]  # transformers[serving], less its torch pin


@dataclass
class Stream:
    """One streamed request: its size, status, latency, time to first text and tokens."""

    size: int
    status: int = 0
    seconds: float = 0.0
    first_text: float = float("nan")
    tokens: int = 0
    started: float = 0.0  # perf_counter() when it was sent
    checkpoint: str = ""  # the checkpoint that answered (codex serve only)


@dataclass
class Run:
    """One workload on one server."""

    server: str
    workload: str
    streams: list[Stream] = field(default_factory=list)
    seconds: float = 0.0
    load: str = ""

    @property
    def errors(self) -> int:
        return sum(s.status != 200 for s in self.streams)

    @property
    def tokens_per_s(self) -> float:
        return sum(s.tokens for s in self.streams) / self.seconds if self.seconds else float("nan")

    def p50(self, attr: str = "seconds", size: int | None = None) -> float:
        values = sorted(getattr(s, attr) for s in self.streams if size is None or s.size == size)
        return values[len(values) // 2] * 1000 if values else float("nan")


class SseClient:
    """A keep-alive HTTP/1.1 client for server-sent events (chunked transfer), cheap enough not to be the bottleneck."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def stream(self, payload: dict, size: int) -> Stream:
        result = Stream(size)
        started = result.started = time.perf_counter()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps(payload).encode()
        self.writer.write(f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode().lower()
        result.status = int(head.split()[1])
        if "transfer-encoding: chunked" not in head:
            length = int(head.split("content-length: ")[1].split("\r\n")[0])
            await self.reader.readexactly(length)
            return result
        buffer = ""
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            chunk = await self.reader.readexactly(int(size_line.strip(), 16) + 2)
            if len(chunk) == 2:
                break
            buffer += chunk[:-2].decode()
            *events, buffer = buffer.split("\n\n")
            for event in events:
                self._event(event, result, started)
        result.seconds = time.perf_counter() - started
        return result

    @staticmethod
    def _event(event: str, result: Stream, started: float) -> None:
        data = event.partition("data: ")[2]
        if not data or data == "[DONE]":
            return
        obj = json.loads(data)
        result.checkpoint = obj.get("checkpoint") or result.checkpoint
        text = "".join(c.get("text") or "" for c in obj.get("choices") or [])
        if text and result.first_text != result.first_text:  # still NaN: this is the first text
            result.first_text = time.perf_counter() - started
        if obj.get("usage"):
            result.tokens = obj["usage"]["completion_tokens"]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def workload(kind: str, count: int, seed: int) -> list[int]:
    """Request sizes: 'mixed' is a seeded 75% 8-token / 25% 128-token mix, 'uniform' all 32 tokens."""
    if kind == "uniform":
        return [32] * count
    rng = random.Random(seed)
    return [8 if rng.random() < 0.75 else 128 for _ in range(count)]


async def drive_streams(port: int, model: str | list[str], sizes: list[int], clients: int,
                        extra: dict) -> tuple[list[Stream], float]:
    """``clients`` keep-alive clients take the requests in order (request i names ``model[i % len]`` when a list);
    returns every stream and the wall time."""
    queue = list(enumerate(sizes))
    results: list[Stream] = []
    models = [model] if isinstance(model, str) else model

    async def client_loop(client: SseClient) -> None:
        while queue:
            i, size = queue.pop(0)
            payload = {"model": models[i % len(models)], "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": size,
                       "temperature": 0.0, "stream": True, **extra}
            results.append(await client.stream(payload, size))

    pool = [SseClient(port) for _ in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in pool))
    seconds = time.perf_counter() - started
    for c in pool:
        await c.close()
    return results, seconds


def peer_python(venv: Path) -> str:
    """The peer's own venv (created once): the same torch and transformers as here, plus what `serve` needs."""
    import transformers

    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the transformers-serve venv in {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.*"], check=True)
        subprocess.run([*pip, f"transformers=={transformers.__version__}", *PEER_PACKAGES], check=True)
    return str(python)


@dataclass
class Launch:
    """How to start one server, and the model name its requests carry."""

    name: str
    args: list[str]
    model: str
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # request fields only this server takes
    cwd: str | None = None  # `python -m` puts the working directory first on sys.path
    marker: str | None = None  # a /metrics line proving which code runs


def launches(args: argparse.Namespace) -> list[Launch]:
    from codex_cli.model import BUILTIN_DIR

    threads = f"threads={args.threads}"
    common = ["--model", "codex-tiny", "--preload", threads, "serve.max_batch_size=16", "serve.max_queue=1024",
              "serve.max_new_tokens=256"]
    usage = {"stream_options": {"include_usage": True}}
    out = [Launch("codex serve", [sys.executable, "-m", "codex_cli", "serve", *common], "codex-tiny", "/readyz",
                  extra=usage, marker="# TYPE codex_running_batch_size histogram")]
    if args.static_rev:
        old = checkout(args.static_rev)  # the static batcher
        out.append(Launch("codex serve, static (before)", [sys.executable, "-m", "codex_cli", "serve", *common],
                          "codex-tiny", "/readyz", env={"PYTHONPATH": str(old)}, extra=usage, cwd=str(old),
                          marker="# TYPE codex_batch_size histogram"))
    if args.peer_venv:
        peer = [peer_python(Path(args.peer_venv).expanduser()), "-m", "transformers.cli.transformers", "serve",
                str(BUILTIN_DIR), "--device", "cpu", "--continuous-batching", "--cb-num-blocks", "64",
                "--cb-max-batch-tokens", "512"]
        out.append(Launch("transformers serve --cb", peer, str(BUILTIN_DIR), "/health",
                          env={"OMP_NUM_THREADS": str(args.threads), "HF_HUB_DISABLE_UPDATE_CHECK": "1",
                               "HF_HUB_OFFLINE": "1"}))
    return out


def start(launch: Launch) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = tempfile.TemporaryFile()  # a pipe nobody reads would block the server once full
    env = {**os.environ, "OMP_NUM_THREADS": "1", **launch.env}
    argv = [*launch.args, "--port", str(port)] + (["--host", "127.0.0.1"] if "transformers" in launch.name else [])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=launch.cwd)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"{launch.name} failed: {log.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(f"GET {launch.ready_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if b" 200 " in sock.recv(200):
                    return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{launch.name} did not become ready in 180 s")


def peak_rss_mb(proc: subprocess.Popen) -> float:
    """The server process's peak resident memory (VmHWM), read before it stops."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__().replace("'", "")


def serve_round(launch: Launch, args: argparse.Namespace) -> tuple[list[Run], float]:
    """Every workload against one fresh server: solo, mixed, short-only, uniform."""
    proc, port = start(launch)
    runs = []
    try:
        if launch.marker:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
            if launch.marker not in text:
                raise SystemExit(f"{launch.name} does not run the expected code (no '{launch.marker}' in /metrics)")
        asyncio.run(drive_streams(port, launch.model, [8, 32], 1, launch.extra))  # warm-up (the peer's first is slow)
        mixed = workload("mixed", args.requests, args.seed)
        plan = [("solo", [32] * 8, 1), ("mixed", mixed, args.clients),
                ("short-only", [s for s in mixed if s == 8], args.clients),
                ("uniform", workload("uniform", args.requests, args.seed), args.clients)]
        for name, sizes, clients in plan:
            streams, seconds = asyncio.run(drive_streams(port, launch.model, sizes, clients, launch.extra))
            runs.append(Run(launch.name, name, streams, seconds, loadavg()))
        rss = peak_rss_mb(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return runs, rss


def load_phase(args: argparse.Namespace) -> None:
    """Interleave the servers, repeat, then report medians and the issue 13 targets."""
    servers = launches(args)
    results: dict[str, list[dict[str, float]]] = {s.name: [] for s in servers}
    print(f"{'round':<6}{'server':<30}{'workload':<11}{'reqs':>5}{'err':>4}{'tok/s':>8}{'p50 ms':>9}{'short p50':>10}"
          f"{'TTFT p50':>9}  loadavg")
    for round_ in range(args.rounds):
        order = servers[round_ % len(servers):] + servers[:round_ % len(servers)]  # rotate who goes first
        for launch in order:
            runs, rss = serve_round(launch, args)
            for run in runs:
                print(f"{round_:<6}{launch.name:<30}{run.workload:<11}{len(run.streams):>5}{run.errors:>4}"
                      f"{run.tokens_per_s:>8.0f}{run.p50():>9.0f}{run.p50(size=8):>10.0f}"
                      f"{run.p50('first_text'):>9.0f}  {run.load}", flush=True)
            by = {run.workload: run for run in runs}
            results[launch.name].append({
                "slowdown": by["mixed"].p50(size=8) / by["short-only"].p50(size=8),
                "mix_tok_s": by["mixed"].tokens_per_s, "uniform_tok_s": by["uniform"].tokens_per_s,
                "ttft_load": by["uniform"].p50("first_text"), "ttft_solo": by["solo"].p50("first_text"),
                "rss_mb": rss, "errors": sum(run.errors for run in runs)})
    print(f"\nmedians over {args.rounds} round(s), {args.clients} streaming clients, greedy, codex-tiny, "
          f"torch threads={args.threads} (every server), loadavg now {loadavg()}\n")
    print(f"{'server':<30}{'slowdown':>9}{'mix tok/s':>10}{'uniform tok/s':>14}{'TTFT load':>10}{'TTFT solo':>10}"
          f"{'load/solo':>10}{'peak RSS MB':>12}{'errors':>7}")
    med = {name: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} for name, rounds in results.items()}
    for name, m in med.items():
        print(f"{name:<30}{m['slowdown']:>8.2f}x{m['mix_tok_s']:>10.0f}{m['uniform_tok_s']:>14.0f}{m['ttft_load']:>10.0f}"
              f"{m['ttft_solo']:>10.0f}{m['ttft_load'] / m['ttft_solo']:>9.2f}x{m['rss_mb']:>12.0f}{m['errors']:>7.0f}")
    codex = med["codex serve"]
    checks = [("short-request slowdown under the mix", codex["slowdown"], "<= 1.0x", codex["slowdown"] <= 1.0),
              ("TTFT p50 under load / solo", codex["ttft_load"] / codex["ttft_solo"], "<= 2.0x",
               codex["ttft_load"] / codex["ttft_solo"] <= 2.0)]
    peer = med.get("transformers serve --cb")
    if peer:
        ratio = codex["mix_tok_s"] / peer["mix_tok_s"]
        checks.append(("tokens/s on the mix / transformers serve --cb", ratio, ">= 1.1x", ratio >= 1.1))
    static = med.get("codex serve, static (before)")
    if static:
        ratio = codex["uniform_tok_s"] / static["uniform_tok_s"]
        checks.append(("tokens/s uniform / static batching (before)", ratio, ">= 1.0x", ratio >= 1.0))
    print()
    for name, value, target, ok in checks:
        print(f"{name:<52} {value:>8.2f}  target {target:<10} {'PASS' if ok else 'MISS'}")


def mechanism_phase(args: argparse.Namespace) -> None:
    """In-process, the mixed workload: codex's scheduler + engine vs transformers' ContinuousBatchingManager."""
    import torch
    from transformers import ContinuousBatchingConfig, GenerationConfig

    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.config import MaskConfig, ModelConfig
    from codex_cli.runtime import configure_threads
    from codex_cli.serving.generation import GenRequest, Job, Scheduler
    from codex_cli.serving.generation.engine import TorchEngine

    configure_threads(args.threads)
    loaded = load_for_inference("codex-tiny", ModelConfig())
    model, tok = loaded.model, loaded.tokenizer
    sizes = workload("mixed", args.requests, args.seed)

    class NoMetrics:
        def observe_step(self, running: int) -> None: ...

        def observe_job(self, *args: object, **kwargs: object) -> None: ...

    async def codex_run() -> tuple[float, float]:
        engine = TorchEngine(model, tok, "codex-tiny", max_prompt_tokens=1024, mask=MaskConfig())
        scheduler = Scheduler(lambda: engine, NoMetrics(), max_batch_size=16, max_batch_tokens=8192, max_queue=1024,
                              seed=0)
        scheduler.start(preload=True)
        loop = asyncio.get_running_loop()

        async def one(i: int, size: int) -> int:
            job = Job(GenRequest(PROMPTS[i % len(PROMPTS)], size, temperature=0.0), loop, stream=True)
            scheduler.submit(job)
            while await job.chunks.get() is not None:
                pass
            return (await job.done).completion_tokens

        result = await closed_loop(one, sizes, args.clients)
        scheduler.stop()
        return result

    # init_continuous_batching switches the model's attention to a paged kernel: the peer gets its own copy
    peer_model = load_for_inference("codex-tiny", ModelConfig()).model
    manager = peer_model.init_continuous_batching(
        generation_config=GenerationConfig(do_sample=False, max_new_tokens=128, eos_token_id=tok.eos_token_id),
        continuous_batching_config=ContinuousBatchingConfig(num_blocks=64, max_batch_tokens=512))
    manager.start()

    async def peer_run() -> tuple[float, float]:
        async def one(i: int, size: int) -> int:
            outputs: asyncio.Queue = asyncio.Queue()
            request_id = f"r{i}-{time.perf_counter_ns()}"
            manager.register_result_handler(request_id, outputs.put_nowait)
            manager.add_request(tok(PROMPTS[i % len(PROMPTS)])["input_ids"], request_id=request_id,
                                max_new_tokens=size, streaming=True)
            while not (out := await outputs.get()).is_finished():
                pass
            return len(out.generated_tokens)

        return await closed_loop(one, sizes, args.clients)

    print(f"\nmechanism, in process: {args.requests} requests (75% 8 / 25% 128 tokens), {args.clients} clients, "
          f"greedy, torch threads={args.threads}, torch {torch.__version__}")
    print(f"{'round':<6}{'engine':<44}{'tok/s':>8}{'short p50 ms':>14}  loadavg")
    runs: dict[str, list[tuple[float, float]]] = {"codex scheduler + engine (KV merge/evict)": [],
                                                  "transformers ContinuousBatchingManager (paged)": []}
    try:
        for round_ in range(args.rounds):
            pairs = [("codex scheduler + engine (KV merge/evict)", codex_run),
                     ("transformers ContinuousBatchingManager (paged)", peer_run)]
            for name, fn in pairs if round_ % 2 == 0 else pairs[::-1]:
                tok_s, short = asyncio.run(fn())
                runs[name].append((tok_s, short))
                print(f"{round_:<6}{name:<44}{tok_s:>8.0f}{short:>14.0f}  {loadavg()}", flush=True)
    finally:
        manager.stop(block=True, timeout=10)
    for name, values in runs.items():
        print(f"median {name:<37}{statistics.median(v[0] for v in values):>8.0f}"
              f"{statistics.median(v[1] for v in values):>14.0f}")


async def closed_loop(one: object, sizes: list[int], clients: int) -> tuple[float, float]:
    """Run ``one(i, size)`` for every request with ``clients`` concurrent callers; tokens/s and short p50 (ms)."""
    queue = list(enumerate(sizes))
    short: list[float] = []
    tokens = 0

    async def caller() -> None:
        nonlocal tokens
        while queue:
            i, size = queue.pop(0)
            started = time.perf_counter()
            generated = await one(i, size)  # type: ignore[operator]
            tokens += generated  # not `tokens += await ...`: that reads tokens before the await and loses updates
            if size == 8:
                short.append(time.perf_counter() - started)

    await one(0, 4)  # type: ignore[operator]  # warm-up
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return tokens / seconds, sorted(short)[len(short) // 2] * 1000


# ---------------------------------------------------------------------------------------------------------------
# Issue 14: many LoRA adapters on one base (--adapter), and switching checkpoints under load (--follow).
# ---------------------------------------------------------------------------------------------------------------

ADAPTERS = 8


def make_adapters(root: Path, count: int) -> list[Path]:
    """``count`` LoRA adapters of codex-tiny (codex's default LoRA: r 8, alpha 16, every linear layer; random B)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from codex_cli.model import BUILTIN_DIR, default_target_modules, quiet_peft_deprecation

    paths = []
    for i in range(count):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(BUILTIN_DIR)
        config = LoraConfig(r=8, lora_alpha=16, target_modules=default_target_modules(base), task_type="CAUSAL_LM")
        with quiet_peft_deprecation():
            model = get_peft_model(base, config)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
        model.save_pretrained(root / f"a{i}")
        paths.append(root / f"a{i}")
    return paths


def adapters_phase(args: argparse.Namespace) -> None:
    """16 streaming clients spread over 8 adapters vs all on 1 adapter (vs the bare base), interleaved and repeated."""
    root = Path(tempfile.mkdtemp(prefix="codex-adapters-"))
    atexit.register(shutil.rmtree, root, True)
    paths = make_adapters(root, ADAPTERS)
    serve = [sys.executable, "-m", "codex_cli", "serve", "--model", "codex-tiny", "--preload",
             f"threads={args.threads}", "serve.max_batch_size=16", "serve.max_queue=1024", "serve.max_new_tokens=256"]
    usage = {"stream_options": {"include_usage": True}}
    setups = [
        (Launch(f"{ADAPTERS} adapters", [*serve, *(a for i, p in enumerate(paths) for a in ("--adapter", f"a{i}={p}"))],
                "", "/readyz", extra=usage), [f"a{i}" for i in range(ADAPTERS)]),
        (Launch("1 adapter", [*serve, "--adapter", f"a0={paths[0]}"], "", "/readyz", extra=usage), ["a0"]),
        (Launch("base, no adapters", serve, "", "/readyz", extra=usage), ["codex-tiny"]),
    ]
    sizes = workload("uniform", args.requests, args.seed)
    results: dict[str, list[float]] = {launch.name: [] for launch, _ in setups}
    print(f"\nadapters: {args.requests} streaming requests of 32 tokens, {args.clients} clients (request i names "
          f"model i mod n), greedy, codex-tiny, torch threads={args.threads}")
    print(f"{'round':<6}{'server':<22}{'reqs':>5}{'err':>4}{'tok/s':>8}{'p50 ms':>9}{'peak RSS MB':>12}  loadavg")
    for round_ in range(args.rounds):
        for launch, models in setups[round_ % len(setups):] + setups[:round_ % len(setups)]:
            proc, port = start(launch)
            try:
                asyncio.run(drive_streams(port, models, [8] * len(models), len(models), launch.extra))  # warm-up
                streams, seconds = asyncio.run(drive_streams(port, models, sizes, args.clients, launch.extra))
                rss = peak_rss_mb(proc)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
            run = Run(launch.name, "uniform", streams, seconds, loadavg())
            results[launch.name].append(run.tokens_per_s)
            print(f"{round_:<6}{launch.name:<22}{len(streams):>5}{run.errors:>4}{run.tokens_per_s:>8.0f}"
                  f"{run.p50():>9.0f}{rss:>12.0f}  {run.load}", flush=True)
    med = {name: statistics.median(values) for name, values in results.items()}
    print(f"\nmedian tokens/s over {args.rounds} round(s): " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
    ratio = med[f"{ADAPTERS} adapters"] / med["1 adapter"]
    verdict = "PASS" if ratio >= 0.8 else "MISS"
    print(f"{'tokens/s, 8 adapters / 1 adapter':<52} {ratio:>8.2f}  target >= 0.8x     {verdict}")
    print(f"{'tokens/s, 1 adapter / base (reference)':<52} {med['1 adapter'] / med['base, no adapters']:>8.2f}")
    adapter_steps(paths, args)


def adapter_steps(paths: list[Path], args: argparse.Namespace) -> None:
    """In process: one 16-row decode step over 8 adapters vs 1, codex's stacked LoRA vs peft's adapter_names."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, DynamicCache

    from codex_cli.model import BUILTIN_DIR, quiet_peft_deprecation
    from codex_cli.runtime import configure_threads
    from codex_cli.serving.generation.lora import RowLora, attach, read_adapter

    configure_threads(args.threads)
    rows, width, steps = 16, 64, 32
    ids = torch.randint(5, 4000, (rows, width), generator=torch.Generator().manual_seed(0))

    def step_ms(model: object, kwargs: dict, context: object) -> float:
        cache, mask = DynamicCache(), torch.ones(rows, width, dtype=torch.long)
        with torch.inference_mode(), context:
            model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1, **kwargs)
            started = time.perf_counter()
            for i in range(steps):
                mask = torch.cat([mask, mask.new_ones(rows, 1)], dim=1)
                model(input_ids=ids[:, :1], attention_mask=mask, position_ids=torch.full((rows, 1), width + i),
                      cache=cache, use_cache=True, logits_to_keep=1, **kwargs)
        return (time.perf_counter() - started) / steps * 1000

    with quiet_peft_deprecation():
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BUILTIN_DIR), str(paths[0]),
                                               adapter_name="a0").eval()
    for i, path in enumerate(paths[1:], start=1):
        peft_model.load_adapter(str(path), adapter_name=f"a{i}")
    codex_model = AutoModelForCausalLM.from_pretrained(BUILTIN_DIR).eval()
    for i, path in enumerate(paths):
        codex_model = attach(codex_model, f"a{i}", read_adapter(str(path), "cpu"))
    lora = RowLora(codex_model)
    spread, single = [f"a{i % ADAPTERS}" for i in range(rows)], ["a0"] * rows
    cases = [("codex stacked LoRA, 8 adapters", codex_model, {}, lambda: lora.rows(spread, "cpu")),
             ("codex stacked LoRA, 1 adapter", codex_model, {}, lambda: lora.rows(single, "cpu")),
             ("peft adapter_names, 8 adapters", peft_model, {"adapter_names": spread}, contextlib.nullcontext),
             ("peft adapter_names, 1 adapter", peft_model, {"adapter_names": single}, contextlib.nullcontext),
             ("peft, 1 active adapter (no mixing)", peft_model, {}, contextlib.nullcontext)]
    times: dict[str, list[float]] = {name: [] for name, *_ in cases}
    for _ in range(args.rounds):
        for name, model, kwargs, context in cases:
            times[name].append(step_ms(model, kwargs, context()))
    print(f"\nin process: one decode step, {rows} rows, {width}-token context, median of {args.rounds} x {steps} "
          f"steps, torch threads={args.threads}, loadavg {loadavg()}")
    for name, values in times.items():
        print(f"{name:<44}{statistics.median(values):>8.2f} ms/step")


def switch_phase(args: argparse.Namespace) -> None:
    """`codex serve --follow` under 16 streaming clients while new checkpoints appear: failures and p99 latency."""
    root = Path(tempfile.mkdtemp(prefix="codex-follow-"))
    atexit.register(shutil.rmtree, root, True)
    run = root / "run"
    subprocess.run([sys.executable, "-m", "codex_cli", "train", "--lora", "--epochs", "1", "--quiet",
                    f"threads={args.threads}", "train.max_steps=2", f"checkpoint.dir={run}"], check=True,
                   stdout=subprocess.DEVNULL)
    first = json.loads((run / "latest.json").read_text())["checkpoint"]
    launch = Launch("codex serve --follow", [sys.executable, "-m", "codex_cli", "serve", "--follow", str(run),
                                             "--preload", f"threads={args.threads}", "serve.follow_interval_s=0.2",
                                             "serve.max_batch_size=16", "serve.max_queue=1024"],
                    run.name, "/readyz", extra={"stream_options": {"include_usage": True}})
    sizes = workload("uniform", args.requests * 4, args.seed)  # long enough for every switch to land mid-run
    print(f"\nswitch: codex serve --follow, {args.clients} streaming clients, {len(sizes)} requests of 32 tokens, "
          f"{args.switches} new checkpoints (LoRA, codex-tiny) per round, torch threads={args.threads}")
    print(f"{'round':<6}{'run':<16}{'reqs':>5}{'err':>4}{'tok/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'in switch':>10}"
          f"{'p99 in switch':>14}{'switch s':>9}  loadavg")
    summary = []
    for round_ in range(args.rounds):
        proc, port = start(launch)
        try:
            asyncio.run(drive_streams(port, run.name, [8] * 4, 4, launch.extra))  # warm-up
            still, seconds = asyncio.run(drive_streams(port, run.name, sizes, args.clients, launch.extra))
            written: list[tuple[str, float]] = []
            switcher = threading.Thread(target=_write_checkpoints, args=(run, first, round_, args.switches, written))
            switcher.start()
            moving, moving_s = asyncio.run(drive_streams(port, run.name, sizes, args.clients, launch.extra))
            switcher.join()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        windows = _switch_windows(written, moving)
        during = [s for s in moving if any(s.started < end and s.started + s.seconds > start for start, end in windows)]
        p99 = _pct([s.seconds for s in still], 0.99)
        p99_switch = _pct([s.seconds for s in during], 0.99)
        took = statistics.median(end - start for start, end in windows) if windows else float("nan")
        for name, streams, secs, extra in (("no switch", still, seconds, ""),
                                           (f"{len(windows)} switches", moving, moving_s,
                                            f"{len(during):>10}{p99_switch:>14.0f}{took:>9.2f}")):
            r = Run(launch.name, name, streams, secs, loadavg())
            print(f"{round_:<6}{name:<16}{len(streams):>5}{r.errors:>4}{r.tokens_per_s:>8.0f}{r.p50():>8.0f}"
                  f"{_pct([s.seconds for s in streams], 0.99):>8.0f}{extra if extra else '':>33}  {r.load}", flush=True)
        summary.append((sum(s.status != 200 for s in moving), len(windows), p99, p99_switch))
    failed = sum(f for f, *_ in summary)
    print(f"\nfailed requests while switching: {failed} (target 0: {'PASS' if failed == 0 else 'MISS'}); switches seen "
          f"{sum(n for _, n, *_ in summary)} of {args.switches * args.rounds}; p99 latency in a switch "
          f"{statistics.median(p for *_, p in summary):.0f} ms vs {statistics.median(p for _, _, p, _ in summary):.0f} "
          "ms without (medians over rounds)")


def _write_checkpoints(run: Path, first: str, round_: int, count: int, written: list[tuple[str, float]]) -> None:
    """New checkpoints as a training run writes them: a complete directory renamed in place, then latest.json.

    Each is a copy of the first under a new name: verifying, loading and switching cost the same whatever the weights.
    """
    for k in range(count):
        time.sleep(0.5)
        name = f"switch-{round_}-{k}"
        shutil.copytree(run / first, run / f".tmp-{name}")
        os.rename(run / f".tmp-{name}", run / name)
        latest = run / ".latest.json.tmp"
        latest.write_text(json.dumps({"checkpoint": name, "global_step": k, "epoch": 1, "updated_at": "now"}))
        os.replace(latest, run / "latest.json")
        written.append((name, time.perf_counter()))


def _switch_windows(written: list[tuple[str, float]], streams: list[Stream]) -> list[tuple[float, float]]:
    """(latest.json written, first request answered by that checkpoint was sent) for every switch that took effect."""
    windows = []
    for name, at in written:
        starts = [s.started for s in streams if s.checkpoint == name]
        if starts:
            windows.append((at, min(starts)))
    return windows


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="load,mechanism",
                        help="comma-separated: load, mechanism, adapters, switch, classic")
    parser.add_argument("--switches", type=int, default=4, help="checkpoint switches per --phases switch round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=96, help="requests per mixed and uniform workload")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the mixed workload")
    parser.add_argument("--static-rev", default=STATIC_REV, help="git revision with the static batcher ('' skips it)")
    parser.add_argument("--peer-venv", default="~/.cache/codex/bench/peer-venv",
                        help="venv for transformers serve, created if missing ('' skips the peer)")
    parser.add_argument("--tiny-requests", type=int, default=96)
    parser.add_argument("--echo-requests", type=int, default=10_000)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per classic load phase")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    phases = set(args.phases.split(","))
    if "load" in phases:
        load_phase(args)
    if "mechanism" in phases:
        mechanism_phase(args)
    if "adapters" in phases:
        adapters_phase(args)
    if "switch" in phases:
        switch_phase(args)
    if "classic" in phases:
        classic(args)


if __name__ == "__main__":
    main()
