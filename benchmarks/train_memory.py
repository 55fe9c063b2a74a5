"""Training memory: peak RSS per rank of `codex train --full` on 1 process, 2 x DDP and 2 x FSDP (AdamW).

A Llama built from a config (no download: 12 layers of hidden 1024, about 163M parameters, 650 MB in
fp32) is saved once with codex-tiny's tokenizer. Each run fine-tunes every weight with AdamW for
--steps optimizer steps on the same global batch (1 process x batch 2B, 2 processes x batch B) and
ends with the checkpoint write, through the real `codex train` (torchrun for the 2-process rows). Every
rank records its own peak RSS (getrusage ru_maxrss: the whole run, model loading and the final
checkpoint write included) and its peak just before that write, so the table shows what the save adds,
with the save's seconds and the wall time of the run. The runs are interleaved and repeated; a rank's
figure is its largest over the repeats. Allocator settings in the environment (MALLOC_* tunables,
LD_PRELOAD) are printed.

Target: the FSDP peak per rank <= 0.65 x the DDP peak per rank.

What to expect: DDP holds on every rank the weights, their gradients, AdamW's two moments and DDP's
gradient buckets (about 5 x the model), plus a copy of the weights while transformers' save_pretrained
builds model.safetensors in memory. FSDP holds half of weights, gradients and moments per rank (2 ranks),
one layer's full weights at a time in the passes, one gathered tensor at a time while saving; the
fixed cost of a process (python, torch, transformers: several hundred MB) is the same for both. On the
CPU codex's FSDP ranks fix glibc's mmap threshold at 1 MiB unless MALLOC_MMAP_THRESHOLD_ is set
(docs/distributed.md says why).

    python benchmarks/train_memory.py [--runs 2] [--steps 2] [--batch 1] [--grad-accum 1] [--layers 12]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("1proc", "ddp", "fsdp")
ROW_NAMES = {"1proc": "1 process", "ddp": "2 x DDP", "fsdp": "2 x FSDP"}
TRAIN_TEXTS = [f"def f{i}(x):\n    return x * {i} + {i % 7}  # " + "padding words " * 12 + "\n" for i in range(16)]
EVAL_TEXTS = [f"def g{i}(y):\n    return y - {i}\n" for i in range(2)]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _rank_main(out_dir: str, argv: list[str]) -> None:
    """One rank (or the single process): `codex train ARGV`, then its peaks into OUT_DIR/rank-N.json."""
    from codex_cli.cli import main
    from codex_cli.training import loop

    saves: list[dict] = []
    save = loop.save

    def measured_save(*args, **kwargs):
        before, started = _peak_mb(), time.perf_counter()
        try:
            return save(*args, **kwargs)
        finally:
            saves.append({"before": before, "after": _peak_mb(), "seconds": time.perf_counter() - started})

    loop.save = measured_save
    sys.argv = ["codex", *argv]
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
    finally:
        rank = int(os.environ.get("RANK", "0"))
        record = {"rank": rank, "peak_mb": _peak_mb(), "saves": saves}
        Path(out_dir, f"rank-{rank}.json").write_text(json.dumps(record), encoding="utf-8")


def _build_model(root: Path, layers: int) -> Path:
    """The benchmark model: a Llama with codex-tiny's tokenizer, random weights, saved with save_pretrained."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from codex_cli.model import BUILTIN_DIR, quiet_hf_progress

    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_DIR)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816, num_hidden_layers=layers,
                         num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = root / "model"
    with quiet_hf_progress():
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _write_data(root: Path) -> tuple[Path, Path]:
    train, evaluation = root / "train.jsonl", root / "eval.jsonl"
    train.write_text("".join(json.dumps({"text": t}) + "\n" for t in TRAIN_TEXTS), encoding="utf-8")
    evaluation.write_text("".join(json.dumps({"text": t}) + "\n" for t in EVAL_TEXTS), encoding="utf-8")
    return train, evaluation


def _run(config: str, args: argparse.Namespace, root: Path, model: Path, data: tuple[Path, Path]) -> list[dict]:
    """One `codex train` run of ``config``; every rank's record."""
    out = Path(tempfile.mkdtemp(prefix=f"{config}-", dir=root))
    processes = 1 if config == "1proc" else 2
    train_args = ["train", "--quiet", "--full", f"model.name={model}", f"data.train={data[0]}", f"data.eval={data[1]}",
                  "data.max_length=64", "data.mask_secrets=false", f"train.batch_size={args.batch * 2 // processes}",
                  f"train.grad_accum={args.grad_accum}", f"train.max_steps={args.steps}", "train.scheduler=constant",
                  "threads=1", f"checkpoint.dir={out / 'ck'}",
                  f"train.strategy={'fsdp' if config == 'fsdp' else 'ddp'}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", CODEX_CACHE_DIR=str(root / "cache"))
    if processes == 1:
        cmd = [sys.executable, __file__, "--rank-main", str(out), "--", *train_args]
    else:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        cmd = [torchrun, "--standalone", "--nproc-per-node=2", __file__, "--rank-main", str(out), "--", *train_args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{config} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    records = [{**json.loads((out / f"rank-{rank}.json").read_text()), "wall_s": wall} for rank in range(processes)]
    shutil.rmtree(out)  # ~2 GB of checkpoint per run
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank-main", metavar="OUT_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1, help="examples per process and micro-step on 2 processes")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--layers", type=int, default=12)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # after "--": the codex command line of a rank
    args = parser.parse_args(argv[:split])
    if args.rank_main:
        return _rank_main(args.rank_main, argv[split + 1:])
    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="codex-train-memory-") as tmp:
        root = Path(tmp)
        model = _build_model(root, args.layers)
        data = _write_data(root)
        peaks: dict[str, list[dict]] = {config: [] for config in CONFIGS}
        started = time.perf_counter()
        for _ in range(args.runs):
            for config in CONFIGS:
                peaks[config].append(_run(config, args, root, model, data))
        elapsed = time.perf_counter() - started
        _report(args, model, peaks, load_before, elapsed)


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"


def _report(args: argparse.Namespace, model: Path, runs: dict[str, list[list[dict]]], load_before: str,
            elapsed: float) -> None:
    import torch
    from safetensors import safe_open

    with safe_open(str(model / "model.safetensors"), "pt") as handle:
        params = sum(_numel(handle.get_slice(name).get_shape()) for name in handle.keys())
    print(f"train memory: Llama {args.layers} layers x hidden 1024, {params / 1e6:.0f}M parameters "
          f"({params * 4 / 2**20:,.0f} MiB fp32), full fine-tuning, AdamW, global batch {args.batch * 2} x accum "
          f"{args.grad_accum}, {args.steps} steps + the final checkpoint write; torch threads 1 per process, "
          f"torch {torch.__version__}, {os.cpu_count()} cpus; {args.runs} interleaved runs, largest per rank; "
          f"allocator: {_allocator()}")
    print(f"{'run':<12} {'rank':>4} {'peak RSS MiB':>13} {'before save':>12} {'save adds':>10} {'save s':>7} "
          f"{'wall s':>7}")
    worst: dict[str, float] = {}
    for config in CONFIGS:
        ranks = len(runs[config][0])
        for rank in range(ranks):
            records = [run[rank] for run in runs[config]]
            peak = max(r["peak_mb"] for r in records)
            before = max(r["saves"][-1]["before"] for r in records) if records[0]["saves"] else float("nan")
            wall = statistics.median(r["wall_s"] for r in records)
            saving = statistics.median(r["saves"][-1]["seconds"] for r in records)
            print(f"{ROW_NAMES[config]:<12} {rank:>4} {peak:>13,.0f} {before:>12,.0f} {peak - before:>+10,.0f} "
                  f"{saving:>7.1f} {wall:>7.0f}")
            worst[config] = max(worst.get(config, 0.0), peak)
    ratio = worst["fsdp"] / worst["ddp"]
    print(f"FSDP / DDP peak per rank: {ratio:.2f}x (target <= 0.65x: {'met' if ratio <= 0.65 else 'NOT met'}); "
          f"FSDP / 1 process: {worst['fsdp'] / worst['1proc']:.2f}x; DDP / 1 process: "
          f"{worst['ddp'] / worst['1proc']:.2f}x")
    print(f"loadavg before: {load_before}; after: {_loadavg()}; {elapsed:.0f} s")


def _allocator() -> str:
    tunables = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(("MALLOC_", "LD_PRELOAD"))]
    return ", ".join(tunables) or "no MALLOC_* tunables or LD_PRELOAD in the environment"


def _numel(shape: list[int]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


if __name__ == "__main__":
    main()
