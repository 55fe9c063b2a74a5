#!/usr/bin/env bash
# Rebuild codex-tiny from scratch, offline, exactly as shipped (see docs/codex-tiny.md).
# Run from the repository root with CPython 3.11.7 (its standard library is the corpus).
# About 25 CPU-minutes on 2 threads; writes everything under artifacts/codex-tiny/.
set -euo pipefail
python examples/codex-tiny/build_corpus.py --out artifacts/codex-tiny/corpus.txt
python examples/codex-tiny/train_tokenizer.py --corpus artifacts/codex-tiny/corpus.txt --out artifacts/codex-tiny/tokenizer
python examples/codex-tiny/init_model.py --tokenizer artifacts/codex-tiny/tokenizer --out artifacts/codex-tiny/init
# Stage 1: one epoch, batch 16, lr 3e-3.
codex --config examples/codex-tiny/pretrain.yaml train --full
# Stage 2: one epoch, batch 8, lr 2e-3, from stage 1.
codex --config examples/codex-tiny/pretrain-2.yaml train --full
# Stage 3: stage 2's recipe again, from stage 2.
codex --config examples/codex-tiny/pretrain-2.yaml train --full \
    model.name=artifacts/codex-tiny/pretrain-2/epoch-0001 checkpoint.dir=artifacts/codex-tiny/pretrain-3
codex ckpt export artifacts/codex-tiny/pretrain-3 artifacts/codex-tiny/export
sha256sum artifacts/codex-tiny/export/model.safetensors
