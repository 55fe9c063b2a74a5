"""Data pipeline: codex's load_datasets (read, mask secrets, tokenize, cache) against the bare tokenizer.

Two inputs, each timed N runs (median wall time), in one process:
  * txt: the CPython standard library concatenated (what codex-tiny pretrains on), packed into windows;
  * jsonl: the bundled prompt/completion dataset (800 + 100 records).
Rows: the baseline is the codex-tiny tokenizer called directly on the same text (no masking, no
labels, no cache); "codex, cold" starts from an empty cache (masking on, then off); "codex, cached"
is the second run, which must not tokenize again.
Target: a cache hit is much faster than the bare tokenizer; a cold run costs little beyond it
(masking is the main extra).

    python benchmarks/data_pipeline.py [--runs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from codex_cli.config import DataConfig, ModelConfig
from codex_cli.data import BUNDLED_EVAL, BUNDLED_TRAIN, load_datasets
from codex_cli.model import load_tokenizer
from codex_cli.runtime import configure_threads

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples" / "codex-tiny"))
from build_corpus import build  # noqa: E402


def _median(fn: Callable[[], Any], runs: int, before: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench(name: str, cfg: DataConfig, baseline_texts: list[str], tokenizer: Any, runs: int, tmp: Path) -> list:
    size = sum(len(t.encode("utf-8")) for t in baseline_texts)
    counter = iter(range(10**6))

    def fresh() -> None:
        os.environ["CODEX_CACHE_DIR"] = str(tmp / f"cold-{next(counter)}")

    rows = [("bare tokenizer", _median(lambda: tokenizer(baseline_texts, add_special_tokens=False, verbose=False),
                                       runs))]
    rows.append(("codex, cold, masking on", _median(lambda: load_datasets(cfg, tokenizer, seed=1234), runs, fresh)))
    off = replace(cfg, mask_secrets=False)
    rows.append(("codex, cold, masking off", _median(lambda: load_datasets(off, tokenizer, seed=1234), runs, fresh)))
    os.environ["CODEX_CACHE_DIR"] = str(tmp / "warm")
    assert not load_datasets(cfg, tokenizer, seed=1234).cache_hit
    rows.append(("codex, cached", _median(lambda: load_datasets(cfg, tokenizer, seed=1234), runs)))
    assert load_datasets(cfg, tokenizer, seed=1234).cache_hit
    base = rows[0][1]
    return [(name, label, seconds, size / seconds / 1e6, seconds / base) for label, seconds in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = load_tokenizer(ModelConfig())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus.txt"
        build(Path(os.path.dirname(os.__file__)), corpus)
        txt_cfg = DataConfig(train=str(corpus), eval_fraction=0.02, max_length=256)
        records = [json.loads(line) for p in (BUNDLED_TRAIN, BUNDLED_EVAL) for line in p.read_text().splitlines()]
        jsonl_texts = [r["prompt"] for r in records] + [r["completion"] for r in records]
        rows = _bench("txt (stdlib)", txt_cfg, [corpus.read_text(encoding="utf-8")], tokenizer, args.runs, tmp)
        rows += _bench("jsonl (bundled)", DataConfig(), jsonl_texts, tokenizer, args.runs, tmp)
    print(f"data pipeline, median of {args.runs} runs, torch threads {threads}, "
          f"TOKENIZERS_PARALLELISM={os.environ['TOKENIZERS_PARALLELISM']}")
    print(f"{'input':<16} {'pipeline':<26} {'seconds':>9} {'MB/s':>8} {'x bare tokenizer':>17}")
    for name, label, seconds, mbps, ratio in rows:
        print(f"{name:<16} {label:<26} {seconds:>9.4f} {mbps:>8.2f} {ratio:>16.2f}x")


if __name__ == "__main__":
    main()
