"""A streaming safetensors writer for checkpoints (model weights of a sharded model, optimizer moments, RNG states).

``safetensors.torch.save_file`` first builds the whole file in memory, which doubles peak memory
and costs a copy of every byte. This writer emits the standard header, then each tensor's bytes
straight from its storage, one tensor at a time, so saving is one pass over the data. The files are
plain safetensors: ``safetensors.torch.load_file`` and ``safe_open`` read them (tests check the round trip).

A DTensor (a shard of an FSDP model) is written whole: its header entry comes from its global shape,
and it is gathered from every rank just before its bytes are written, then dropped. The other ranks
take part through :func:`gather_only`, which visits the same tensors in the same order
(:func:`write_order`) without writing.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import torch

_ALIGN = 8  # safetensors pads the header so tensor data starts 8-byte aligned


def _dtype_names() -> dict[object, str]:
    import torch

    return {
        torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
        torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
        torch.uint8: "U8", torch.bool: "BOOL",
    }


def write_order(tensors: Mapping[str, Any]) -> list[str]:
    """The order tensors are written (and gathered) in: by name."""
    return sorted(tensors)


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the CPU, contiguous and, for a DTensor, gathered from every rank (a collective)."""
    if is_dtensor(tensor):
        tensor = tensor.full_tensor()
    return tensor.detach().to("cpu").contiguous()


def gather_only(tensors: Mapping[str, torch.Tensor]) -> None:
    """Take part in gathering the DTensors of ``tensors`` while another rank writes them with :func:`save_tensors`."""
    for name in write_order(tensors):
        if is_dtensor(tensors[name]):
            whole(tensors[name])


def save_tensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` (CPU or not, any layout, DTensors gathered) to ``path`` as a safetensors file, streaming."""
    names = _dtype_names()
    header: dict[str, object] = {}
    offset = 0
    order = write_order(tensors)
    for name in order:
        tensor = tensors[name]
        if tensor.dtype not in names:
            raise TypeError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors cannot store")
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": names[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + size],
        }
        offset += size
    if metadata:
        header["__metadata__"] = dict(metadata)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % _ALIGN)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for name in order:
            _write(handle, whole(tensors[name]))


def _write(handle: Any, tensor: torch.Tensor) -> None:
    import torch

    if tensor.numel():
        # a byte view of the tensor's own storage, no copy (torch is little-endian wherever it ships)
        handle.write(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))


def is_dtensor(tensor: Any) -> bool:
    """True for a DTensor: a shard of a global tensor (an FSDP parameter, its gradient or optimizer state)."""
    dtensor = sys.modules.get("torch.distributed.tensor")  # not imported: nothing can be a DTensor
    return dtensor is not None and isinstance(tensor, dtensor.DTensor)
