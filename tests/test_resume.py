"""Exact resume: every piece of training state round-trips, kills at any point resume to identical bits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from training_support import assert_bitwise_equal, make_config, metrics, run_training, write_jsonl

from codex_cli.checkpoint import store
from codex_cli.checkpoint.layout import file_manifest, read_latest
from codex_cli.checkpoint.resume import (
    TrainState,
    capture_rng,
    check_compatible,
    load_checkpoint_for_resume,
    resolve_resume,
    restore_rng,
    save_training_state,
)
from codex_cli.errors import CheckpointError

# LoRA dropout on (global RNG in every step), accumulation with a partial last window, 2 epochs of 5 steps.
RUN = ("lora.enabled=true", "lora.dropout=0.1", "train.grad_accum=2", "train.epochs=2", "checkpoint.every_steps=1",
       "train.warmup_steps=2")


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL: raised where the process would die."""


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of RUN; its checkpoint.dir."""
    root = tmp_path_factory.mktemp("reference")
    run_training(make_config(tiny_model_dir, write_jsonl(root / "train.jsonl"), root / "ck", *RUN))
    return root / "ck"


def _crash_then_resume(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       points: list[str], *extra: str) -> Path:
    def die() -> None:
        raise SimulatedCrash()

    monkeypatch.setattr(store, "_die", die)
    cfg = make_config(tiny_model_dir, write_jsonl(tmp_path / "train.jsonl"), tmp_path / "ck", *RUN, *extra)
    for number, point in enumerate(points):
        monkeypatch.setenv(store.CRASH_ENV, point)
        with pytest.raises(SimulatedCrash):
            run_training(cfg, resume=number > 0)
    monkeypatch.delenv(store.CRASH_ENV)
    result = run_training(cfg, resume=True)
    assert result.resumed_from is not None and result.global_step == 10
    return tmp_path / "ck"


@pytest.mark.parametrize("points", [
    pytest.param(["step:3"], id="after-step-3-before-its-checkpoint"),
    pytest.param(["step:5"], id="epoch-end-before-eval"),
    pytest.param(["write-weights:7"], id="mid-checkpoint-write"),
    pytest.param(["before-latest:6", "step:8"], id="twice"),
])
def test_kill_and_resume_gives_bitwise_identical_weights(tiny_model_dir: Path, tmp_path: Path, reference: Path,
                                                         monkeypatch: pytest.MonkeyPatch, points: list[str]) -> None:
    ck = _crash_then_resume(tiny_model_dir, tmp_path, monkeypatch, points)
    for name in ("adapter_model.safetensors", "trainer_state/optimizer.safetensors", "trainer_state/rng.safetensors"):
        assert_bitwise_equal(reference / "epoch-0002" / name, ck / "epoch-0002" / name)
    strip = [{k: v for k, v in m.items() if k != "tokens_per_s"} for m in metrics(ck)]
    assert strip == [{k: v for k, v in m.items() if k != "tokens_per_s"} for m in metrics(reference)]


def test_full_run_resumes_bitwise_identically(tiny_model_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    args = ("train.max_steps=4", "checkpoint.every_steps=2")
    run_training(make_config(tiny_model_dir, data, tmp_path / "ref", *args))
    monkeypatch.setattr(store, "_die", lambda: (_ for _ in ()).throw(SimulatedCrash()))
    monkeypatch.setenv(store.CRASH_ENV, "step:3")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", *args)
    with pytest.raises(SimulatedCrash):
        run_training(cfg)
    monkeypatch.delenv(store.CRASH_ENV)
    run_training(cfg, resume=True)
    assert_bitwise_equal(tmp_path / "ref" / "step-00000004" / "model.safetensors",
                         tmp_path / "ck" / "step-00000004" / "model.safetensors")


def test_resume_from_an_explicit_path_and_with_more_epochs(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "checkpoint.keep_last=1"))
    more = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "train.epochs=2",
                       "checkpoint.keep_last=3", "threads=2")
    result = run_training(more, resume_path=tmp_path / "ck" / "epoch-0001")
    assert (result.epochs_done, result.global_step, result.steps_this_run) == (2, 18, 9)
    assert result.checkpoints_written == ("epoch-0002",)


@pytest.mark.parametrize(("override", "shown"), [
    pytest.param("lora.r=4", "lora.r (8 -> 4)", id="lora-rank"),
    pytest.param("train.batch_size=2", "train.batch_size (4 -> 2)", id="batch-size"),
    pytest.param("seed=7", "seed (1234 -> 7)", id="seed"),
    pytest.param("train.scheduler=linear", "train.scheduler ('cosine' -> 'linear')", id="schedule"),
])
def test_resume_with_a_config_that_changes_the_run_is_refused(tiny_model_dir: Path, tmp_path: Path,
                                                              override: str, shown: str) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "train.max_steps=1"))
    with pytest.raises(CheckpointError) as info:
        run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", override), resume=True)
    assert str(info.value) == (
        f"cannot resume from '{tmp_path / 'ck' / 'step-00000001'}': the config differs in {shown}; "
        "resume with the checkpoint's values or start a new run in another checkpoint.dir"
    )


def test_resume_with_other_data_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=1"))
    write_jsonl(data, [f"x = {i}\n" for i in range(20)])
    with pytest.raises(CheckpointError, match=r"the training data changed \(18 train / 2 eval examples now, "
                                              r"36 train / 4 eval examples in the checkpoint\)"):
        run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=2"), resume=True)


def test_resume_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        resolve_resume(tmp_path, None)
    assert str(info.value) == (f"nothing to resume: no {tmp_path / 'latest.json'} yet; train without --resume first, "
                               "or pass --resume PATH")


def test_compatible_changes_are_allowed() -> None:
    saved = {"config": {"seed": 1, "threads": 1, "train": {"epochs": 1, "max_steps": None},
                        "checkpoint": {"keep_last": None}}, "base_model": {"config_sha256": "a"}}
    now = {"seed": 1, "threads": 4, "train": {"epochs": 3, "max_steps": 10}, "checkpoint": {"keep_last": 2}}
    check_compatible(Path("ck"), saved, now, {"config_sha256": "a"})
    with pytest.raises(CheckpointError, match="base model config"):
        check_compatible(Path("ck"), saved, now, {"config_sha256": "b"})


def test_rng_state_round_trips_exactly() -> None:
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    saved = capture_rng()
    first = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    restore_rng(*saved)
    assert (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()) == first


def test_optimizer_and_counters_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
    for _ in range(2):
        sum((p ** 2).sum() for p in params).backward()
        opt.step()
    state = TrainState(epoch=1, step_in_epoch=3, global_step=7, epoch_loss_sum=0.1 + 0.2, initial_eval_loss=2.5)
    save_training_state(tmp_path, opt, state)
    meta = {"schema_version": 1, "kind": "full", "files": file_manifest(tmp_path)}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    _, restored = load_checkpoint_for_resume(tmp_path)
    assert restored.state == state
    fresh = torch.optim.AdamW(params, lr=1.0)
    fresh.load_state_dict(restored.optimizer)
    assert fresh.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for index, values in opt.state_dict()["state"].items():
        for name, value in values.items():
            assert torch.equal(fresh.state_dict()["state"][index][name], value)


def test_resuming_an_older_checkpoint_rewinds_latest_and_replaces_newer_ones(tiny_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=4", "checkpoint.every_steps=2")
    run_training(cfg)
    before = (tmp_path / "ck" / "step-00000004" / "model.safetensors").read_bytes()
    result = run_training(cfg, resume_path=tmp_path / "ck" / "step-00000002")
    assert (result.steps_this_run, result.checkpoints_written) == (2, ("step-00000004",))
    assert read_latest(tmp_path / "ck") == "step-00000004"
    assert (tmp_path / "ck" / "step-00000004" / "model.safetensors").read_bytes() == before  # same config, same bits


def test_resuming_into_a_dir_that_holds_another_run_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    for name in ("a", "b"):
        run_training(make_config(tiny_model_dir, data, tmp_path / name, "train.max_steps=1"))
    with pytest.raises(CheckpointError) as info:
        run_training(make_config(tiny_model_dir, data, tmp_path / "b", "train.max_steps=2"),
                     resume_path=tmp_path / "a")
    assert str(info.value) == (
        f"cannot resume '{tmp_path / 'a' / 'step-00000001'}' into checkpoint.dir '{tmp_path / 'b'}': it already holds "
        "another run (latest.json names 'step-00000001'); "
        "set checkpoint.dir to the checkpoint's directory or an empty one"
    )


def test_resuming_a_finished_run_trains_nothing_and_writes_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=2")
    run_training(cfg)
    lines = (tmp_path / "ck" / "metrics.jsonl").read_text()
    result = run_training(cfg, resume=True)
    assert (result.steps_this_run, result.checkpoints_written, result.global_step) == (0, (), 2)
    assert (tmp_path / "ck" / "metrics.jsonl").read_text() == lines
