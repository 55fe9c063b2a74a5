"""The on-disk layout of codex checkpoints. Stdlib only: reading layout never imports torch.

    <checkpoint.dir>/
      latest.json                  {"checkpoint": "<name>", "global_step": N, "epoch": E, "updated_at": ISO8601}
      metrics.jsonl                one JSON object per logged step / epoch end (written by training)
      <name>/                      epoch-0001, step-00000120, interrupt-00000057 ...
        metadata.json              the sidecar (METADATA_FILE), see below
        adapter_model.safetensors  LoRA run: standard PEFT layout
        adapter_config.json
        model.safetensors          full run: standard transformers layout
        config.json  generation_config.json
        tokenizer.json tokenizer_config.json special_tokens_map.json ...   tokenizer files
        trainer_state/optimizer.safetensors   optimizer tensors, keys "state.<param_index>.<name>"
        trainer_state/rng.safetensors         torch CPU/CUDA RNG states, numpy state
        trainer_state/trainer_state.json      optimizer param_groups + scalar state, scheduler state,
                                              python RNG state, data position, counters

metadata.json keys (schema_version 1):
  schema_version, codex_version, torch_version, transformers_version, peft_version,
  created_at (ISO8601 UTC), kind ("lora" | "full"), reason ("epoch" | "steps" | "interrupt"),
  base_model {"name", "path", "config_sha256"}, config (resolved, secrets redacted),
  epoch (completed epochs, int), global_step, samples_seen, tokens_seen,
  metrics {"train_loss", "eval_loss", "perplexity", ...}, parameters {"trainable", "total"},
  files {"<relative path>": {"sha256": hex, "size": bytes}} for every file except metadata.json.

A checkpoint is written into "<checkpoint.dir>/.tmp-<name>-<pid>", fsynced and renamed to
"<name>"; latest.json is replaced atomically (write temp, fsync, os.replace) only afterwards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SCHEMA_VERSION = 1
LATEST_FILE = "latest.json"
METRICS_FILE = "metrics.jsonl"
METADATA_FILE = "metadata.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
TRAINER_STATE_DIR = "trainer_state"
OPTIMIZER_FILE = "trainer_state/optimizer.safetensors"
RNG_FILE = "trainer_state/rng.safetensors"
TRAINER_STATE_FILE = "trainer_state/trainer_state.json"
TMP_PREFIX = ".tmp-"


_HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_manifest(checkpoint: Path) -> dict[str, dict[str, object]]:
    """{relative posix path: {"sha256", "size"}} for every file in a checkpoint except metadata.json."""
    manifest: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
        rel = path.relative_to(checkpoint).as_posix()
        if rel == METADATA_FILE:
            continue
        manifest[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return manifest
