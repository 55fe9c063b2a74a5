"""A streaming safetensors writer for training state (optimizer moments, RNG states).

``safetensors.torch.save_file`` first builds the whole file in memory, which doubles peak memory
and costs a copy of every byte. This writer emits the standard header, then each tensor's bytes
straight from its storage, so saving is one pass over the data. The files are plain safetensors:
``safetensors.torch.load_file`` and ``safe_open`` read them (tests check the round trip).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

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


def save_tensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` (CPU or not, any layout) to ``path`` as a safetensors file, streaming."""
    import torch

    names = _dtype_names()
    flat: list[tuple[str, torch.Tensor]] = []
    header: dict[str, object] = {}
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        if tensor.dtype not in names:
            raise TypeError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors cannot store")
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": names[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + size],
        }
        flat.append((name, tensor))
        offset += size
    if metadata:
        header["__metadata__"] = dict(metadata)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % _ALIGN)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for _, tensor in flat:
            if tensor.numel():
                # a byte view of the tensor's own storage, no copy (torch is little-endian wherever it ships)
                handle.write(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
