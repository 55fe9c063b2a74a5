"""The read side of the checkpoint layout: latest.json, metadata, verification, safetensors headers."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from ckpt_fixtures import make_checkpoint, write_metadata

from codex_cli.checkpoint import layout
from codex_cli.errors import CheckpointError


@pytest.fixture(scope="module")
def lora_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A read-only LoRA checkpoint (tests that damage files copy it first)."""
    return make_checkpoint(tiny_model_dir, tmp_path_factory.mktemp("ckpts"), "epoch-0001")


@pytest.fixture
def ckpt_copy(lora_ckpt: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(lora_ckpt.parent, tmp_path / "ckpts")
    return tmp_path / "ckpts" / "epoch-0001"


def test_layout_module_does_not_import_torch() -> None:
    code = ("import sys, codex_cli.checkpoint.layout; "
            "print(sorted(m for m in ('torch','safetensors','transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_intact_checkpoint_verifies(lora_ckpt: Path) -> None:
    metadata = layout.verify_checkpoint(lora_ckpt)
    assert metadata["kind"] == "lora"
    assert set(metadata["files"]) == set(layout.file_manifest_names(lora_ckpt))
    assert layout.ADAPTER_WEIGHTS in metadata["files"] and layout.RNG_FILE in metadata["files"]
    assert layout.check_checkpoint(lora_ckpt, metadata["files"], rehash=True) == []


def test_is_checkpoint_and_listing(lora_ckpt: Path, tmp_path: Path) -> None:
    ckpts = lora_ckpt.parent
    assert layout.is_checkpoint(lora_ckpt)
    assert not layout.is_checkpoint(ckpts)
    assert layout.list_checkpoints(ckpts) == [lora_ckpt]
    assert layout.list_checkpoints(tmp_path / "nowhere") == []
    (tmp_path / ".tmp-epoch-0002-123").mkdir()
    (tmp_path / ".tmp-epoch-0002-123" / layout.METADATA_FILE).write_text("{}")
    assert layout.list_checkpoints(tmp_path) == []
    assert layout.unfinished_writes(tmp_path) == [tmp_path / ".tmp-epoch-0002-123"]


def test_read_latest_and_resolve(lora_ckpt: Path, tmp_path: Path) -> None:
    assert layout.read_latest(lora_ckpt.parent) == "epoch-0001"
    assert layout.resolve_checkpoint(lora_ckpt.parent) == lora_ckpt
    assert layout.resolve_checkpoint(lora_ckpt) == lora_ckpt
    assert layout.read_latest(tmp_path) is None


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("{not json", "latest.json in '{d}' is not valid JSON (Expecting property name enclosed in double "
                 "quotes at line 1); delete it or pass a checkpoint directory explicitly", id="invalid-json"),
    pytest.param('{"checkpoint": "epoch-0009"}', "latest.json in '{d}' names checkpoint 'epoch-0009', which does not "
                 "exist; delete it or pass a checkpoint directory explicitly", id="missing-checkpoint"),
    pytest.param('{"step": 3}', "latest.json in '{d}' has no \"checkpoint\" name; delete it or pass a checkpoint "
                 "directory explicitly", id="no-name"),
    pytest.param('{"checkpoint": "../elsewhere"}', "latest.json in '{d}' names '../elsewhere', which is not a "
                 "checkpoint name; delete it or pass a checkpoint directory explicitly", id="path-escape"),
    pytest.param('{"checkpoint": "half"}', "latest.json in '{d}' names 'half', which is not a complete checkpoint "
                 "(no metadata.json); delete it or pass a checkpoint directory explicitly", id="incomplete"),
])
def test_bad_latest_json(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / layout.LATEST_FILE).write_text(content)
    with pytest.raises(CheckpointError) as err:
        layout.read_latest(tmp_path)
    assert str(err.value) == message.format(d=tmp_path)


def test_resolve_rejects_plain_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        layout.resolve_checkpoint(tmp_path)
    assert str(err.value) == (f"'{tmp_path}' is not a codex checkpoint (no metadata.json) nor a checkpoint.dir with "
                              "latest.json; pass a checkpoint directory written by 'codex train'")
    with pytest.raises(CheckpointError, match="not found"):
        layout.resolve_checkpoint(tmp_path / "absent")


@pytest.mark.parametrize(("version", "hint"), [
    pytest.param(2, "upgrade codex to read it", id="newer"),
    pytest.param("1", "it was not written by a compatible codex", id="string"),
    pytest.param(None, "it was not written by a compatible codex", id="absent"),
])
def test_unknown_schema_version(ckpt_copy: Path, version: object, hint: str) -> None:
    meta = json.loads((ckpt_copy / layout.METADATA_FILE).read_text())
    meta["schema_version"] = version
    (ckpt_copy / layout.METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        layout.read_metadata(ckpt_copy)
    assert str(err.value) == (f"checkpoint '{ckpt_copy}' has schema_version {version!r}, but this codex reads "
                              f"version 1; {hint}")


def test_metadata_not_json_and_missing(ckpt_copy: Path) -> None:
    (ckpt_copy / layout.METADATA_FILE).write_text("{")
    with pytest.raises(CheckpointError) as err:
        layout.read_metadata(ckpt_copy)
    assert str(err.value).startswith(f"metadata.json in checkpoint '{ckpt_copy}' is not valid JSON (")
    (ckpt_copy / layout.METADATA_FILE).write_text(json.dumps({"schema_version": 1, "kind": "lora"}))
    with pytest.raises(CheckpointError) as err:
        layout.read_metadata(ckpt_copy)
    assert str(err.value) == f"metadata.json in checkpoint '{ckpt_copy}' lacks files; the checkpoint is corrupt"
    (ckpt_copy / layout.METADATA_FILE).unlink()
    with pytest.raises(CheckpointError) as err:
        layout.read_metadata(ckpt_copy)
    assert str(err.value) == (f"'{ckpt_copy}' is not a codex checkpoint (no metadata.json); pass a checkpoint "
                              "directory written by 'codex train'")


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_is_a_hash_mismatch_only_when_rehashing(ckpt_copy: Path) -> None:
    weights = ckpt_copy / layout.ADAPTER_WEIGHTS
    _flip_byte(weights, weights.stat().st_size - 3)  # inside tensor data: header still valid
    assert layout.verify_checkpoint(ckpt_copy, rehash=False)["kind"] == "lora"
    with pytest.raises(CheckpointError) as err:
        layout.verify_checkpoint(ckpt_copy)
    assert str(err.value) == (f"checkpoint '{ckpt_copy}' is corrupt: adapter_model.safetensors does not match its "
                              "SHA256 in metadata.json (changed or corrupted); restore it or use another checkpoint")


def test_truncated_deleted_and_extra_files(ckpt_copy: Path) -> None:
    weights = ckpt_copy / layout.ADAPTER_WEIGHTS
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:100])
    (ckpt_copy / layout.TRAINER_STATE_FILE).unlink()
    (ckpt_copy / "notes.txt").write_text("hi")
    files = layout.read_metadata(ckpt_copy)["files"]
    assert layout.check_checkpoint(ckpt_copy, files, rehash=False) == [
        f"adapter_model.safetensors is truncated (100 of {size} bytes)",
        "trainer_state/trainer_state.json is missing",
        "notes.txt is not listed in metadata.json",
    ]
    with pytest.raises(CheckpointError) as err:
        layout.verify_checkpoint(ckpt_copy, rehash=False)
    assert str(err.value) == (f"checkpoint '{ckpt_copy}' is corrupt: adapter_model.safetensors is truncated "
                              f"(100 of {size} bytes) (and 2 more); restore it or use another checkpoint")


def test_truncated_safetensors_with_matching_manifest_is_caught_by_header(ckpt_copy: Path) -> None:
    weights = ckpt_copy / layout.ADAPTER_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-16])
    write_metadata(ckpt_copy, json.loads((ckpt_copy / layout.METADATA_FILE).read_text()))  # manifest "agrees"
    problems = layout.check_checkpoint(ckpt_copy, layout.read_metadata(ckpt_copy)["files"], rehash=True)
    assert len(problems) == 1
    prefix = "adapter_model.safetensors is not a valid safetensors file (tensor data ends at byte "
    assert problems[0].startswith(prefix)


def test_header_matches_safetensors_library(lora_ckpt: Path) -> None:
    from safetensors import safe_open

    header = layout.read_safetensors_header(lora_ckpt / layout.ADAPTER_WEIGHTS)
    with safe_open(str(lora_ckpt / layout.ADAPTER_WEIGHTS), framework="pt") as f:
        keys = set(f.keys())
        shapes = {k: list(f.get_slice(k).get_shape()) for k in keys}
    assert set(header) - {"__metadata__"} == keys
    assert {k: v["shape"] for k, v in header.items() if k != "__metadata__"} == shapes


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param(b"abc", "shorter than the 8-byte header length", id="short"),
    pytest.param(struct.pack("<Q", 1 << 40) + b"{}", "header length 1099511627776 exceeds the file", id="huge-length"),
    pytest.param(struct.pack("<Q", 2) + b"[]", "header is not a JSON object", id="not-object"),
    pytest.param(struct.pack("<Q", 3) + b"{x}", "header is not valid JSON", id="not-json"),
    pytest.param(struct.pack("<Q", 2) + b'{"t": {"dtype": "F32"}}'[:2], "header is not valid JSON", id="cut"),
])
def test_malformed_headers(tmp_path: Path, data: bytes, reason: str) -> None:
    (tmp_path / "x.safetensors").write_bytes(data)
    with pytest.raises(ValueError) as err:
        layout.read_safetensors_header(tmp_path / "x.safetensors")
    assert str(err.value) == reason
