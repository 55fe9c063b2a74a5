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
