"""Training state that makes resume exact: optimizer, schedule, every RNG, data position, counters.

Tensors go to safetensors (``trainer_state/optimizer.safetensors``, ``trainer_state/rng.safetensors``),
everything else to ``trainer_state/trainer_state.json``. No pickle: python's RNG state is a tuple of
ints and numpy's is an array plus three scalars, so both are stored exactly.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from codex_cli.checkpoint.layout import (
    ADAPTER_WEIGHTS,
    MODEL_WEIGHTS,
    OPTIMIZER_FILE,
    RNG_FILE,
    TRAINER_STATE_DIR,
    TRAINER_STATE_FILE,
    read_latest,
    resolve_checkpoint,
    verify_checkpoint,
)
from codex_cli.config import flat_dict
from codex_cli.errors import CheckpointError

if TYPE_CHECKING:
    import torch

STATE_FORMAT = 1
# Config keys that may change between a run and its resume without changing what the run means.
RESUMABLE_CHANGES = (
    "threads", "train.epochs", "train.max_steps", "train.log_every", "train.gradient_checkpointing", "train.nproc",
    "train.strategy", "checkpoint.", "serve.", "track.", "model.local_files_only", "model.allow_download",
    "data.cache_dir",
)
# On another number of processes these may change, as long as processes x batch_size x grad_accum does not.
PER_STEP_KEYS = ("train.batch_size", "train.grad_accum")


@dataclass
class TrainState:
    """Counters of a run, saved in every checkpoint; a checkpoint is always at an optimizer-step boundary."""

    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0  # optimizer steps done in the current epoch = the data position
    global_step: int = 0
    samples_seen: int = 0
    tokens_seen: int = 0  # input tokens (padding excluded)
    epoch_loss_sum: float = 0.0  # summed token loss of the current epoch, for its mean
    epoch_target_tokens: int = 0
    initial_eval_loss: Optional[float] = None
    last_eval_loss: Optional[float] = None
    best_eval_loss: Optional[float] = None
    schedule: dict[str, Any] = field(default_factory=dict)  # the lr schedule in force (name, warmup, total)
    data: dict[str, Any] = field(default_factory=dict)  # fingerprint of the data: example counts
    world_size: int = 1  # processes that trained it; with batch_size x grad_accum, the examples per step
    mlflow_run_id: Optional[str] = None  # the MLflow run this run logs to (codex_cli.tracking); --resume continues it


@dataclass
class Restored:
    """What a checkpoint gives back to the loop besides the weights."""

    state: TrainState
    optimizer: dict[str, Any]  # a state_dict for optimizer.load_state_dict
    rng_tensors: dict[str, Any]
    rng_json: dict[str, Any]


def resolve_resume(ckpt_dir: Path, path: Path | None) -> Path:
    """The checkpoint to resume: ``path`` (a checkpoint or a checkpoint.dir) or latest.json in ``ckpt_dir``."""
    if path is not None:
        return resolve_checkpoint(Path(path))
    name = read_latest(Path(ckpt_dir))
    if name is None:
        raise CheckpointError(
            f"nothing to resume: no {Path(ckpt_dir) / 'latest.json'} yet; train without --resume first, "
            "or pass --resume PATH"
        )
    return Path(ckpt_dir) / name


def check_compatible(checkpoint: Path, metadata: dict[str, Any], config: dict[str, Any], base: dict[str, Any],
                     *, saved_world_size: int = 1, world_size: int = 1) -> None:
    """Refuse to resume when the config or the base model changes the meaning of the run, listing the keys.

    A resume on another number of processes may change batch_size and grad_accum when the examples
    per optimizer step stay the same (2 processes x batch 4 = 1 process x batch 8).
    """
    saved, current = flat_dict(metadata.get("config") or {}), flat_dict(config)
    rescaled = saved_world_size != world_size
    if rescaled:
        _check_examples_per_step(checkpoint, saved, current, saved_world_size, world_size)
    differ = [key for key in sorted(set(saved) | set(current))
              if saved.get(key) != current.get(key) and not key.startswith(RESUMABLE_CHANGES)
              and not (rescaled and key in PER_STEP_KEYS)]
    shown = [f"{key} ({saved.get(key)!r} -> {current.get(key)!r})" for key in differ]
    saved_base = (metadata.get("base_model") or {}).get("config_sha256")
    if saved_base and base.get("config_sha256") and saved_base != base["config_sha256"]:
        shown.append("base model config (its config.json changed since the checkpoint)")
    if shown:
        raise CheckpointError(
            f"cannot resume from '{checkpoint}': the config differs in {', '.join(shown)}; "
            "resume with the checkpoint's values or start a new run in another checkpoint.dir"
        )


def _check_examples_per_step(checkpoint: Path, saved: dict[str, Any], current: dict[str, Any],
                             saved_world_size: int, world_size: int) -> None:
    def per_step(flat: dict[str, Any], world: int) -> tuple[int, str]:
        batch, accum = flat.get("train.batch_size"), flat.get("train.grad_accum")
        procs = "process" if world == 1 else "processes"
        return world * batch * accum, f"{world} {procs} x batch_size {batch} x grad_accum {accum}"

    (before, how_before), (now, how_now) = per_step(saved, saved_world_size), per_step(current, world_size)
    if before != now:
        raise CheckpointError(
            f"cannot resume from '{checkpoint}': it was trained with {before} examples per optimizer step "
            f"({how_before}) but this run has {now} ({how_now}); set train.batch_size so that "
            f"processes x batch_size x grad_accum = {before}"
        )


def load_checkpoint_for_resume(checkpoint: Path) -> tuple[dict[str, Any], Restored]:
    """Verify every file of ``checkpoint`` against its manifest and read its training state."""
    from safetensors.torch import load_file

    metadata = verify_checkpoint(checkpoint, rehash=True)
    if not (checkpoint / TRAINER_STATE_FILE).is_file():
        raise CheckpointError(f"checkpoint '{checkpoint}' has no {TRAINER_STATE_FILE}, so it cannot be resumed; "
                              "it can still be loaded, inspected or exported")
    doc = json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    if doc.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{TRAINER_STATE_FILE} in '{checkpoint}' has format {doc.get('format')!r}, "
                              f"this codex reads {STATE_FORMAT}; resume it with the codex that wrote it")
    tensors = load_file(str(checkpoint / OPTIMIZER_FILE))
    optimizer = _optimizer_state_dict(doc["optimizer"], tensors)
    state = TrainState(**doc["progress"])
    restored = Restored(state, optimizer, load_file(str(checkpoint / RNG_FILE)), doc["rng"])
    return metadata, restored


def save_training_state(directory: Path, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
    """Write optimizer, RNG and counters under ``directory/trainer_state/`` (safetensors + JSON)."""
    from codex_cli.checkpoint.tensorfile import save_tensors

    (Path(directory) / TRAINER_STATE_DIR).mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_json = split_optimizer_state(optimizer.state_dict())
    rng_tensors, rng_json = capture_rng()
    save_tensors(Path(directory) / OPTIMIZER_FILE, opt_tensors)
    save_tensors(Path(directory) / RNG_FILE, rng_tensors)
    doc = {"format": STATE_FORMAT, "progress": dataclasses.asdict(state), "optimizer": opt_json, "rng": rng_json}
    (Path(directory) / TRAINER_STATE_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def load_weights(model: Any, checkpoint: Path, kind: str) -> None:
    """Load the trained weights of ``checkpoint`` into ``model`` (a PeftModel for "lora", else a full model)."""
    from safetensors.torch import load_file

    from codex_cli.checkpoint.sharded import shard_weights  # under FSDP each rank keeps its shard of each tensor

    if kind == "lora":
        from peft import set_peft_model_state_dict

        adapter = shard_weights(model, load_file(str(checkpoint / ADAPTER_WEIGHTS)), adapter=True)
        result = set_peft_model_state_dict(model, adapter)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise CheckpointError(f"adapter in '{checkpoint}' has weights this model lacks ({unexpected[0]}, ...); "
                                  "resume with the checkpoint's lora settings")
        return
    weights = load_file(str(checkpoint / MODEL_WEIGHTS))
    missing, unexpected = model.load_state_dict(shard_weights(model, dict(weights), adapter=False), strict=False)
    untied = [key for key in missing if not _is_tied(model, key, weights)]
    if unexpected or untied:
        bad = (unexpected or untied)[0]
        raise CheckpointError(f"weights in '{checkpoint}' do not match the model ({bad}); "
                              "resume with the same base model")


def capture_rng() -> tuple[dict[str, Any], dict[str, Any]]:
    """Every RNG state this process uses: torch CPU/CUDA and numpy as tensors, python's as JSON."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch_cpu": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{index}"] = cuda_state
    version, internal, gauss = random.getstate()
    doc = {"python": {"version": version, "state": list(internal), "gauss": gauss},
           "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    return tensors, doc


def restore_rng(tensors: dict[str, Any], doc: dict[str, Any]) -> None:
    """Put back every RNG state captured by :func:`capture_rng` (call last, after building the model)."""
    import numpy as np
    import torch

    py = doc["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npd = doc["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((npd["kind"], keys, npd["pos"], npd["has_gauss"], npd["cached_gaussian"]))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[key] for key in sorted(k for k in tensors if k.startswith("torch_cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def split_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimizer state_dict as the tensors of optimizer.safetensors and the JSON of trainer_state.json."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, per_param in state_dict["state"].items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
              for group in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_state_dict(doc: dict[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, values in doc.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in doc["param_groups"]]
    return {"state": state, "param_groups": groups}


def _is_tied(model: Any, key: str, loaded: dict[str, Any]) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    if key not in params:
        return False
    return any(name in loaded and p is params[key] for name, p in params.items() if name != key)
