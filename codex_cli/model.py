"""The one place that finds, loads and wraps models and tokenizers (transformers + peft).

``model.name`` is the built-in ``codex-tiny`` (shipped in the package), a local directory
saved with ``save_pretrained``, or a Hugging Face hub id that must already be in the local
HF cache unless ``model.allow_download`` is true. Everything loads through
``from_pretrained``, the built-in model included.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal

from codex_cli.checkpoint.layout import MODEL_CONFIG, sha256_file
from codex_cli.errors import ModelError, first_line

if TYPE_CHECKING:
    from codex_cli.config import LoraConfig, ModelConfig

BUILTIN_MODEL = "codex-tiny"
BUILTIN_DIR = Path(__file__).with_name("assets") / BUILTIN_MODEL
# Output heads and classifier layers are never LoRA targets, whatever their type.
_NOT_TARGETS = frozenset({"lm_head", "embed_out", "score", "classifier", "output"})

log = logging.getLogger("codex.model")


@dataclass
class LoadedModel:
    """A model ready to train or serve, with what the CLI reports about it."""

    model: Any
    tokenizer: Any
    name: str
    path: str
    kind: Literal["lora", "full"]
    trainable_params: int
    total_params: int
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)  # things the CLI should tell the user (e.g. pad token set)


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def resolve_model_path(cfg: ModelConfig) -> Path | str:
    """Where ``cfg.name`` lives: the package assets, a local directory, or the local HF cache.

    Returns the hub id itself (a str) only when ``allow_download`` is true and no cached copy exists.
    """
    name = cfg.name
    if name == BUILTIN_MODEL:
        if not (BUILTIN_DIR / MODEL_CONFIG).is_file():
            raise ModelError(f"built-in model '{BUILTIN_MODEL}' is missing from the package ({BUILTIN_DIR}); "
                             "reinstall codex-cli")
        return BUILTIN_DIR
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / MODEL_CONFIG).is_file():
            raise ModelError(f"model directory '{name}' has no {MODEL_CONFIG}; point model.name at a directory "
                             "written by save_pretrained")
        return local.resolve()
    if local.exists():
        raise ModelError(f"model.name '{name}' is a file; point it at a model directory written by save_pretrained")
    if _looks_like_path(name):
        raise ModelError(f"model directory '{name}' not found; check the path in model.name")
    return _from_hf_cache(cfg)


def downloads_allowed(cfg: ModelConfig) -> bool:
    """Whether codex may reach the Hugging Face hub: only on an explicit opt-in, either switch."""
    return cfg.allow_download or not cfg.local_files_only


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def _from_hf_cache(cfg: ModelConfig) -> Path | str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    cache = hf_cache_dir()
    try:
        return Path(snapshot_download(cfg.name, revision=cfg.revision, cache_dir=cache, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError) as e:
        if downloads_allowed(cfg):
            return cfg.name
        raise ModelError(
            f"model '{cfg.name}' not found: no local directory '{cfg.name}' and no copy in the Hugging Face cache "
            f"({cache}); set model.name to a local model directory or to '{BUILTIN_MODEL}', download it once "
            f"(huggingface-cli download {cfg.name}), or set model.allow_download=true"
        ) from e


def _load_kwargs(cfg: ModelConfig, path: Path | str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"local_files_only": not downloads_allowed(cfg)}
    if isinstance(path, str) and cfg.revision:
        kwargs["revision"] = cfg.revision
    return kwargs


@contextmanager
def quiet_hf_progress() -> Iterator[None]:
    """Hide transformers' load/save progress bars; codex prints its own progress."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def quiet_peft_deprecation() -> Iterator[None]:
    """peft calls a transformers API deprecated in v5 (is_gradient_checkpointing): not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def load_tokenizer(cfg: ModelConfig) -> Any:
    """The model's tokenizer (AutoTokenizer), with a pad token guaranteed (logged when codex sets one)."""
    tokenizer, notes = _load_tokenizer(cfg, resolve_model_path(cfg))
    for note in notes:
        log.warning(note)
    return tokenizer


def _load_tokenizer(cfg: ModelConfig, path: Path | str) -> tuple[Any, list[str]]:
    from transformers import AutoTokenizer

    try:
        with quiet_hf_progress():
            tokenizer = AutoTokenizer.from_pretrained(path, **_load_kwargs(cfg, path))
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"cannot load the tokenizer of model '{cfg.name}' from {path} ({first_line(e)}); "
                         "check that the directory holds tokenizer files") from e
    notes: list[str] = []
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"the tokenizer of model '{cfg.name}' has neither a pad nor an eos token; "
                             "add a pad token to it and save it again")
        tokenizer.pad_token = tokenizer.eos_token
        notes.append(f"model '{cfg.name}' has no pad token: padding with its eos token "
                     f"{tokenizer.eos_token!r} (padding is masked out of the loss)")
    return tokenizer, notes


def load_model(cfg: ModelConfig, lora: LoraConfig, *, gradient_checkpointing: bool = False,
               to_device: bool = True) -> LoadedModel:
    """Load model and tokenizer with ``from_pretrained``, move to the device, wrap with LoRA if enabled.

    Seed torch before calling: LoRA weights are initialised from torch's RNG. ``to_device=False`` leaves
    the weights on the CPU (FSDP moves each shard to the device as it shards the model).
    """
    path = resolve_model_path(cfg)
    tokenizer, notes = _load_tokenizer(cfg, path)
    device = _device(cfg.device)
    model = _from_pretrained(cfg, path)
    if gradient_checkpointing:
        _enable_checkpointing(model, cfg.name)
    if lora.enabled:
        model = _apply_lora(model, lora)
    if to_device:
        model.to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return LoadedModel(model=model, tokenizer=tokenizer, name=cfg.name, path=str(path),
                       kind="lora" if lora.enabled else "full", trainable_params=trainable, total_params=total,
                       device=device, notes=notes)


def _from_pretrained(cfg: ModelConfig, path: Path | str) -> Any:
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, cfg.dtype)  # model.dtype is one of float32, bfloat16, float16 (config checks it)
    try:
        with quiet_hf_progress():
            return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **_load_kwargs(cfg, path))
    except (OSError, ValueError, KeyError, SafetensorError) as e:
        raise ModelError(f"cannot load model '{cfg.name}' from {path} ({first_line(e)}); check that it is a "
                         "causal language model saved with save_pretrained") from e


def _enable_checkpointing(model: Any, name: str) -> None:
    # transformers 5 renamed gradient checkpointing to activation checkpointing; keep both working.
    enable = getattr(model, "activation_checkpointing_enable", None)
    try:
        if enable is not None:
            enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    except ValueError as e:
        raise ModelError(f"model '{name}' does not support gradient checkpointing; "
                         "set train.gradient_checkpointing=false") from e
    model.config.use_cache = False


def _device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelError("model.device is 'cuda' but no CUDA device is available; set model.device=cpu or auto")
    return requested


def _apply_lora(model: Any, lora: LoraConfig) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    targets = list(lora.target_modules) if lora.target_modules else default_target_modules(model)
    peft_config = PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                 target_modules=targets, bias="none", task_type="CAUSAL_LM")
    try:
        with quiet_peft_deprecation():
            return get_peft_model(model, peft_config)
    except ValueError as e:
        raise ModelError(f"lora.target_modules {targets} do not match this model's layers ({first_line(e)}); "
                         "unset lora.target_modules to find them automatically") from e


def default_target_modules(model: Any) -> list[str]:
    """LoRA targets: every linear layer inside the transformer blocks (peft's "all-linear"), by leaf name.

    Covers llama, mistral, qwen, gemma, phi, gpt2 (Conv1D), gpt-neox, falcon, opt and the like; output
    heads are never targets.
    """
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for qualified, module in model.named_modules():
        qualified = qualified.removesuffix(".base_layer")  # a layer that peft has already wrapped
        if isinstance(module, (nn.Linear, Conv1D)) and module is not output and "." in qualified \
                and ".lora_" not in qualified:
            names.add(qualified.rsplit(".", 1)[-1])
    names -= _NOT_TARGETS
    if not names:
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ModelError(f"cannot find LoRA target layers in a '{kind}' model; set lora.target_modules "
                         "to the names of its linear layers")
    return sorted(names)


def decoder_layers(model: Any) -> list[Any]:
    """The transformer blocks: the outermost modules of the classes transformers names in ``_no_split_modules``.

    transformers declares there the block that must stay whole on one device (accelerate wraps the
    same classes for FSDP); FSDP shards the model one block at a time. A PeftModel is searched too.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    classes = set(getattr(base, "_no_split_modules", None) or ())
    layers: list[Any] = []
    inside: list[str] = []
    for qualified, module in model.named_modules():
        if type(module).__name__ in classes and not any(qualified.startswith(f"{outer}.") for outer in inside):
            layers.append(module)
            inside.append(qualified)
    if not layers:
        kind = getattr(getattr(base, "config", None), "model_type", type(base).__name__)
        raise ModelError(f"train.strategy=fsdp cannot shard a '{kind}' model: transformers names no decoder layer "
                         "class for it (_no_split_modules); train it with train.strategy=ddp")
    return layers


def meta_model(cfg: ModelConfig) -> Any:
    """The model built from its config.json on the meta device: its architecture without weights or memory."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model_path(cfg)
    try:
        config = AutoConfig.from_pretrained(path, **_load_kwargs(cfg, path))
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"cannot read the config of model '{cfg.name}' from {path} ({first_line(e)}); check that "
                         "it is a causal language model saved with save_pretrained") from e


def base_identity(cfg: ModelConfig) -> dict[str, str]:
    """{"name", "path", "config_sha256"}: what a checkpoint records about its base model.

    Compare ``name`` and ``config_sha256`` for resume compatibility; ``path`` differs between installs.
    """
    path = resolve_model_path(cfg)
    if isinstance(path, Path):
        config_file = path / MODEL_CONFIG
    else:
        from transformers.utils import cached_file

        config_file = Path(cached_file(path, MODEL_CONFIG, **_load_kwargs(cfg, path)))
    return {"name": cfg.name, "path": str(path), "config_sha256": sha256_file(config_file)}

