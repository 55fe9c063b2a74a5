"""Loading a codex checkpoint, or a plain model, for generation: what ``codex serve`` and ``codex ckpt load`` use.

A LoRA checkpoint is its base model (found from metadata.json's ``base_model``, checked against the
recorded config SHA256) with the PEFT adapter loaded by ``PeftModel.from_pretrained``; a full
checkpoint is a ``save_pretrained`` directory. Either way the files are verified against the
metadata first. Anything else goes through ``codex_cli.model`` like ``model.name``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from codex_cli.checkpoint import layout
from codex_cli.errors import CheckpointError, CodexError, first_line

if TYPE_CHECKING:
    from codex_cli.config import ModelConfig


@dataclass
class InferenceModel:
    """A model in eval mode with its tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    kind: Literal["lora", "full", "model"]
    checkpoint_path: str | None = None
    metadata: dict[str, Any] | None = None
    base: str | None = None
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)


def is_checkpoint_ref(path_or_name: str | Path) -> bool:
    """True when the reference is a codex checkpoint or a checkpoint.dir (not a plain model dir or name)."""
    path = Path(path_or_name).expanduser()
    return path.is_dir() and (layout.is_checkpoint(path) or not (path / layout.MODEL_CONFIG).is_file())


def load_for_inference(path_or_name: str | Path, model_cfg: ModelConfig, *, verify: bool = True) -> InferenceModel:
    """Load a checkpoint (its latest, for a checkpoint.dir) or a model name/dir, ready for generation.

    ``verify`` re-hashes every checkpoint file; sizes and safetensors headers are always checked.
    """
    if not is_checkpoint_ref(path_or_name):
        return _load_plain(str(path_or_name), model_cfg)
    checkpoint = layout.resolve_checkpoint(Path(path_or_name).expanduser())
    return load_verified(checkpoint, layout.verify_checkpoint(checkpoint, rehash=verify), model_cfg)


def load_verified(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig) -> InferenceModel:
    """Load ``checkpoint`` for generation, its files already checked against ``metadata`` by the caller."""
    if metadata["kind"] == "lora":
        loaded = _load_lora(checkpoint, metadata, model_cfg)
    else:
        loaded = _load_full(checkpoint, model_cfg)
    loaded.model.eval()
    loaded.checkpoint_path, loaded.metadata = str(checkpoint), metadata
    return loaded


def check_load(path: str | Path, model_cfg: ModelConfig, *, prompt: str = "def add(a, b):") -> dict[str, Any]:
    """Load a checkpoint like serve, verify every hash, run one forward pass and report (``codex ckpt load``)."""
    started = time.perf_counter()
    checkpoint = layout.resolve_checkpoint(Path(path).expanduser())  # checkpoints only, not model names
    loaded = load_for_inference(checkpoint, model_cfg, verify=True)
    load_s = time.perf_counter() - started
    import torch  # after loading: a corrupt checkpoint fails before torch is even imported

    inputs = loaded.tokenizer(prompt, return_tensors="pt").to(loaded.device)
    started = time.perf_counter()
    with torch.no_grad():
        logits = loaded.model(**inputs).logits
    forward_ms = (time.perf_counter() - started) * 1000
    if not torch.isfinite(logits).all():
        raise CheckpointError(f"'{loaded.name}' produced non-finite logits on a test prompt; the weights are corrupt")
    next_id = int(logits[0, -1].argmax())
    meta = loaded.metadata or {}
    return {
        "name": loaded.name, "kind": loaded.kind, "checkpoint": loaded.checkpoint_path,
        "base_model": loaded.base or "-", "epoch": meta.get("epoch", "-"), "global_step": meta.get("global_step", "-"),
        "integrity": "verified (sha256)",
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "dtype": str(next(loaded.model.parameters()).dtype).removeprefix("torch."), "device": loaded.device,
        "tokenizer": f"{type(loaded.tokenizer).__name__} ({len(loaded.tokenizer)} tokens)",
        "prompt_tokens": int(inputs["input_ids"].shape[1]), "logits_shape": list(logits.shape),
        "next_token": repr(loaded.tokenizer.decode([next_id])), "load_s": round(load_s, 3),
        "forward_ms": round(forward_ms, 2),
    }


def _load_plain(name: str, model_cfg: ModelConfig) -> InferenceModel:
    from codex_cli.config import LoraConfig
    from codex_cli.model import load_model

    loaded = load_model(dataclasses.replace(model_cfg, name=name), LoraConfig(enabled=False))
    loaded.model.eval()
    return InferenceModel(loaded.model, loaded.tokenizer, name, "model", base=loaded.path, device=loaded.device,
                          notes=loaded.notes)


def _load_full(checkpoint: Path, model_cfg: ModelConfig) -> InferenceModel:
    from codex_cli.config import LoraConfig
    from codex_cli.model import load_model

    try:
        cfg = dataclasses.replace(model_cfg, name=str(checkpoint), revision=None)
        loaded = load_model(cfg, LoraConfig(enabled=False))
    except CodexError as e:
        raise CheckpointError(f"cannot load full checkpoint '{checkpoint}': {e}") from e
    return InferenceModel(loaded.model, loaded.tokenizer, checkpoint.name, "full", device=loaded.device,
                          notes=loaded.notes)


def _load_lora(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig) -> InferenceModel:
    from peft import PeftModel

    from codex_cli.config import LoraConfig
    from codex_cli.model import load_model, quiet_peft_deprecation

    base_cfg = base_model_config(checkpoint, metadata, model_cfg)
    base = load_model(base_cfg, LoraConfig(enabled=False))
    try:
        with quiet_peft_deprecation():
            model = PeftModel.from_pretrained(base.model, str(checkpoint), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"cannot load the adapter of checkpoint '{checkpoint}' onto base model "
                              f"'{base_cfg.name}' ({first_line(e)}); the checkpoint does not fit this base") from e
    tokenizer = checkpoint_tokenizer(checkpoint, base.tokenizer)
    return InferenceModel(model, tokenizer, checkpoint.name, "lora", base=base.path, device=base.device,
                          notes=base.notes)


def base_model_config(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig) -> ModelConfig:
    """``model_cfg`` pointed at the checkpoint's base model, checked against its recorded config SHA256.

    The recorded name is tried first (portable across installs), then the recorded path.
    """
    from codex_cli.model import base_identity

    recorded = metadata.get("base_model") or {}
    candidates = list(dict.fromkeys(c for c in (recorded.get("name"), recorded.get("path")) if c))
    if not candidates:
        raise CheckpointError(f"checkpoint '{checkpoint}' records no base model in metadata.json; it is corrupt")
    revision = ((metadata.get("config") or {}).get("model") or {}).get("revision")
    for candidate in candidates:
        cfg = dataclasses.replace(model_cfg, name=candidate, revision=revision)
        try:
            identity = base_identity(cfg)
        except CodexError:
            continue  # try the next recorded reference; none found is reported below
        if recorded.get("config_sha256") and identity["config_sha256"] != recorded["config_sha256"]:
            raise CheckpointError(f"base model '{candidate}' is not the one checkpoint '{checkpoint}' was trained on "
                                  "(its config.json SHA256 differs); make the original base model available")
        return cfg
    tried = ", ".join(map(repr, candidates))
    raise CheckpointError(f"base model of checkpoint '{checkpoint}' not found (tried {tried}); "
                          "make that base model available again to load this LoRA checkpoint")


def checkpoint_tokenizer(checkpoint: Path, base_tokenizer: Any) -> Any:
    """The tokenizer saved in the checkpoint when it has one, else the base model's (unchanged by LoRA)."""
    if not any((checkpoint / name).is_file() for name in layout.TOKENIZER_FILES):
        return base_tokenizer
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"cannot load the tokenizer saved in checkpoint '{checkpoint}' ({type(e).__name__}); "
                              "the checkpoint is corrupt") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = base_tokenizer.pad_token  # the pad token codex set when training
    return tokenizer
