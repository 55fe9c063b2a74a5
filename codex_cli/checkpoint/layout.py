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
import json
import struct
from pathlib import Path
from typing import Any

from codex_cli.errors import CheckpointError

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
    return {rel: {"sha256": sha256_file(checkpoint / rel), "size": (checkpoint / rel).stat().st_size}
            for rel in file_manifest_names(checkpoint)}


# ---------------------------------------------------------------------------------------------
# Reading what is on disk. Every failure is a one-line CheckpointError naming the path and a fix.

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja",
)
REQUIRED_METADATA_KEYS = ("schema_version", "kind", "files")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit


def is_checkpoint(path: Path) -> bool:
    """True when ``path`` is a complete codex checkpoint directory (it has metadata.json)."""
    path = Path(path)
    return path.is_dir() and not path.name.startswith(TMP_PREFIX) and (path / METADATA_FILE).is_file()


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The complete checkpoints directly inside ``ckpt_dir``, by name; temp dirs of unfinished writes are skipped."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.iterdir() if is_checkpoint(p))


def unfinished_writes(ckpt_dir: Path) -> list[Path]:
    """Temp directories left by checkpoint writes that never completed (a crash or kill -9)."""
    ckpt_dir = Path(ckpt_dir)
    return sorted(p for p in ckpt_dir.glob(f"{TMP_PREFIX}*") if p.is_dir()) if ckpt_dir.is_dir() else []


def read_metric_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The rows of a metrics.jsonl file, and how many lines were not JSON objects (a last line cut short by a kill)."""
    if not Path(path).is_file():
        return [], 0
    rows, skipped = [], 0
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def read_latest(ckpt_dir: Path) -> str | None:
    """The checkpoint name in ``<ckpt_dir>/latest.json``, or None when there is no latest.json yet.

    Raises CheckpointError when latest.json is unreadable, malformed, or names a checkpoint that is
    not a complete checkpoint directory next to it.
    """
    ckpt_dir = Path(ckpt_dir)
    latest = ckpt_dir / LATEST_FILE
    if not latest.exists():
        return None
    fix = "delete it or pass a checkpoint directory explicitly"
    data = _read_json(latest, f"{LATEST_FILE} in '{ckpt_dir}'", fix)
    name = data.get("checkpoint") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{LATEST_FILE} in '{ckpt_dir}' has no \"checkpoint\" name; {fix}")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise CheckpointError(f"{LATEST_FILE} in '{ckpt_dir}' names '{name}', which is not a checkpoint name; {fix}")
    if not (ckpt_dir / name).is_dir():
        raise CheckpointError(f"{LATEST_FILE} in '{ckpt_dir}' names checkpoint '{name}', which does not exist; {fix}")
    if not is_checkpoint(ckpt_dir / name):
        raise CheckpointError(
            f"{LATEST_FILE} in '{ckpt_dir}' names '{name}', which is not a complete checkpoint "
            f"(no {METADATA_FILE}); {fix}"
        )
    return name


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory itself, or the latest one when ``path`` is a checkpoint.dir with latest.json."""
    path = Path(path)
    if is_checkpoint(path):
        return path
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' not found; run 'codex ckpt inspect DIR' to list checkpoints")
    name = read_latest(path) if path.is_dir() else None
    if name is None:
        raise CheckpointError(
            f"'{path}' is not a codex checkpoint (no {METADATA_FILE}) nor a checkpoint.dir with {LATEST_FILE}; "
            "pass a checkpoint directory written by 'codex train'"
        )
    return path / name


def read_metadata(checkpoint: Path) -> dict[str, Any]:
    """The parsed metadata.json of a checkpoint, after checking its schema version and required keys."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise CheckpointError(f"checkpoint '{checkpoint}' not found; run 'codex ckpt inspect DIR' to list checkpoints")
    if not (checkpoint / METADATA_FILE).is_file():
        raise CheckpointError(
            f"'{checkpoint}' is not a codex checkpoint (no {METADATA_FILE}); "
            "pass a checkpoint directory written by 'codex train'"
        )
    data = _read_json(checkpoint / METADATA_FILE, f"{METADATA_FILE} in checkpoint '{checkpoint}'",
                      "the checkpoint is corrupt; restore it or use another checkpoint")
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{METADATA_FILE} in checkpoint '{checkpoint}' is not a JSON object; the checkpoint is corrupt"
        )
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        hint = "upgrade codex to read it" if newer else "it was not written by a compatible codex"
        raise CheckpointError(
            f"checkpoint '{checkpoint}' has schema_version {version!r}, "
            f"but this codex reads version {SCHEMA_VERSION}; {hint}"
        )
    missing = [key for key in REQUIRED_METADATA_KEYS if key not in data]
    if missing or not isinstance(data["files"], dict) or data["kind"] not in ("lora", "full"):
        what = f"lacks {', '.join(missing)}" if missing else "has a malformed 'files' or 'kind'"
        raise CheckpointError(f"{METADATA_FILE} in checkpoint '{checkpoint}' {what}; the checkpoint is corrupt")
    return data


def check_checkpoint(checkpoint: Path, files: dict[str, Any], *, rehash: bool) -> list[str]:
    """Problems found comparing a checkpoint's files with its manifest ([] when intact).

    Always checks presence, sizes, unlisted files and safetensors headers (cheap); ``rehash``
    also recomputes every SHA256 (reads every byte).
    """
    checkpoint = Path(checkpoint)
    problems: list[str] = []
    for rel, entry in sorted(files.items()):
        problem = _check_file(checkpoint / rel, rel, entry, rehash=rehash)
        if problem:
            problems.append(problem)
    for rel in sorted(set(file_manifest_names(checkpoint)) - set(files)):
        problems.append(f"{rel} is not listed in {METADATA_FILE}")
    return problems


def verify_checkpoint(checkpoint: Path, *, rehash: bool = True) -> dict[str, Any]:
    """Read the metadata and check every file (re-hashing when ``rehash``); return the metadata.

    Raises CheckpointError naming the first problem when a file is missing, truncated, changed or corrupt.
    """
    metadata = read_metadata(checkpoint)
    problems = check_checkpoint(checkpoint, metadata["files"], rehash=rehash)
    if problems:
        raise CheckpointError(corrupt_message(checkpoint, problems))
    return metadata


def corrupt_message(checkpoint: Path | str, problems: list[str]) -> str:
    """The one-line error for a checkpoint whose files failed :func:`check_checkpoint` (``problems`` non-empty)."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"checkpoint '{checkpoint}' is corrupt: {problems[0]}{more}; restore it or use another checkpoint"


def file_manifest_names(checkpoint: Path) -> list[str]:
    """Relative posix paths of every file in a checkpoint except metadata.json (no hashing)."""
    names = (p.relative_to(checkpoint).as_posix() for p in Path(checkpoint).rglob("*") if p.is_file())
    return sorted(name for name in names if name != METADATA_FILE)


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, read without touching tensor data.

    The format is an 8-byte little-endian header length, then that many bytes of JSON mapping each
    tensor name to {"dtype", "shape", "data_offsets"} (plus an optional "__metadata__"). Raises
    ValueError when the header is malformed or its offsets run past the end of the file.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("shorter than the 8-byte header length")
        length = struct.unpack("<Q", prefix)[0]
        if length > min(_MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"header length {length} exceeds the file")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError("header is not valid JSON") from e
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    end = max((_data_end(name, info) for name, info in header.items() if name != "__metadata__"), default=0)
    if 8 + length + end > size:
        raise ValueError(f"tensor data ends at byte {8 + length + end} but the file has {size}")
    return header


def _data_end(name: str, info: Any) -> int:
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise ValueError(f"tensor '{name}' has no valid data_offsets")
    return offsets[1]


def _check_file(path: Path, rel: str, entry: Any, *, rehash: bool) -> str | None:
    if not (isinstance(entry, dict) and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)):
        return f"{rel} has a malformed entry in {METADATA_FILE}"
    if not path.is_file():
        return f"{rel} is missing"
    size, expected = path.stat().st_size, entry["size"]
    if size < expected:
        return f"{rel} is truncated ({size} of {expected} bytes)"
    if size > expected:
        return f"{rel} has {size} bytes, {expected} expected"
    if rel.endswith(".safetensors"):
        try:
            read_safetensors_header(path)
        except (OSError, ValueError) as e:
            return f"{rel} is not a valid safetensors file ({e})"
    if rehash and sha256_file(path) != entry["sha256"]:
        return f"{rel} does not match its SHA256 in {METADATA_FILE} (changed or corrupted)"
    return None


def _read_json(path: Path, label: str, fix: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{label} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from e
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{label} is not UTF-8 text; {fix}") from e
    except OSError as e:
        raise CheckpointError(f"{label} cannot be read ({e.strerror or type(e).__name__}); {fix}") from e
