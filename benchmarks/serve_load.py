"""Serving under load: `codex serve` over loopback against in-process generation, in one run.

For the echo model and for the built-in codex-tiny, with dynamic batching on (serve.max_batch_size=16)
and off (max_batch_size=1), N concurrent keep-alive clients send POST /infer; the table gives req/s,
generated tokens/s and p50/p99 latency. Baselines in the same run: transformers `generate` over a
batch of 16 and one request at a time, in-process (torch threads as the server). Server overhead is
the p50 of one sequential client over HTTP minus the p50 of the same call in-process.
Targets (issue 6): batching >= 5x one-at-a-time and >= 0.7x in-process batch-of-16 `generate` at 16
clients on codex-tiny; 10,000 echo requests with zero errors; server overhead <= 2 ms at p50.
All traffic stays on 127.0.0.1; every phase is bounded by a request count and --time-limit.

    python benchmarks/serve_load.py [--clients 16] [--tiny-requests 96] [--echo-requests 10000]
                                    [--max-new-tokens 32] [--threads 1] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    from codex_cli.serving.engine import TorchEngine

    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.config import MaskConfig, ModelConfig
    from codex_cli.runtime import configure_threads

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


def paired(model: str, engine: object, count: int, args: argparse.Namespace) -> tuple[Row, Row]:
    """One client, alternating: the same request in-process (engine.run) and over HTTP, so both see the same load."""
    from codex_cli.serving.batching import Job
    from codex_cli.serving.schemas import GenRequest

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
            engine.run([job])  # type: ignore[attr-defined]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tiny-requests", type=int, default=96)
    parser.add_argument("--echo-requests", type=int, default=10_000)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per load phase")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from codex_cli.serving.echo import EchoEngine

    from codex_cli.config import MaskConfig

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


if __name__ == "__main__":
    main()
