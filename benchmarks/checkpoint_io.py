"""Checkpoint I/O: safetensors (what codex writes and reads) against torch.save / torch.load(weights_only=True),
and `codex ckpt inspect` time against checkpoint size.

Part 1 saves and loads the same state dict (codex's streaming writer for training state, safetensors'
own save_file, torch.save), interleaved, N runs each, median wall time.
Saves include an fsync for both formats (codex checkpoints are fsynced, so the baseline is too); loads
include touching one value per 4 KiB page of every tensor, since safetensors maps the file lazily.
torch.save is used here only, into a temp dir, as the baseline: codex itself never pickles.

Part 2 builds checkpoints of growing size (weights files whose data section is sparse, so building
them costs nothing) and times the installed `codex ckpt inspect CKPT --tensors` end to end (process
start included) and the library call behind it, against `--verify`, which re-hashes every byte.
Header-only inspect must stay flat.
Targets (issue 5): save and load >= 1.0x torch; inspect of a 1 GB checkpoint < 0.5 s.

    python benchmarks/checkpoint_io.py [--runs 5] [--threads 1] [--state-mb 256] [--sizes-mb 10,100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from codex_cli.checkpoint.catalog import summarize
from codex_cli.checkpoint.layout import METADATA_FILE, MODEL_WEIGHTS, SCHEMA_VERSION, sha256_file
from codex_cli.checkpoint.tensorfile import save_tensors
from codex_cli.model import BUILTIN_DIR
from codex_cli.runtime import configure_threads


def _codex() -> str:
    exe = Path(sys.executable).with_name("codex")
    return str(exe) if exe.exists() else (shutil.which("codex") or "codex")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _states(state_mb: int) -> dict[str, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1234)
    tiny = load_file(str(BUILTIN_DIR / MODEL_WEIGHTS))
    n = max(1, state_mb // 4)  # 4 MiB float32 matrices, like the projections of a ~1B model
    synthetic = {f"layers.{i}.weight": torch.randn(1024, 1024, generator=generator) for i in range(n)}
    return {"codex-tiny": tiny, f"synthetic {n * 4} MiB": synthetic}


def _touch(state: dict[str, torch.Tensor]) -> None:
    """Read every byte (safetensors maps files lazily, so an untouched load would measure nothing)."""
    for tensor in state.values():
        tensor.view(-1)[:: max(1, 4096 // tensor.element_size())].sum()


def bench_save_load(workdir: Path, runs: int, state_mb: int) -> list[list[str]]:
    """Median save (+fsync) and load seconds for each state, safetensors vs torch."""
    rows = []
    for label, state in _states(state_mb).items():
        st_path, pt_path = workdir / "state.safetensors", workdir / "state.pt"
        cx_path = workdir / "codex.safetensors"
        times: dict[str, list[float]] = {"cx_save": [], "st_save": [], "pt_save": [], "st_load": [], "pt_load": []}
        for _ in range(runs):  # interleaved so machine noise hits all alike
            times["cx_save"].append(_timed(lambda: (save_tensors(cx_path, state), _fsync(cx_path))))
            times["st_save"].append(_timed(lambda: (save_file(state, str(st_path)), _fsync(st_path))))
            times["pt_save"].append(_timed(lambda: (torch.save(state, pt_path), _fsync(pt_path))))
            times["st_load"].append(_timed(lambda: _touch(load_file(str(st_path)))))
            times["pt_load"].append(_timed(lambda: _touch(torch.load(pt_path, weights_only=True))))
        for written in (st_path, cx_path):
            loaded = load_file(str(written))
            assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
        med = {k: statistics.median(v) for k, v in times.items()}
        size_mb = st_path.stat().st_size / 2**20
        rows.append([label, f"{size_mb:.1f}", f"{len(state)}",
                     f"{med['cx_save'] * 1000:.1f}", f"{med['st_save'] * 1000:.1f}", f"{med['pt_save'] * 1000:.1f}",
                     f"{med['pt_save'] / med['cx_save']:.2f}x",
                     f"{med['st_load'] * 1000:.1f}", f"{med['pt_load'] * 1000:.1f}",
                     f"{med['pt_load'] / med['st_load']:.2f}x"])
        for path in (st_path, pt_path, cx_path):
            path.unlink()
    return rows


def _sparse_checkpoint(root: Path, size_mb: int, tensors: int = 200) -> Path:
    """A full checkpoint whose model.safetensors declares ``size_mb`` of float32 tensors over a sparse hole."""
    path = root / f"ckpt-{size_mb}mb"
    path.mkdir()
    per = size_mb * 2**20 // 4 // tensors
    header, offset = {}, 0
    for i in range(tensors):
        header[f"model.layers.{i}.weight"] = {"dtype": "F32", "shape": [per],
                                              "data_offsets": [offset, offset + per * 4]}
        offset += per * 4
    raw = json.dumps(header).encode()
    weights = path / MODEL_WEIGHTS
    with open(weights, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    files = {MODEL_WEIGHTS: {"sha256": sha256_file(weights), "size": weights.stat().st_size}}
    meta = {"schema_version": SCHEMA_VERSION, "kind": "full", "files": files, "epoch": 1, "global_step": 1}
    (path / METADATA_FILE).write_text(json.dumps(meta))
    return path


def _run_codex(args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([_codex(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"codex {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return elapsed


def bench_inspect(workdir: Path, runs: int, sizes_mb: list[int]) -> list[list[str]]:
    """Per size: median ms of summarize() in process, `codex ckpt inspect --tensors`, and with `--verify`."""
    rows, first = [], None
    for size_mb in sizes_mb:
        ckpt = _sparse_checkpoint(workdir, size_mb)
        _run_codex(["ckpt", "inspect", str(ckpt), "--tensors"])  # warm-up: page cache, .pyc files
        heads = statistics.median(_run_codex(["ckpt", "inspect", str(ckpt), "--tensors"]) for _ in range(runs))
        verify = statistics.median(_run_codex(["ckpt", "inspect", str(ckpt), "--tensors", "--verify"])
                                   for _ in range(max(1, runs // 2)))
        library = statistics.median(_timed(lambda: summarize(ckpt, tensors=True)) for _ in range(runs))
        first = first or heads
        rows.append([f"{size_mb}", f"{library * 1000:.2f}", f"{heads * 1000:.0f}", f"{heads / first:.2f}x",
                     f"{verify * 1000:.0f}", f"{verify / heads:.1f}x"])
        shutil.rmtree(ckpt)
    return rows


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--state-mb", type=int, default=256, help="size of the synthetic state dict")
    parser.add_argument("--sizes-mb", default="10,100,1000", help="checkpoint sizes for the inspect benchmark")
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    print(f"torch {torch.__version__}, threads {threads}, {os.cpu_count()} CPUs, runs {args.runs} (median)\n")
    with tempfile.TemporaryDirectory(prefix="codex-bench-") as tmp:
        rows = bench_save_load(Path(tmp), args.runs, args.state_mb)
        print("Save (+fsync) and load of the same state dict: codex's streaming safetensors writer (training "
              "state) and safetensors' save_file vs torch.save/torch.load(weights_only); speedup = torch / codex")
        print(_table(["state", "MiB", "tensors", "codex save ms", "st save_file ms", "torch save ms", "save speedup",
                      "st load ms", "torch load ms", "load speedup"], rows))
        rows = bench_inspect(Path(tmp), args.runs, [int(s) for s in args.sizes_mb.split(",")])
        print("\n`codex ckpt inspect CKPT --tensors` (headers only, process start included) vs "
              "`--tensors --verify` (re-hash)")
        headers = ["ckpt MiB", "summarize() ms", "inspect ms", "vs smallest", "--verify ms", "verify/inspect"]
        print(_table(headers, rows))


if __name__ == "__main__":
    main()
