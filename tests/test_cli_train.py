"""``codex train`` through the real command: summary, --quiet, errors, accumulation, kill -9 and Ctrl-C + --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import codex_exe, run_codex
from training_support import assert_bitwise_equal, assert_tensors_close, make_config, run_training, write_jsonl
from typer.testing import CliRunner

from codex_cli.cli import app

FAST = ("train.batch_size=4", "data.mask_secrets=false", "threads=1")
# A run long enough to be killed in the middle: 4 epochs of 9 steps, a checkpoint after every step.
LONG = ("--lora", "--epochs", "4", "checkpoint.every_steps=1", "lora.dropout=0.1", *FAST)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl")


def test_train_in_process_prints_the_summary(tiny_model_dir: Path, tmp_path: Path, data: Path) -> None:
    args = ["train", "--lora", "--epochs", "1", "--model", str(tiny_model_dir), "--data", str(data),
            f"checkpoint.dir={tmp_path / 'ck'}", *FAST]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for row in ("parameters", "8,192 trainable / 47,264 total", "36 train / 4 eval, 0 secret(s) masked, cache miss",
                "9 of 9 (9 this run), 1 epoch(s) done", "eval loss", "tokens/s, 1 thread(s)", "epoch-0001"):
        assert row in result.stdout
    assert "model " in result.stderr and "trainable of" in result.stderr  # the notes go to stderr


def test_quiet_prints_only_the_checkpoint_path_and_the_cache_hits_the_second_time(tiny_model_dir: Path, tmp_path: Path,
                                                                                  data: Path) -> None:
    common = ["--max-steps", "2", "--batch-size", "4", "--lr", "1e-3", "--model", str(tiny_model_dir),
              "--data", str(data), *FAST]
    proc = run_codex("train", "--quiet", *common, f"checkpoint.dir={tmp_path / 'a'}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{tmp_path / 'a' / 'step-00000002'}\n" and proc.stderr == ""
    meta = json.loads((tmp_path / "a" / "step-00000002" / "metadata.json").read_text())
    assert meta["config"]["train"]["lr"] == 1e-3 and meta["config"]["lora"]["enabled"] is False
    again = CliRunner().invoke(app, ["train", *common, f"checkpoint.dir={tmp_path / 'b'}"], catch_exceptions=False)
    assert again.exit_code == 0 and "cache hit" in again.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    pytest.param(["--resume"], 1, "codex: error: nothing to resume: no {ck}/latest.json yet; train without --resume "
                 "first, or pass --resume PATH", id="resume-nothing"),
    pytest.param(["--resume", "a", "b"], 2, "codex: error: --resume takes one checkpoint, got 2 (a, b); pass a single "
                 "PATH", id="resume-two-paths"),
    pytest.param(["--resume", "{tmp}/nope"], 1, "codex: error: checkpoint '{tmp}/nope' not found; run 'codex ckpt "
                 "inspect DIR' to list checkpoints", id="resume-missing-path"),
    pytest.param(["--model", "{tmp}/no-model"], 2, "codex: error: model directory '{tmp}/no-model' not found; check "
                 "the path in model.name", id="missing-model"),
], ids=str)
def test_errors_are_one_line_with_their_exit_code(tiny_model_dir: Path, tmp_path: Path, data: Path, args: list[str],
                                                  code: int, message: str) -> None:
    ck = tmp_path / "ck"
    filled = [a.format(tmp=tmp_path, ck=ck) for a in args]
    base = ["--model", str(tiny_model_dir), "--data", str(data)] if "--model" not in args else ["--data", str(data)]
    result = CliRunner().invoke(app, ["train", *base, *filled, f"checkpoint.dir={ck}", *FAST], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (code, message.format(tmp=tmp_path, ck=ck) + "\n")


def test_missing_data_file_is_a_data_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--model", str(tiny_model_dir), "--data", str(tmp_path / "none.jsonl"),
                                      f"checkpoint.dir={tmp_path / 'ck'}", *FAST], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.startswith("codex: error: ") and str(tmp_path / "none.jsonl") in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "ck" / "latest.json").exists()


@pytest.mark.slow
def test_batch_8_accum_1_matches_batch_4_accum_2(tiny_model_dir: Path, tmp_path: Path, data: Path) -> None:
    proc = run_codex("train", "--lora", "-q", "--epochs", "1", "--model", str(tiny_model_dir), "--data", str(data),
                     "--batch-size", "8", "lora.dropout=0", "data.mask_secrets=false",
                     f"checkpoint.dir={tmp_path / 'b8'}")
    assert proc.returncode == 0, proc.stderr
    run_training(make_config(tiny_model_dir, data, tmp_path / "b4x2", "lora.enabled=true", "lora.dropout=0",
                             "train.batch_size=4", "train.grad_accum=2"))
    assert_tensors_close(tmp_path / "b8" / "epoch-0001" / "adapter_model.safetensors",
                         tmp_path / "b4x2" / "epoch-0001" / "adapter_model.safetensors", rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def long_reference(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted LONG run, in this process; its final adapter."""
    root = tmp_path_factory.mktemp("long")
    cfg = make_config(tiny_model_dir, write_jsonl(root / "train.jsonl"), root / "ck", "lora.enabled=true",
                      "train.epochs=4", "checkpoint.every_steps=1", "lora.dropout=0.1")
    run_training(cfg)
    return root / "ck" / "epoch-0004" / "adapter_model.safetensors"


def _start_and_signal(args: list[str], ck: Path, sig: int, after_lines: int) -> tuple[int, str]:
    proc = subprocess.Popen([codex_exe(), "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    metrics = ck / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and metrics.read_text().count("\n") >= after_lines:
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr.decode()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "after_lines", "code"), [
    pytest.param(signal.SIGKILL, 6, -signal.SIGKILL, id="kill-9"),
    pytest.param(signal.SIGINT, 13, 130, id="ctrl-c"),
])
def test_stopped_run_resumes_to_identical_weights(tiny_model_dir: Path, tmp_path: Path, data: Path,
                                                  long_reference: Path, sig: int, after_lines: int, code: int) -> None:
    ck = tmp_path / "ck"
    args = ["--model", str(tiny_model_dir), "--data", str(data), *LONG, f"checkpoint.dir={ck}"]
    returncode, stderr = _start_and_signal(args, ck, sig, after_lines)
    assert returncode == code, stderr
    latest = json.loads((ck / "latest.json").read_text())
    assert latest["global_step"] < 36
    if sig == signal.SIGINT:
        assert stderr.endswith(
            f"codex: interrupted; saved {ck / latest['checkpoint']}, continue with 'codex train --resume'\n")
    resumed = run_codex("train", "--resume", *args, env={"COLUMNS": "400"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {ck / latest['checkpoint']}" in resumed.stderr
    assert_bitwise_equal(long_reference, ck / "epoch-0004" / "adapter_model.safetensors")
