"""``codex ckpt export``: a checkpoint as a standalone Hugging Face model directory.

Three layouts, all loadable with ``AutoModelForCausalLM.from_pretrained(OUT)`` and
``AutoTokenizer.from_pretrained(OUT)`` with no codex installed:

* full checkpoint: its model, config and tokenizer files, copied byte for byte;
* LoRA with ``merge``: the adapter merged into the base (peft ``merge_and_unload``), saved with
  ``save_pretrained`` as safetensors: a plain model, peft not needed to load it;
* LoRA without ``merge``: the base model's config and safetensors weights plus the PEFT adapter
  (``adapter_config.json`` + ``adapter_model.safetensors``), copied byte for byte. transformers loads
  the base from OUT and applies the adapter on top when peft is installed (without peft it would load
  the base alone, so use ``--merge`` for consumers without peft); ``PeftModel.from_pretrained(base, OUT)``
  also works.

The directory is written next to OUT under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_cli.checkpoint import layout
from codex_cli.errors import CheckpointError, UsageError

if TYPE_CHECKING:
    from codex_cli.config import ModelConfig

_BASE_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json")


@dataclass
class ExportResult:
    """What was exported where, and the files written (relative to ``out``)."""

    source: str
    out: str
    layout: str  # "full" | "lora-merged" | "base+adapter"
    files: list[str]


def export_checkpoint(path: Path, out: Path, *, merge: bool, model_cfg: ModelConfig) -> ExportResult:
    """Verify a checkpoint (or a checkpoint.dir's latest) and write it to ``out`` as a Hugging Face model dir."""
    checkpoint = layout.resolve_checkpoint(Path(path))
    metadata = layout.verify_checkpoint(checkpoint, rehash=True)
    out = Path(out)
    _check_out(out)
    if merge and metadata["kind"] != "lora":
        raise UsageError(f"--merge applies to LoRA checkpoints and '{checkpoint}' is a full checkpoint; "
                         "export it without --merge")
    tmp = out.parent / f"{layout.TMP_PREFIX}export-{out.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if metadata["kind"] == "full":
            kind = "full"
            _copy(checkpoint, tmp, [f for f in metadata["files"] if "/" not in f])
        elif merge:
            kind = "lora-merged"
            _write_merged(checkpoint, metadata, model_cfg, tmp)
        else:
            kind = "base+adapter"
            _write_base_and_adapter(checkpoint, metadata, model_cfg, tmp)
        if out.exists():  # an empty directory, checked above
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return ExportResult(str(checkpoint), str(out), kind, files)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"export target '{out}' already exists and is not an empty directory; choose a new path")


def _copy(src_dir: Path, dst_dir: Path, names: list[str]) -> None:
    for name in names:
        shutil.copyfile(src_dir / name, dst_dir / name)


def _tokenizer_source(checkpoint: Path, base_dir: Path) -> tuple[Path, list[str]]:
    for source in (checkpoint, base_dir):
        names = [n for n in layout.TOKENIZER_FILES if (source / n).is_file()]
        if names:
            return source, names
    raise CheckpointError(f"no tokenizer files in checkpoint '{checkpoint}' nor in its base model '{base_dir}'; "
                          "cannot export a standalone model")


def _base_dir(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig) -> Path:
    from codex_cli.checkpoint.inference import base_model_config
    from codex_cli.model import resolve_model_path

    cfg = base_model_config(checkpoint, metadata, model_cfg)
    path = resolve_model_path(cfg)
    if not isinstance(path, Path):
        raise CheckpointError(f"base model '{cfg.name}' of checkpoint '{checkpoint}' is not available locally; "
                              "download it once, then export")
    return path


def _write_base_and_adapter(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig, out: Path) -> None:
    base = _base_dir(checkpoint, metadata, model_cfg)
    weights = sorted(p.name for p in base.glob("*.safetensors"))
    if not weights:
        raise CheckpointError(f"base model '{base}' has no safetensors weights to copy; export with --merge instead")
    _copy(base, out, [n for n in _BASE_FILES if (base / n).is_file()] + weights)
    _copy(checkpoint, out, [layout.ADAPTER_CONFIG, layout.ADAPTER_WEIGHTS])
    source, names = _tokenizer_source(checkpoint, base)
    _copy(source, out, names)


def _write_merged(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig, out: Path) -> None:
    from codex_cli.checkpoint.inference import load_verified
    from codex_cli.model import quiet_hf_progress

    base = _base_dir(checkpoint, metadata, model_cfg)
    merged = load_verified(checkpoint, metadata, model_cfg).model.merge_and_unload()
    with quiet_hf_progress():  # no "Writing model shards" bar in codex's output
        merged.save_pretrained(out)
    source, names = _tokenizer_source(checkpoint, base)
    _copy(source, out, names)
