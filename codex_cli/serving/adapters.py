"""LoRA adapters served next to one base model: named, found on disk and checked against that base, without torch.

An adapter is a codex LoRA checkpoint (or a checkpoint.dir, whose latest.json is followed) or a plain PEFT
LoRA directory (``adapter_config.json`` + ``adapter_model.safetensors``). It must have been trained on the base
the server runs: every base reference it records (metadata.json's ``base_model`` name and path, else
adapter_config.json's ``base_model_name_or_path``) is resolved like ``model.name``, one of them must land on
the served base's directory, and a recorded config.json SHA256 must match. These checks read a few small
files, so ``codex serve`` runs them before uvicorn binds; the SHA256 of every file is checked when it loads.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from codex_cli.checkpoint import layout
from codex_cli.errors import CheckpointError, CodexError, UsageError
from codex_cli.masking import mask_text

if TYPE_CHECKING:
    from codex_cli.config import ModelConfig

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
PEFT_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class BaseModel:
    """The base model a server runs, described the way adapters record theirs."""

    label: str  # for messages: the model name, or the checkpoint directory
    location: str  # its resolved directory (or a hub id that is not cached)
    config_sha256: Optional[str]


@dataclass(frozen=True)
class AdapterRef:
    """An adapter found on disk and checked against the served base (its files are re-hashed when it loads)."""

    name: str  # what clients send as 'model'
    path: Path  # the adapter directory (a checkpoint, or a plain PEFT directory)
    checkpoint: str  # the name responses carry: the checkpoint (or directory) name
    codex: bool  # a codex checkpoint, with a metadata.json to verify


def name_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot name an adapter (None when it can); never repeats the name itself."""
    if not NAME_PATTERN.fullmatch(name):
        return f"an adapter name must be {NAME_RULE}"
    if mask_text(name)[1]:
        return "that adapter name looks like a secret (an API key or token); choose another"
    return None


def parse_specs(specs: list[str]) -> list[tuple[str, str]]:
    """``NAME=PATH`` strings (--adapter, serve.adapters) as (name, path) pairs; UsageError on a bad one."""
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise UsageError(f"--adapter (serve.adapters) expects NAME=PATH, got '{mask_text(spec[:80])[0]}'")
        problem = name_problem(name)
        if problem:
            raise UsageError(f"--adapter '{mask_text(name[:40])[0]}': {problem}")
        if name in (n for n, _ in pairs):
            raise UsageError(f"--adapter '{name}' is given twice; give each adapter one name")
        pairs.append((name, path))
    return pairs


def base_of_model(ref: str, model_cfg: ModelConfig) -> BaseModel:
    """The base a plain model reference (``model.name``, ``serve.model``) resolves to."""
    from codex_cli.model import base_identity

    identity = base_identity(dataclasses.replace(model_cfg, name=ref))
    return BaseModel(ref, identity["path"], identity["config_sha256"])


def base_of_checkpoint(checkpoint: Path, metadata: dict[str, Any], model_cfg: ModelConfig) -> BaseModel:
    """The base a codex checkpoint runs on: a LoRA checkpoint's recorded base, or a full checkpoint itself."""
    if metadata.get("kind") == "lora":
        from codex_cli.checkpoint.inference import base_model_config

        return base_of_model(base_model_config(checkpoint, metadata, model_cfg).name, model_cfg)
    config = checkpoint / layout.MODEL_CONFIG
    sha = layout.sha256_file(config) if config.is_file() else None
    return BaseModel(checkpoint.name, str(checkpoint.resolve()), sha)


def find_adapter(name: str, path: str | Path, base: BaseModel, model_cfg: ModelConfig) -> AdapterRef:
    """Find the adapter at ``path`` and check it was trained on ``base`` (cheap: no hashing, no torch).

    Raises UsageError when it is not a LoRA adapter or its base differs, CheckpointError when it is damaged.
    """
    where = Path(path).expanduser()
    if not where.is_dir():
        raise UsageError(f"adapter '{name}': no directory at '{path}'; pass a LoRA checkpoint or PEFT adapter "
                         "directory")
    if layout.is_checkpoint(where) or (where / layout.LATEST_FILE).is_file():
        checkpoint = layout.resolve_checkpoint(where)
        metadata = layout.verify_checkpoint(checkpoint, rehash=False)
        if metadata["kind"] != "lora":
            raise UsageError(f"adapter '{name}': '{checkpoint.name}' is a full checkpoint, not a LoRA adapter; "
                             "serve it with --checkpoint instead")
        recorded = metadata.get("base_model") or {}
        refs = [r for r in (recorded.get("name"), recorded.get("path")) if r]
        _check_base(name, refs, recorded.get("config_sha256"), base, model_cfg)
        return AdapterRef(name, checkpoint, checkpoint.name, codex=True)
    config = _peft_config(name, where)
    _check_base(name, [config.get("base_model_name_or_path") or ""], None, base, model_cfg)
    return AdapterRef(name, where, where.name, codex=False)


def _peft_config(name: str, where: Path) -> dict[str, Any]:
    config_file = where / layout.ADAPTER_CONFIG
    if not config_file.is_file():
        raise UsageError(f"adapter '{name}': '{where}' has neither {layout.METADATA_FILE} nor {layout.ADAPTER_CONFIG}; "
                         "pass a LoRA checkpoint or PEFT adapter directory")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"adapter '{name}': {layout.ADAPTER_CONFIG} in '{where}' cannot be read as JSON "
                              f"({type(e).__name__})") from e
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise UsageError(f"adapter '{name}': '{where}' is not a LoRA adapter (peft_type must be LORA)")
    if not (where / PEFT_WEIGHTS).is_file():
        pickled = ""
        if (where / "adapter_model.bin").exists():
            pickled = " (adapter_model.bin is a pickle, which codex never loads)"
        raise UsageError(f"adapter '{name}': '{where}' has no {PEFT_WEIGHTS}{pickled}; save it with safetensors")
    return config


def _check_base(name: str, refs: list[str], config_sha256: Optional[str], base: BaseModel,
                model_cfg: ModelConfig) -> None:
    trained_on = next((r for r in refs if r), "an unrecorded base")
    mismatch = UsageError(f"adapter '{name}' was trained on base model '{trained_on}', but this server runs "
                          f"'{base.label}'; serve it with that base model or leave it out")
    if config_sha256 and base.config_sha256 and config_sha256 != base.config_sha256:
        raise mismatch
    if not any(_resolves_to(ref, base, model_cfg) for ref in refs if ref):
        raise mismatch


def _resolves_to(ref: str, base: BaseModel, model_cfg: ModelConfig) -> bool:
    if ref in (base.label, base.location):
        return True
    from codex_cli.model import resolve_model_path

    try:
        found = resolve_model_path(dataclasses.replace(model_cfg, name=ref))
    except CodexError:
        return False  # not resolvable here: then it is not the base this server runs
    if isinstance(found, str):
        return found == base.location
    return str(Path(found).resolve()) == str(Path(base.location).resolve())
