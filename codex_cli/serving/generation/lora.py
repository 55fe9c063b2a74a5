"""Many LoRA adapters in one batch: every row of a forward pass gets its own adapter (or none).

peft loads, holds and deletes the adapters (``add_adapter``, ``set_peft_model_state_dict``,
``delete_adapter``). Its own mixed-batch path (``adapter_names=[...]`` on every forward) registers a
hook on every LoRA layer at every call and runs one sub-batch per distinct adapter; on codex-tiny a
16-row decode step over 8 adapters took 24 ms, against 6 ms for one active adapter
(benchmarks/serve_load.py --phases adapters, 1 thread). So here each LoRA linear layer keeps its
adapters stacked, Aᵀ as [slots, in, r] and (B·scaling)ᵀ as [slots, r, out] with ranks zero-padded and
slot 0 all zeros for rows on the bare base; peft's own LoRA term is switched off and a forward hook adds
``x @ A[slot]ᵀ @ B[slot]ᵀ`` for all rows at once with two batched matmuls, so the cost does not grow
with the number of distinct adapters in the batch. The stacks are rebuilt, on the worker thread between
two steps, whenever an adapter is added or removed.

Supported: plain LoRA on linear layers (peft's ``lora.Linear``). DoRA and other variants, LoRA bias,
embedding or convolution targets and ``modules_to_save`` are refused when the adapter is added.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch

from codex_cli.errors import UsageError, first_line

UNSUPPORTED_CONFIG = {"use_dora": "DoRA", "lora_bias": "a LoRA bias", "modules_to_save": "modules_to_save",
                      "trainable_token_indices": "trainable tokens", "target_parameters": "target_parameters"}


@dataclass
class PreparedAdapter:
    """An adapter's config and weights, read from disk off the worker thread."""

    config: Any  # peft LoraConfig
    weights: dict[str, torch.Tensor]


def read_adapter(path: str, device: str) -> PreparedAdapter:
    """Read a LoRA adapter directory (adapter_config.json + adapter_model.safetensors) onto ``device``."""
    from peft import PeftConfig
    from peft.utils import load_peft_weights

    try:
        config = PeftConfig.from_pretrained(path)
        weights = load_peft_weights(path, device=device)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read the LoRA adapter ({first_line(e)})") from e
    unsupported = [label for key, label in UNSUPPORTED_CONFIG.items() if getattr(config, key, None)]
    if unsupported:
        raise UsageError(f"the adapter uses {', '.join(unsupported)}, which codex serve cannot batch per request; "
                         "serve it alone with --checkpoint")
    config.inference_mode = True
    return PreparedAdapter(config, weights)


def attach(model: Any, name: str, adapter: PreparedAdapter) -> Any:
    """Add ``adapter`` to ``model`` as ``name`` (wrapping a plain model in peft first); return the peft model."""
    from peft import PeftModel, get_peft_model, set_peft_model_state_dict

    from codex_cli.model import quiet_peft_deprecation

    try:
        with quiet_peft_deprecation():
            if isinstance(model, PeftModel):
                model.add_adapter(name, adapter.config, low_cpu_mem_usage=True)
            else:
                model = get_peft_model(model, adapter.config, adapter_name=name, low_cpu_mem_usage=True)
            result = set_peft_model_state_dict(model, adapter.weights, adapter_name=name, low_cpu_mem_usage=True)
    except (ValueError, KeyError, RuntimeError) as e:
        raise UsageError(f"the adapter does not fit this base model ({first_line(e)})") from e
    missing = [key for key in result.missing_keys if f".{name}." in key or key.endswith(f".{name}")]
    if result.unexpected_keys or missing:
        detach(model, name)
        raise UsageError("the adapter does not fit this base model (its weights do not match the layers it targets)")
    return model.eval()


def detach(model: Any, name: str) -> None:
    """Delete adapter ``name`` from the peft model (another one becomes peft's active adapter first, quietly)."""
    remaining = [other for other in model.peft_config if other != name]
    if name in model.active_adapters and remaining:
        model.set_adapter(remaining[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns when the last active adapter goes; nothing is active here
        model.delete_adapter(name)


class RowLora:
    """The per-row LoRA term of a peft model's linear layers, for the rows of the next forward pass."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._slots: dict[str, int] = {}
        self._stacks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(layer) -> (A, B·scaling)
        self._index: Optional[torch.Tensor] = None
        self.refresh()

    def refresh(self) -> None:
        """Re-stack every adapter the model holds (after one was added or removed); peft's own term goes off."""
        from peft.tuners.lora import LoraLayer

        names = list(self.model.peft_config)
        self._slots = {name: i for i, name in enumerate(names, start=1)}
        self._stacks = {}
        for module in self.model.modules():
            if not isinstance(module, LoraLayer):
                continue
            module.enable_adapters(False)  # base_layer only; the hook adds every row's own term
            stacks = self._stack(module, names)
            if stacks is not None:
                self._stacks[id(module)] = stacks
            if getattr(module, "_codex_row_lora", None) is not self:
                module.register_forward_hook(self._hook)
                module._codex_row_lora = self

    @staticmethod
    def check(model: Any, name: str) -> None:
        """Raise UsageError when adapter ``name`` uses something the stacked layers cannot apply."""
        from peft.tuners.lora import LoraLayer
        from peft.tuners.lora.layer import Linear

        for module in model.modules():
            if not isinstance(module, LoraLayer) or (name not in module.lora_A and name not in module.lora_embedding_A):
                continue
            if not isinstance(module, Linear) or name in module.lora_variant or name in module.lora_embedding_A:
                raise UsageError(f"the adapter targets a '{type(module).__name__}' layer or uses a LoRA variant, which "
                                 "codex serve cannot batch per request (plain LoRA on linear layers only); serve it "
                                 "alone with --checkpoint")

    @contextlib.contextmanager
    def rows(self, adapters: list[Optional[str]], device: Any) -> Iterator[None]:
        """Apply these adapters (None: the bare base), one per row, during the forward passes inside."""
        slots = [self._slots[name] if name is not None else 0 for name in adapters]
        self._index = torch.tensor(slots, dtype=torch.long, device=device) if any(slots) else None
        try:
            yield
        finally:
            self._index = None

    def _hook(self, module: Any, args: tuple[Any, ...], output: torch.Tensor) -> Optional[torch.Tensor]:
        index = self._index
        stacks = self._stacks.get(id(module))
        if index is None or stacks is None:
            return None
        a, b = stacks
        low = torch.bmm(args[0].to(a.dtype), a.index_select(0, index))  # [rows, seq, r]
        if output.dtype == b.dtype:
            return torch.baddbmm(output, low, b.index_select(0, index))
        return output + torch.bmm(low, b.index_select(0, index)).to(output.dtype)

    @staticmethod
    def _stack(module: Any, names: list[str]) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        present = [name for name in names if name in module.lora_A]
        if not present:
            return None
        weight = module.lora_A[present[0]].weight
        rank = max(module.lora_A[name].weight.shape[0] for name in present)
        a = weight.new_zeros((len(names) + 1, module.in_features, rank))  # Aᵀ and (B·scaling)ᵀ: contiguous for bmm
        b = weight.new_zeros((len(names) + 1, rank, module.out_features))
        for slot, name in enumerate(names, start=1):
            if name in present:
                down, up = module.lora_A[name].weight, module.lora_B[name].weight
                a[slot, :, : down.shape[0]] = down.T
                b[slot, : up.shape[1]] = (up * module.scaling[name]).T
        return a, b
