"""Checkpoints of an FSDP-sharded model, in exactly the layout of an unsharded one.

Each rank holds a shard (a DTensor) of every parameter and optimizer tensor. Rank 0 writes the same
files as under DDP: the PEFT adapter or transformers model, and the optimizer state by parameter
position. The state comes from ``torch.distributed.checkpoint.state_dict`` (``get_model_state_dict``,
``get_optimizer_state_dict``: canonical parameter names, frozen parameters left out of a LoRA
adapter), kept sharded; the streaming writer (:mod:`.tensorfile`) gathers each tensor from the ranks
just before its bytes are written and drops it after. So a save holds at most one full tensor beyond
the shards, where ``StateDictOptions(full_state_dict=True)`` would gather them all at once. (A LoRA
adapter, the trainable weights only, is gathered whole for peft's ``save_pretrained``.)

Every rank takes part in every gather, in the same order: rank 0 writes, the others :func:`follow`.
Loading goes the other way: each full tensor read from a checkpoint is cut to this rank's shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict
from torch.distributed.tensor import DTensor, distribute_tensor

from codex_cli.checkpoint.layout import MODEL_WEIGHTS
from codex_cli.checkpoint.resume import split_optimizer_state
from codex_cli.checkpoint.tensorfile import gather_only, is_dtensor, save_tensors, whole, write_order
from codex_cli.errors import ModelError

SAFETENSORS_METADATA = {"format": "pt"}  # what transformers' save_pretrained writes in model.safetensors


class GatheredModel:
    """What ``store.save_checkpoint`` saves for a sharded model: the files ``save_pretrained`` writes unsharded."""

    def __init__(self, model: Any, *, lora: bool) -> None:
        self.model = model
        self.lora = lora
        state = get_model_state_dict(model, options=StateDictOptions(ignore_frozen_params=lora))
        names = {name: name for name in state} if lora else weight_file_names(model, state)
        self.tensors = {file_name: state[name] for file_name, name in names.items()}

    def save_pretrained(self, directory: Path) -> None:
        """Rank 0: write the adapter (peft) or the model (config by transformers, weights streamed)."""
        if self.lora:
            adapter = {name: gathered for name, gathered in _gathered(self.tensors)}
            self.model.save_pretrained(directory, state_dict=adapter)
            return
        self.model.save_pretrained(directory, state_dict={})  # config.json, generation_config.json: no weights
        save_tensors(Path(directory) / MODEL_WEIGHTS, self.tensors, SAFETENSORS_METADATA)

    def follow(self) -> None:
        """Any other rank: take part in the gathers of :meth:`save_pretrained`, writing nothing."""
        if self.lora:
            for _ in _gathered(self.tensors):
                pass
        else:
            gather_only(self.tensors)


class GatheredOptimizer:
    """The optimizer as ``save_training_state`` reads it: ``state_dict()`` in torch's own layout (parameters by
    position, as a DDP checkpoint stores them), its tensors still sharded until the writer gathers them."""

    def __init__(self, model: Any, optimizer: torch.optim.Optimizer) -> None:
        by_name = get_optimizer_state_dict(model, optimizer)
        position: dict[str, int] = {}
        groups = []
        for group in by_name["param_groups"]:
            ids = [position.setdefault(name, len(position)) for name in group["params"]]
            groups.append({**group, "params": ids})
        self._state = {"state": {position[name]: values for name, values in by_name["state"].items()},
                       "param_groups": groups}

    def state_dict(self) -> dict[str, Any]:
        return self._state

    def follow(self) -> None:
        """Any other rank: take part in the gathers of rank 0's ``save_training_state``."""
        gather_only(split_optimizer_state(self._state)[0])


def follow_save(model: GatheredModel, optimizer: GatheredOptimizer) -> None:
    """Ranks other than 0: take part in rank 0's checkpoint write, in its order (weights, then optimizer)."""
    model.follow()
    optimizer.follow()


def weight_file_names(model: Any, state: Mapping[str, Any]) -> dict[str, str]:
    """{name in model.safetensors: key of ``state``}: what transformers' ``save_pretrained`` writes for a full model.

    Worked out on meta stand-ins, without touching tensor data: keys transformers never saves and tied
    duplicates are dropped, and its reverse key renaming applied. A model whose weights transformers
    converts when saving (MoE experts fused in one parameter, split per expert in the file) cannot be
    written tensor by tensor: ModelError.
    """
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    stand_ins = {name: torch.empty(tensor.shape, dtype=tensor.dtype, device="meta") for name, tensor in state.items()}
    for name in getattr(model, "_keys_to_ignore_on_save", None) or ():
        stand_ins.pop(name, None)
    source = {id(tensor): name for name, tensor in stand_ins.items()}
    kept = remove_tied_weights_from_state_dict(dict(stand_ins), model)
    saved = revert_weight_conversion(model, kept)
    converted = [name for name, tensor in saved.items() if id(tensor) not in source]
    if converted:
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ModelError(f"train.strategy=fsdp cannot write a full '{kind}' checkpoint tensor by tensor: transformers "
                         f"converts its weights when saving ('{converted[0]}' is not one of its parameters); "
                         "use lora.enabled=true or train.strategy=ddp")
    return {name: source[id(tensor)] for name, tensor in saved.items()}


def shard_like(full: torch.Tensor, like: Any) -> Any:
    """``full`` cut to this rank's shard of ``like`` (a DTensor), as a DTensor of its own; ``full`` itself otherwise."""
    if not isinstance(like, DTensor):
        return full
    local = distribute_tensor(full.detach().to(like.device), like.device_mesh, like.placements, src_data_rank=None)
    # A copy of the slice, so the full tensor can be freed at once.
    return DTensor.from_local(local.to_local().clone(), like.device_mesh, like.placements, run_check=False,
                              shape=like.shape, stride=like.stride())


def shard_weights(model: Any, weights: dict[str, torch.Tensor], *, adapter: bool) -> dict[str, Any]:
    """Full ``weights`` (a model.safetensors or, ``adapter``, a PEFT adapter file) cut to ``model``'s shards."""
    if not any(is_dtensor(p) for p in model.parameters()):
        return weights
    params = model.state_dict()
    if adapter:  # file names -> the model's parameters, through peft's own mapping
        from peft import get_peft_model_state_dict

        params = get_peft_model_state_dict(model, state_dict=params)
    return {name: shard_like(weights.pop(name), params[name]) if name in params else weights.pop(name)
            for name in list(weights)}


def shard_optimizer_state(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
    """A full optimizer ``state_dict`` (by parameter position) with each tensor cut like its parameter's shard."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not any(is_dtensor(p) for p in params):
        return state_dict
    state = {index: {name: shard_like(value, params[index]) if torch.is_tensor(value) and value.dim() else value
                     for name, value in values.items()}
             for index, values in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _gathered(tensors: Mapping[str, Any]) -> Any:
    """(name, full CPU tensor) in the writer's order, each gathered from the ranks as it is reached."""
    for name in write_order(tensors):
        yield name, whole(tensors[name])
