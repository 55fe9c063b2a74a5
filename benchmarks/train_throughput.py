"""Training throughput: `codex train`'s loop vs transformers' Trainer + peft vs a minimal hand-written loop.

Same model (codex-tiny unless --model), same tokenized data (the bundled set unless --data), same batch
order, batch size, accumulation, LoRA settings, learning rate, steps and threads. Each implementation
runs in its own process (so peak RSS is its own), the runs are interleaved so machine noise hits all
alike, and the median tokens/s (non-padding input tokens per second of the training loop, model
loading excluded) is compared. Targets: codex >= 1.0x Trainer and >= 0.95x the hand-written loop.

A row runs codex's loop with MLflow tracking on (CODEX_MLFLOW=1; one sqlite store for all its runs, as
in a project directory, so only the first run creates its tables): target >= 0.97x the tokens/s of the
same run with it off. Its extra wall time, mostly importing mlflow and opening the store before
training, is reported apart: it is not in tokens/s. So is what tracking costs per logged metrics row,
measured alone (queueing it and writing it to a sqlite store): less sensitive to a busy machine
than the tokens/s ratio, it says what the ratio becomes for faster steps.

Two last rows run `codex train --nproc 2` (torch.distributed, gloo on CPU) with half the batch per
process, so the same global batch, and one process with twice the threads: the same cores as the two
processes. Their tokens/s (all ranks together) is reported against one process. On a 2-core machine
shared with other work the two processes compete for the same cores and the gloo all-reduce of every
step is overhead: the rows say what DDP gives or costs here, not how it scales with a core or GPU per
process.

    python benchmarks/train_throughput.py [--steps 30] [--runs 3] [--threads 1] [--batch-size 8] [--grad-accum 1]
                                          [--only codex,codex-mlflow]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPLEMENTATIONS = ("codex", "codex-mlflow", "trainer", "manual", "codex-2proc", "codex-2x-threads")


def _overrides(args: argparse.Namespace, ckpt_dir: str, processes: int = 1, threads: int = 0) -> list[str]:
    overrides = [f"model.name={args.model}", f"threads={threads or args.threads}", "lora.enabled=true",
                 f"train.batch_size={args.batch_size // processes}", f"train.grad_accum={args.grad_accum}",
                 f"train.max_steps={args.steps}", f"checkpoint.dir={ckpt_dir}", "train.scheduler=constant"]
    return overrides + ([f"data.train={args.data}"] if args.data else [])


def _config(args: argparse.Namespace, ckpt_dir: str, threads: int = 0):
    from codex_cli.config import load_config

    return load_config(None, _overrides(args, ckpt_dir, threads=threads))


def _setup(cfg):
    """Model, data and the batches of codex's first epoch, built by codex for every implementation."""
    from codex_cli.data import collate, load_datasets
    from codex_cli.model import load_model
    from codex_cli.runtime import configure_threads, seed_everything
    from codex_cli.training.batches import epoch_windows

    configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    loaded = load_model(cfg.model, cfg.lora)
    data = load_datasets(cfg.data, loaded.tokenizer, seed=cfg.seed, mask=cfg.mask)
    windows = epoch_windows(len(data.train), batch_size=cfg.train.batch_size, grad_accum=cfg.train.grad_accum,
                            seed=cfg.seed, epoch=0)
    if len(windows) < cfg.train.max_steps:
        sys.exit(f"the data has {len(windows)} steps per epoch; pass --steps {len(windows)} or fewer")
    pad = loaded.tokenizer.pad_token_id
    batches = [collate([data.train[i] for i in batch], pad)
               for window in windows[:cfg.train.max_steps] for batch in window]
    return loaded, data, batches


def _run_codex(cfg) -> dict:
    from codex_cli.training import train

    start = time.perf_counter()
    train(cfg.model, cfg.lora, cfg.data, cfg.train, cfg.checkpoint, seed=cfg.seed, threads=cfg.threads,
          mask=cfg.mask, run_config=cfg.redacted_dict(), track_cfg=cfg.track)
    return {**_last_step(Path(cfg.checkpoint.dir)), "wall_s": time.perf_counter() - start}


def _run_codex_2proc(args: argparse.Namespace, ckpt_dir: str) -> dict:
    """`codex train --nproc 2`: torchrun's agent, 2 ranks of batch_size / 2 (the same global batch)."""
    from codex_cli.launch import launch_local

    code = launch_local(2, ["train", "--quiet", *_overrides(args, ckpt_dir, processes=2)], threads=args.threads)
    if code:
        sys.exit(f"codex train --nproc 2 was interrupted ({code})")
    return _last_step(Path(ckpt_dir))


def _last_step(ckpt_dir: Path) -> dict:
    """tokens/s of the last step in metrics.jsonl (under DDP: the tokens of every rank, written by rank 0)."""
    lines = [json.loads(line) for line in (ckpt_dir / "metrics.jsonl").read_text().splitlines()]
    last = [m for m in lines if m["event"] == "step"][-1]
    step_s = last["tokens_seen"] / last["tokens_per_s"] / last["step"]  # the loop's seconds per optimizer step
    return {"tokens_per_s": last["tokens_per_s"], "steps": last["step"], "step_s": step_s}


def _run_manual(cfg) -> dict:
    import torch

    loaded, _, batches = _setup(cfg)
    model = loaded.model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    accum = cfg.train.grad_accum
    tokens, start = 0, time.perf_counter()
    for i, batch in enumerate(batches):
        loss = model(**batch).loss / accum
        loss.backward()
        tokens += int(batch["attention_mask"].sum())
        if (i + 1) % accum == 0 or i + 1 == len(batches):
            torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
    return {"tokens_per_s": tokens / (time.perf_counter() - start), "steps": cfg.train.max_steps}


def _run_trainer(cfg) -> dict:
    import torch
    from transformers import Trainer, TrainingArguments

    from codex_cli.data import collate

    loaded, data, batches = _setup(cfg)
    order = [ex for batch in _epoch_batches(cfg, data) for ex in batch]
    pad = loaded.tokenizer.pad_token_id

    class InOrder(Trainer):  # the same batch order as codex and the manual loop
        def _get_train_sampler(self, *args, **kwargs):
            return torch.utils.data.SequentialSampler(self.train_dataset)

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(output_dir=out, per_device_train_batch_size=cfg.train.batch_size,
                                  gradient_accumulation_steps=cfg.train.grad_accum, learning_rate=cfg.train.lr,
                                  max_steps=cfg.train.max_steps, lr_scheduler_type="constant",
                                  max_grad_norm=cfg.train.grad_clip,
                                  weight_decay=cfg.train.weight_decay, save_strategy="no", eval_strategy="no",
                                  report_to=[], logging_strategy="no", disable_tqdm=True, use_cpu=True,
                                  dataloader_num_workers=0, seed=cfg.seed, remove_unused_columns=False)
        trainer = InOrder(model=loaded.model, args=targs, train_dataset=order,
                          data_collator=lambda rows: collate(rows, pad))
        start = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - start
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    return {"tokens_per_s": tokens / elapsed, "steps": cfg.train.max_steps}


def _epoch_batches(cfg, data) -> list[list]:
    """The examples of codex's first epoch in codex's order, grouped by micro-batch."""
    from codex_cli.training.batches import epoch_windows

    windows = epoch_windows(len(data.train), batch_size=cfg.train.batch_size, grad_accum=cfg.train.grad_accum,
                            seed=cfg.seed, epoch=0)
    return [[data.train[i] for i in batch] for window in windows for batch in window]


def _tracking_cost(rows: int = 1000) -> dict:
    """Seconds per metrics.jsonl row that codex's tracker spends queueing and writing it (a sqlite store)."""
    from codex_cli.config import TrackConfig
    from codex_cli.tracking import open_tracker

    with tempfile.TemporaryDirectory() as store:
        os.environ.update(CODEX_MLFLOW="1", MLFLOW_TRACKING_URI=f"sqlite:///{Path(store) / 'mlflow.db'}")
        tracker = open_tracker(TrackConfig(), writer=True)
        tracker.start(None, config={}, kind="lora", base_model={}, world_size=1, ckpt_dir=Path(store) / "ck")
        row = {"event": "step", "epoch": 1, "loss": 4.2, "lr": 2e-4, "tokens_per_s": 2000.0, "grad_norm": 0.9,
               "tokens_seen": 1000}
        start = time.perf_counter()
        for step in range(1, rows + 1):
            tracker.log_metrics({**row, "step": step})  # writes a batch whenever 1,000 metrics wait
        tracker.end("FINISHED")  # writes the rest
        return {"row_s": (time.perf_counter() - start) / rows}


def _worker(args: argparse.Namespace) -> None:
    if args.worker == "tracking-cost":
        print(json.dumps(_tracking_cost()))
        return
    os.environ["CODEX_MLFLOW"] = "1" if args.worker == "codex-mlflow" else "0"  # whatever the caller's shell says
    with tempfile.TemporaryDirectory() as ckpt:
        if args.worker == "codex-2proc":
            result = _run_codex_2proc(args, str(Path(ckpt) / "ck"))
        elif args.worker == "codex-2x-threads":
            result = _run_codex(_config(args, str(Path(ckpt) / "ck"), threads=2 * args.threads))
        else:
            cfg = _config(args, str(Path(ckpt) / "ck"))
            run = {"codex": _run_codex, "codex-mlflow": _run_codex, "trainer": _run_trainer, "manual": _run_manual}
            result = run[args.worker](cfg)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=(*IMPLEMENTATIONS, "tracking-cost"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--model", default="codex-tiny")
    parser.add_argument("--data", default=None)
    parser.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                        help="comma-separated implementations to run (codex always runs: every ratio is against it)")
    args = parser.parse_args()
    if args.batch_size % 2:
        parser.error("--batch-size must be even: the 2-process row splits it between the processes")
    if args.worker:
        return _worker(args)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    store = tempfile.TemporaryDirectory()  # the tracked runs' one MLflow store (the workers inherit the variable)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(store.name) / 'mlflow.db'}"
    chosen = [impl for impl in IMPLEMENTATIONS if impl == "codex" or impl in args.only.split(",")]
    results: dict[str, list[float]] = {impl: [] for impl in chosen}
    walls: dict[str, list[float]] = {impl: [] for impl in chosen}
    step_times: dict[str, list[float]] = {impl: [] for impl in chosen}
    rss: dict[str, float] = {impl: 0.0 for impl in chosen}
    for _ in range(args.runs):
        for impl in chosen:
            result, peak = _run_measured(args, impl)
            results[impl].append(result["tokens_per_s"])
            walls[impl].append(result.get("wall_s", 0.0))
            step_times[impl].append(result.get("step_s", 0.0))
            rss[impl] = max(rss[impl], peak)
    cost = _run_measured(args, "tracking-cost")[0] if "codex-mlflow" in chosen else None
    _report(args, results, walls, rss, cost, statistics.median(step_times["codex"]))
    store.cleanup()


def _run_measured(args: argparse.Namespace, impl: str) -> tuple[dict, float]:
    cmd = [sys.executable, __file__, "--worker", impl, "--steps", str(args.steps), "--threads", str(args.threads),
           "--batch-size", str(args.batch_size), "--grad-accum", str(args.grad_accum), "--model", args.model]
    if args.data:
        cmd += ["--data", args.data]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{impl} failed ({code}):\n{err.decode(errors='replace')[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def _report(args: argparse.Namespace, results: dict[str, list[float]], walls: dict[str, list[float]],
            rss: dict[str, float], cost: dict | None, step_s: float) -> None:
    import torch

    median = {impl: statistics.median(values) for impl, values in results.items()}
    print(f"train throughput: {args.model}, LoRA, batch {args.batch_size} x accum {args.grad_accum}, "
          f"{args.steps} steps, median of {args.runs} interleaved runs, torch threads {args.threads}, "
          f"torch {torch.__version__}, {os.cpu_count()} cpus")
    print(f"{'implementation':<26} {'tokens/s':>10} {'min':>8} {'max':>8} {'codex ratio':>12} {'peak RSS MB':>12}")
    names = {"codex": "codex train (loop)", "codex-mlflow": "codex + MLflow tracking",
             "trainer": "transformers Trainer+peft", "manual": "hand-written loop",
             "codex-2proc": f"codex, 2 procs x batch {args.batch_size // 2}",
             "codex-2x-threads": f"codex, 1 proc x {2 * args.threads} threads"}
    for impl in results:
        ratio = median["codex"] / median[impl]
        low, high = min(results[impl]), max(results[impl])
        print(f"{names[impl]:<26} {median[impl]:>10,.0f} {low:>8,.0f} {high:>8,.0f} {ratio:>11.2f}x "
              f"{rss[impl]:>12,.0f}")
    print(f"load average after the runs: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if "trainer" in median and "manual" in median:
        print(f"targets: codex/Trainer >= 1.00x (got {median['codex'] / median['trainer']:.2f}x), "
              f"codex/hand-written >= 0.95x (got {median['codex'] / median['manual']:.2f}x)")
    if "codex-mlflow" in median:
        extra = statistics.median(walls["codex-mlflow"]) - statistics.median(walls["codex"])
        print(f"MLflow tracking on / off: {median['codex-mlflow'] / median['codex']:.3f}x tokens/s (target >= 0.97x); "
              f"{extra:+.1f} s wall per run (median; the first run also created the store's tables: "
              f"{walls['codex-mlflow'][0] - walls['codex'][0]:+.1f} s), mostly importing mlflow and opening the store")
        per_row = cost["row_s"]
        print(f"tracking cost per logged row (6 metrics, queued and written to sqlite): {per_row * 1e3:.2f} ms = "
              f"{per_row / step_s:.2%} of this run's "
              f"{step_s * 1e3:.0f} ms step (expected ratio {step_s / (step_s + per_row):.3f}x); "
              f"it stays >= 0.97x while a step takes >= {per_row / 0.03 * 1e3:.0f} ms (else raise train.log_every)")
    if "codex-2proc" not in median or "codex-2x-threads" not in median:
        return
    print(f"2 processes (DDP, gloo, {args.threads} thread(s) each, global batch {args.batch_size}): "
          f"{median['codex-2proc'] / median['codex']:.2f}x the tokens/s of 1 process with {args.threads} thread(s), "
          f"{median['codex-2proc'] / median['codex-2x-threads']:.2f}x 1 process with the same {2 * args.threads} "
          f"threads (on {os.cpu_count()} cores shared with other work: noisy, and no measure of scaling with a "
          "core or GPU per process)")


if __name__ == "__main__":
    main()
