"""The streaming safetensors writer: files that safetensors itself reads back exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from codex_cli.checkpoint.layout import read_safetensors_header
from codex_cli.checkpoint.tensorfile import save_tensors


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    return {
        "f32": base,
        "f64": base.double(),
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "i64": torch.arange(7),
        "i32": torch.arange(5, dtype=torch.int32),
        "i16": torch.arange(3, dtype=torch.int16),
        "i8": torch.tensor([-3, 4], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "transposed": base.t(),  # not contiguous
        "sliced": base[:, 1:3],
    }


def test_round_trip_through_safetensors_itself(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    tensors = _tensors()
    save_tensors(path, tensors, metadata={"format": "codex-test"})
    loaded = load_file(str(path))
    assert sorted(loaded) == sorted(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype, name
        assert loaded[name].shape == tensor.shape, name
        assert torch.equal(loaded[name], tensor), name
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"format": "codex-test"}


def test_same_tensors_as_save_file_and_an_aligned_header(tmp_path: Path) -> None:
    tensors = {k: v.contiguous() for k, v in _tensors().items()}
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    save_tensors(ours, tensors)
    save_file(tensors, str(theirs))
    def data_bytes(path: Path) -> int:
        return path.stat().st_size - 8 - int.from_bytes(path.read_bytes()[:8], "little")

    assert data_bytes(ours) == data_bytes(theirs)
    assert {k for k in read_safetensors_header(ours) if k != "__metadata__"} == set(tensors)
    assert int.from_bytes(ours.read_bytes()[:8], "little") % 8 == 0
    for name, tensor in load_file(str(theirs)).items():
        assert torch.equal(load_file(str(ours))[name], tensor), name


def test_unsupported_dtype_names_the_tensor(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="tensor 'z' has dtype torch.complex64"):
        save_tensors(tmp_path / "x.safetensors", {"z": torch.zeros(2, dtype=torch.complex64)})
