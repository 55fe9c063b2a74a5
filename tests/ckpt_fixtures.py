"""Builders of codex checkpoints for the read-side tests, independent of the training loop.

They write exactly what codex_cli/checkpoint/layout.py documents: a PEFT adapter (LoRA) or a
save_pretrained model (full), tokenizer files, trainer_state files, a metadata.json whose
``files`` manifest comes from ``file_manifest()``, and latest.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from codex_cli.checkpoint.layout import (
    LATEST_FILE,
    METADATA_FILE,
    METRICS_FILE,
    RNG_FILE,
    SCHEMA_VERSION,
    TOKENIZER_FILES,
    TRAINER_STATE_FILE,
    file_manifest,
    sha256_file,
)


def load_tiny(base_dir: Path):
    """The tiny base model in float32, eval mode, one torch thread."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()


def make_checkpoint(base_dir: Path, ckpt_dir: Path, name: str, *, kind: str = "lora", step: int = 4,
                    epoch: int = 1, seed: int = 0, train_loss: float = 5.5, eval_loss: float | None = 5.6,
                    latest: bool = True) -> Path:
    """Write one complete checkpoint ``ckpt_dir/name`` derived from the tiny base at ``base_dir``."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    path = ckpt_dir / name
    path.mkdir(parents=True)
    model = load_tiny(base_dir)
    if kind == "lora":
        from peft import LoraConfig, get_peft_model

        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        with torch.no_grad():  # non-zero B so the adapter changes the outputs
            for pname, param in peft_model.named_parameters():
                if "lora_B" in pname:
                    param.normal_(0, 0.5)
        peft_model.save_pretrained(path)
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in peft_model.parameters())
    else:
        with torch.no_grad():
            model.model.embed_tokens.weight.add_(0.25)
            if seed:  # another seed, other weights
                for param in model.parameters():
                    param.add_(torch.randn_like(param) * 0.2)
        model.save_pretrained(path)
        trainable = total = sum(p.numel() for p in model.parameters())
    for tok_file in TOKENIZER_FILES:
        if (base_dir / tok_file).is_file():
            shutil.copy2(base_dir / tok_file, path / tok_file)
    (path / RNG_FILE).parent.mkdir(exist_ok=True)
    save_file({"torch_cpu": torch.get_rng_state()}, str(path / RNG_FILE))
    (path / TRAINER_STATE_FILE).write_text(json.dumps({"global_step": step, "data_position": 0}))
    write_metadata(path, _metadata(base_dir, kind, step, epoch, train_loss, eval_loss, trainable, total))
    if latest:
        write_latest(ckpt_dir, name, step, epoch)
    return path


def write_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """(Re)write metadata.json with a fresh files manifest."""
    metadata = dict(metadata, files=file_manifest(path))
    (path / METADATA_FILE).write_text(json.dumps(metadata, indent=2))


def write_latest(ckpt_dir: Path, name: str, step: int = 0, epoch: int = 0) -> None:
    """Point latest.json at ``name``."""
    data = {"checkpoint": name, "global_step": step, "epoch": epoch, "updated_at": "2026-01-01T00:00:00Z"}
    (ckpt_dir / LATEST_FILE).write_text(json.dumps(data))


def write_metrics(ckpt_dir: Path, losses: list[float], eval_losses: list[float] = ()) -> None:
    """A metrics.jsonl with one row per step and eval rows at the end of each epoch."""
    rows = [{"event": "step", "step": i + 1, "epoch": 1, "loss": loss, "lr": 1e-3, "tokens_per_s": 100.0}
            for i, loss in enumerate(losses)]
    rows += [{"event": "epoch_end", "step": len(losses), "epoch": e + 1, "loss": 9.0, "eval_loss": v, "perplexity": 2.0}
             for e, v in enumerate(eval_losses)]
    (ckpt_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _metadata(base_dir: Path, kind: str, step: int, epoch: int, train_loss: float, eval_loss: float | None,
              trainable: int, total: int) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    return {
        "schema_version": SCHEMA_VERSION, "codex_version": "0.1.0", "torch_version": torch.__version__,
        "transformers_version": transformers.__version__, "peft_version": peft.__version__,
        "created_at": f"2026-01-01T00:00:{step % 60:02d}Z", "kind": kind, "reason": "epoch",
        "base_model": {"name": str(base_dir), "path": str(base_dir),
                       "config_sha256": sha256_file(base_dir / "config.json")},
        "config": {"seed": 1234, "lora": {"enabled": kind == "lora", "r": 4}},
        "epoch": epoch, "global_step": step, "samples_seen": step * 8, "tokens_seen": step * 512,
        "metrics": {"train_loss": train_loss, "eval_loss": eval_loss, "perplexity": 270.0},
        "parameters": {"trainable": trainable, "total": total},
    }


# Runs in a fresh interpreter that never imports codex_cli: plain transformers (and peft) only.
_PLAIN_LOADER = """
import json, sys, warnings
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging
logging.disable_progress_bar()
torch.set_num_threads(1)
jobs, prompt = json.loads(sys.argv[1]), sys.argv[2]
out = {}
def last_logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(prompt, return_tensors="pt")).logits[0, -1].tolist()
for key, path in jobs.get("auto", {}).items():
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    out[key] = last_logits(model, AutoTokenizer.from_pretrained(path))
for key, (base, adapter) in jobs.get("peft", {}).items():
    from peft import PeftModel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    out[key] = last_logits(model, AutoTokenizer.from_pretrained(adapter))
out["codex_cli imported"] = any(name.startswith("codex_cli") for name in sys.modules)
print(json.dumps(out))
"""


def plain_transformers_logits(jobs: dict[str, Any], prompt: str, cwd: Path) -> dict[str, Any]:
    """Last-position logits per job, computed in a subprocess with plain transformers/peft (no codex_cli).

    ``jobs``: {"auto": {key: dir for AutoModelForCausalLM/AutoTokenizer}, "peft": {key: [base_dir, adapter_dir]}}.
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", _PLAIN_LOADER, json.dumps(jobs), prompt], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def codex_logits(path: Path, prompt: str) -> list[float]:
    """Last-position logits of a checkpoint or model loaded by codex the way serve loads it."""
    import torch

    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.config import ModelConfig

    loaded = load_for_inference(path, ModelConfig())
    with torch.no_grad():
        return loaded.model(**loaded.tokenizer(prompt, return_tensors="pt")).logits[0, -1].tolist()
