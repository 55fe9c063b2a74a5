"""``codex ckpt inspect|load|export`` through CliRunner and through the installed ``codex``."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Callable

import pytest
from ckpt_fixtures import make_checkpoint, write_metadata, write_metrics
from conftest import run_codex
from typer.testing import CliRunner

from codex_cli.checkpoint import layout
from codex_cli.cli import app

WIDE = {"COLUMNS": "220"}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("ckpts")
    make_checkpoint(tiny_model_dir, root, "epoch-0001", kind="lora", step=4, train_loss=5.25, eval_loss=5.5)
    make_checkpoint(tiny_model_dir, root, "epoch-0002", kind="lora", step=8, seed=1, train_loss=4.75, eval_loss=5.0)
    write_metrics(root, [5.8, 5.6, 5.3, 5.1, 5.0, 4.9, 4.8, 4.7], [5.5, 5.0])
    return root


@pytest.fixture
def work(ckpts: Path, tmp_path: Path) -> Path:
    """A private copy of the checkpoint dir that a test may damage."""
    return Path(shutil.copytree(ckpts, tmp_path / "ckpts"))


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, env=WIDE)


def test_inspect_directory_table(ckpts: Path) -> None:
    result = _invoke("ckpt", "inspect", str(ckpts))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(line for line in lines if "epoch-0001" in line)
    second = next(line for line in lines if "epoch-0002" in line)
    assert "★" not in first and "★" in second
    assert "5.2500" in first and "5.5000" in first and "4.7500" in second and second.rstrip().endswith(" ok")
    assert "★ latest: epoch-0002" in result.stdout
    assert "train loss 5.8000 █" in result.stdout and "eval loss per epoch: 5.5000 → 5.0000" in result.stdout


def test_inspect_json_and_verify(ckpts: Path) -> None:
    result = _invoke("ckpt", "inspect", str(ckpts), "--verify", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["type"], data["ok"], data["latest"], data["rehashed"]) == ("directory", True, "epoch-0002", True)
    assert [(r["name"], r["step"], r["latest"], r["problems"]) for r in data["rows"]] == [
        ("epoch-0001", 4, False, []), ("epoch-0002", 8, True, [])]
    assert data["metrics"]["losses"][0] == 5.8 and len(data["metrics"]["sparkline"]) == 8


def test_inspect_one_checkpoint_with_tensors(ckpts: Path) -> None:
    result = _invoke("ckpt", "inspect", str(ckpts / "epoch-0001"), "--tensors", "--verify")
    assert result.exit_code == 0, result.output
    assert "integrity" in result.stdout and "verified" in result.stdout and "896 trainable" in result.stdout
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in result.stdout
    data = json.loads(_invoke("ckpt", "inspect", str(ckpts / "epoch-0001"), "--tensors", "--json").stdout)
    adapter = [t for t in data["tensors"] if t["file"] == layout.ADAPTER_WEIGHTS]
    assert len(adapter) == 8 and sum(t["numel"] for t in adapter) == 896
    assert data["metadata"]["global_step"] == 4 and data["type"] == "checkpoint"


def _big_sparse_checkpoint(root: Path, numel: int) -> Path:
    """A checkpoint whose weights file declares ``numel`` float32s but whose data is a sparse hole."""
    path = root / "big"
    path.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [numel], "data_offsets": [0, numel * 4]}}).encode()
    with open(path / layout.MODEL_WEIGHTS, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + numel * 4)
    files = {layout.MODEL_WEIGHTS: {"sha256": "0" * 64, "size": (path / layout.MODEL_WEIGHTS).stat().st_size}}
    (path / layout.METADATA_FILE).write_text(json.dumps({"schema_version": 1, "kind": "full", "files": files}))
    return path


def test_tensors_reads_headers_only(tmp_path: Path) -> None:
    from codex_cli.checkpoint.catalog import summarize

    path = _big_sparse_checkpoint(tmp_path, 16 * 1024 * 1024)  # 64 MiB declared
    io = Path("/proc/self/io")
    before = int(io.read_text().split("rchar: ")[1].split()[0]) if io.exists() else None
    summary = summarize(path, tensors=True)
    if before is not None:
        read = int(io.read_text().split("rchar: ")[1].split()[0]) - before
        assert read < 1024 * 1024
    assert summary.tensors == [{"file": layout.MODEL_WEIGHTS, "name": "w", "dtype": "F32", "shape": [16 * 1024 * 1024],
                                "numel": 16 * 1024 * 1024}]
    assert summary.problems == []  # sizes and header are fine; the bogus hash is only seen by --verify
    result = _invoke("ckpt", "inspect", str(path), "--verify")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"codex: error: checkpoint '{path}' is corrupt: model.safetensors does not match "
                                     "its SHA256 in metadata.json (changed or corrupted); restore it or use another "
                                     "checkpoint")


def _flip(ckpt: Path) -> None:
    weights = ckpt / layout.ADAPTER_WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x40
    weights.write_bytes(bytes(data))


def _truncate(ckpt: Path) -> None:
    weights = ckpt / layout.ADAPTER_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])


def _schema(ckpt: Path) -> None:
    meta = json.loads((ckpt / layout.METADATA_FILE).read_text())
    write_metadata(ckpt, dict(meta, schema_version=2))


def _latest(text: str) -> Callable[[Path], None]:
    return lambda ckpt: (ckpt.parent / layout.LATEST_FILE).write_text(text)


_FIX = "restore it or use another checkpoint"
_LATEST_FIX = "delete it or pass a checkpoint directory explicitly"
CORRUPTIONS = [
    pytest.param(_flip, False, "checkpoint '{c}' is corrupt: adapter_model.safetensors does not match its SHA256 in "
                 f"metadata.json (changed or corrupted); {_FIX}", id="flipped-byte"),
    pytest.param(_truncate, False, "checkpoint '{c}' is corrupt: adapter_model.safetensors is truncated "
                 f"(1000 of {{size}} bytes); {_FIX}", id="truncated"),
    pytest.param(lambda c: (c / layout.ADAPTER_CONFIG).unlink(), False,
                 f"checkpoint '{{c}}' is corrupt: adapter_config.json is missing; {_FIX}", id="deleted"),
    pytest.param(_schema, False, "checkpoint '{c}' has schema_version 2, but this codex reads version 1; upgrade codex "
                 "to read it", id="schema-version"),
    pytest.param(_latest("{oops"), True, "latest.json in '{d}' is not valid JSON (Expecting property name enclosed in "
                 f"double quotes at line 1); {_LATEST_FIX}", id="latest-invalid-json"),
    pytest.param(_latest('{"checkpoint": "epoch-0007"}'), True, "latest.json in '{d}' names checkpoint 'epoch-0007', "
                 f"which does not exist; {_LATEST_FIX}", id="latest-missing-checkpoint"),
]


@pytest.mark.parametrize(("damage", "via_dir", "message"), CORRUPTIONS)
def test_load_refuses_damaged_checkpoints(work: Path, damage, via_dir: bool, message: str) -> None:
    ckpt = work / "epoch-0002"
    size = (ckpt / layout.ADAPTER_WEIGHTS).stat().st_size
    damage(ckpt)
    target = str(work if via_dir else ckpt)
    expected = "codex: error: " + message.format(c=ckpt, d=work, size=size)
    result = _invoke("ckpt", "load", target)
    assert (result.exit_code, result.stderr.strip()) == (1, expected)
    proc = run_codex("ckpt", "load", target)
    assert (proc.returncode, proc.stderr.strip()) == (1, expected)
    if not via_dir:
        proc = run_codex("ckpt", "inspect", target, "--verify")
        assert (proc.returncode, proc.stderr.strip()) == (1, expected)


def test_inspect_directory_flags_the_corrupt_checkpoint(work: Path) -> None:
    _flip(work / "epoch-0001")
    (work / ".tmp-epoch-0003-999").mkdir()
    result = _invoke("ckpt", "inspect", str(work), "--verify")
    assert result.exit_code == 1
    assert "CORRUPT: adapter_model.safetensors does not match" in result.stdout
    assert "unfinished write .tmp-epoch-0003-999" in result.stdout
    assert result.stderr.strip() == (f"codex: error: 1 of 2 checkpoints in '{work}' failed checks (epoch-0001: "
                                     "adapter_model.safetensors does not match its SHA256 in metadata.json (changed or "
                                     f"corrupted)); run 'codex ckpt inspect {work}/epoch-0001 --verify'")
    assert _invoke("ckpt", "inspect", str(work)).exit_code == 0  # without --verify only sizes/headers are checked


@pytest.mark.parametrize(("command", "target", "message"), [
    pytest.param("inspect", "{tmp}", "no checkpoints in '{target}'; run 'codex train' to write some, or pass a "
                 "checkpoint directory", id="inspect-empty-dir"),
    pytest.param("inspect", "{tmp}/nope", "checkpoint '{target}' not found; pass a checkpoint directory or a "
                 "checkpoint.dir", id="inspect-missing"),
    pytest.param("load", "{model}", "'{target}' is not a codex checkpoint (no metadata.json) nor a checkpoint.dir "
                 "with latest.json; pass a checkpoint directory written by 'codex train'", id="load-model-dir"),
    pytest.param("load", "{tmp}/nope", "checkpoint '{target}' not found; run 'codex ckpt inspect DIR' to list "
                 "checkpoints", id="load-missing"),
])
def test_no_checkpoint_at_path(tiny_model_dir: Path, tmp_path: Path, command: str, target: str, message: str) -> None:
    target = target.format(tmp=tmp_path, model=tiny_model_dir)
    result = _invoke("ckpt", command, target)
    assert (result.exit_code, result.stderr.strip()) == (1, "codex: error: " + message.format(target=target))


def test_load_in_process(ckpts: Path) -> None:
    result = _invoke("ckpt", "load", str(ckpts / "epoch-0001"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["name"], report["kind"], report["integrity"], report["threads"]) == (
        "epoch-0001", "lora", "verified (sha256)", 1)


def test_installed_codex_inspect_load_export(ckpts: Path, tmp_path: Path) -> None:
    proc = run_codex("ckpt", "inspect", str(ckpts), env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "★ latest: epoch-0002" in proc.stdout
    proc = run_codex("ckpt", "load", str(ckpts), env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "Loaded epoch-0002" in proc.stdout and "verified (sha256)" in proc.stdout and "logits shape" in proc.stdout
    assert proc.stderr == ""
    proc = run_codex("ckpt", "export", str(ckpts / "epoch-0001"), str(tmp_path / "hf"), "--merge")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"exported {ckpts / 'epoch-0001'} (lora-merged) to {tmp_path / 'hf'}: 5 files"
    assert (tmp_path / "hf" / "model.safetensors").is_file() and proc.stderr == ""
    proc = run_codex("ckpt", "export", str(ckpts / "epoch-0001"), str(tmp_path / "hf"))
    assert (proc.returncode, proc.stderr.strip()) == (2, f"codex: error: export target '{tmp_path / 'hf'}' already "
                                                         "exists and is not an empty directory; choose a new path")



def test_inspect_directory_with_bad_latest_json_still_lists(work: Path) -> None:
    (work / layout.LATEST_FILE).write_text("[1, 2")
    result = _invoke("ckpt", "inspect", str(work))
    assert result.exit_code == 1
    assert "epoch-0001" in result.stdout and "epoch-0002" in result.stdout and "★" not in result.stdout
    assert result.stderr.strip() == (f"codex: error: latest.json in '{work}' is not valid JSON (Expecting ',' "
                                     "delimiter at line 1); delete it or pass a checkpoint directory explicitly")


def test_inspect_never_imports_torch(ckpts: Path) -> None:
    """inspect reads JSON and safetensors headers only: no torch, safetensors or transformers import."""
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from codex_cli.cli import app; "
            f"r = CliRunner().invoke(app, ['ckpt', 'inspect', {str(ckpts)!r}, '--verify']); "
            f"r2 = CliRunner().invoke(app, ['ckpt', 'inspect', {str(ckpts / 'epoch-0001')!r}, '--tensors']); "
            "print(r.exit_code, r2.exit_code, sorted(m for m in ('torch', 'safetensors', 'transformers', 'peft', "
            "'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0 0 []"


def test_tensors_needs_one_checkpoint(ckpts: Path) -> None:
    result = _invoke("ckpt", "inspect", str(ckpts), "--tensors")
    assert (result.exit_code, result.stderr.strip()) == (
        1, f"codex: error: --tensors needs one checkpoint, and '{ckpts}' is a directory of checkpoints; "
           f"pass '{ckpts}/<name>'")


def test_inspect_directory_reports_an_unreadable_checkpoint(work: Path) -> None:
    _schema(work / "epoch-0001")
    result = _invoke("ckpt", "inspect", str(work), "--json")
    assert result.exit_code == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["epoch-0001"]["problems"] == [f"checkpoint '{work / 'epoch-0001'}' has schema_version 2, but this "
                                              "codex reads version 1; upgrade codex to read it"]
    assert rows["epoch-0002"]["problems"] == [] and rows["epoch-0002"]["latest"] is True
    assert result.stderr.startswith(f"codex: error: 1 of 2 checkpoints in '{work}' failed checks (epoch-0001: ")
