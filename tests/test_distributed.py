"""Distributed training: the sampler, the runtime helpers, the launcher, and real 2-process gloo runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from safetensors.torch import load_file

from codex_cli import distributed
from codex_cli.errors import DistributedError, ModelError, UsageError
from codex_cli.launch import failure_error, torchrun_args, worker_argv
from codex_cli.training.batches import MicroBatch, epoch_order, epoch_windows, rank_windows

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
WORKER = TESTS / "distributed_worker.py"
TORCHRUN_TIMEOUT_S = 120


def _windows(n: int, batch: int, accum: int, world: int, rank: int = 0, epoch: int = 0) -> list[list[MicroBatch]]:
    """What ``rank`` trains on when ``world`` ranks each take ``batch`` examples per micro-step."""
    windows = epoch_windows(n, batch_size=batch * world, grad_accum=accum, seed=1234, epoch=epoch)
    return rank_windows(windows, rank, world)


def _merged(n: int, batch: int, accum: int, world: int, epoch: int = 0) -> list[list[list[int]]]:
    """The windows of all ranks put back together: each global micro-batch's real examples, rank by rank."""
    per_rank = [_windows(n, batch, accum, world, rank, epoch) for rank in range(world)]
    assert len({len(windows) for windows in per_rank}) == 1  # every rank takes the same number of steps
    merged = []
    for step, window in enumerate(per_rank[0]):
        assert len({len(windows[step]) for windows in per_rank}) == 1  # ... and of micro-steps in each
        merged.append([[i for windows in per_rank if not windows[step][k].stand_in for i in windows[step][k].indices]
                       for k in range(len(window))])
    return merged


# --- which examples each rank trains on ------------------------------------------------------------------


@pytest.mark.parametrize(("n", "batch", "accum", "world"), [
    (64, 4, 1, 2), (37, 4, 2, 2), (23, 2, 3, 3), (9, 4, 1, 4), (5, 1, 1, 2),
], ids=["even", "short-last-window", "three-ranks", "fewer-left-than-ranks", "batch-1"])
def test_n_ranks_with_batch_b_see_what_one_rank_with_batch_nb_sees(n: int, batch: int, accum: int, world: int) -> None:
    single = epoch_windows(n, batch_size=batch * world, grad_accum=accum, seed=1234, epoch=2)
    assert _merged(n, batch, accum, world, epoch=2) == single
    assert [[mb.indices for mb in window] for window in _windows(n, batch * world, accum, 1, epoch=2)] == single


def test_full_global_batches_give_every_rank_a_contiguous_slice() -> None:
    order = epoch_order(16, 1234, 0)
    assert _windows(16, 4, 1, 2, rank=1)[0] == [MicroBatch(order[4:8])]


def test_a_rank_left_without_examples_gets_a_stand_in() -> None:
    # 9 examples, 2 ranks x batch 4: the last global micro-batch holds 1 example, for rank 0 only.
    last = [_windows(9, 4, 1, 2, rank)[-1][0] for rank in (0, 1)]
    assert not last[0].stand_in and len(last[0].indices) == 1
    assert last[1] == MicroBatch(last[0].indices, stand_in=True)


def test_positions_do_not_depend_on_the_world_size() -> None:
    # The same examples per optimizer step (2 x 2 x 2 = 1 x 4 x 2 = 8): step k covers the same examples.
    two, one = _merged(37, 2, 2, 2, epoch=1), _windows(37, 4, 2, 1, epoch=1)
    assert len(two) == len(one) == 5
    for step in range(5):
        assert sorted(i for mb in two[step] for i in mb) == sorted(i for mb in one[step] for i in mb.indices)


# --- the runtime in one process, and torchrun's environment -------------------------------------------------


def test_single_process_helpers_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = distributed.init_distributed("cpu")
    assert world == distributed.World() and not world.enabled and world.is_main
    assert not distributed.launched_by_torchrun()
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(model, world) is model
    assert distributed.wrap_model(model, world, strategy="fsdp") is model
    assert list(distributed.in_lockstep(model, [1, 2])) == [1, 2]
    assert distributed.all_reduce_sum(3) == 3 and distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.broadcast_json({"a": 1}) == {"a": 1}
    assert distributed.agree_to_stop(False, step=1) is False
    with distributed.main_process_first():
        pass
    distributed.shutdown()


@pytest.mark.parametrize("user_setting", [None, "33554432"], ids=["codex-sets-it", "the-user-set-it"])
def test_fsdp_on_the_cpu_fixes_glibc_mmap_threshold_unless_the_user_did(monkeypatch: pytest.MonkeyPatch,
                                                                         user_setting: str | None) -> None:
    from codex_cli.distributed import fsdp

    calls = []
    monkeypatch.setattr(fsdp.ctypes, "CDLL", lambda name: SimpleNamespace(mallopt=lambda *args: calls.append(args)))
    if user_setting is None:
        monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    else:
        monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", user_setting)
    fsdp._return_freed_buffers_to_the_system()
    assert calls == ([] if user_setting else [(-3, 1 << 20)])  # M_MMAP_THRESHOLD, 1 MiB


def test_bf16_under_fsdp_is_fsdps_mixed_precision_on_cuda_and_autocast_on_the_cpu() -> None:
    import torch

    from codex_cli.distributed.fsdp import mixed_precision

    policy = mixed_precision("bf16", "cuda")
    assert (policy.param_dtype, policy.reduce_dtype) == (torch.bfloat16, torch.float32)
    assert mixed_precision("fp32", "cuda").param_dtype is None
    assert mixed_precision("bf16", "cpu").param_dtype is None  # train_step's autocast does bf16 there, as under DDP


def test_world_comes_from_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.detect_world() == distributed.World(rank=3, world_size=4, local_rank=1)
    assert not distributed.detect_world().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(UsageError, match=r"^RANK=4 is outside WORLD_SIZE=4; launch codex with torchrun$"):
        distributed.detect_world()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(UsageError, match=r"^environment variable RANK='x' is not an integer; launch codex with torch"):
        distributed.detect_world()


def test_backend_follows_the_device() -> None:
    import torch

    assert distributed.backend_for("cuda") == "nccl"
    assert distributed.backend_for("cpu") == "gloo"
    assert distributed.backend_for("auto") == ("nccl" if torch.cuda.is_available() else "gloo")


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(UsageError) as info:
        distributed.check_strategy("zero3")
    assert str(info.value) == ("train.strategy 'zero3' is not supported; use one of ddp, fsdp "
                               "(docs/distributed.md says which to pick)")


# --- the launcher --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["train", "--nproc", "2", "--epochs", "1"], ["train", "--nproc=2", "--epochs", "1"], ["train", "--epochs", "1"],
], ids=["separate", "equals", "absent"])
def test_worker_argv_drops_only_nproc(argv: list[str]) -> None:
    assert worker_argv(["--config", "c.yaml", *argv]) == ["--config", "c.yaml", "train", "--epochs", "1"]


def test_torchrun_args_run_codex_as_a_module_on_this_machine() -> None:
    args = torchrun_args(2, ["train", "--nproc", "2", "--quiet"])
    assert args[:3] == ["--standalone", "--nnodes=1", "--nproc-per-node=2"]
    assert args[-4:] == ["-m", "codex_cli", "train", "--quiet"]


def test_failure_names_the_rank_that_died_not_the_ranks_torchrun_stopped() -> None:
    failures = {0: SimpleNamespace(exitcode=-signal.SIGTERM, pid=11, timestamp=5),
                1: SimpleNamespace(exitcode=17, pid=12, timestamp=5)}
    error = failure_error(failures, world_size=2)
    assert isinstance(error, DistributedError) and error.exit_code == 17
    assert str(error) == ("rank 1 exited with code 17 (pid 12) in a 2-process run, so every rank was stopped; "
                          "see its output above (add --debug for tracebacks)")
    killed = failure_error({0: SimpleNamespace(exitcode=1, pid=10, timestamp=1),
                            2: SimpleNamespace(exitcode=-signal.SIGKILL, pid=13, timestamp=1)}, world_size=4)
    assert str(killed).startswith("rank 2 was killed by SIGKILL (pid 13) and rank 0 exited with code 1 (pid 10) "
                                  "in a 4-process run") and killed.exit_code == 1


# --- real processes: torchrun with gloo on this CPU ----------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]))
    env.update(extra)
    return env


def _torchrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    return subprocess.run([str(torchrun), "--standalone", "--nproc-per-node=2", *args], capture_output=True,
                          text=True, env=env or _env(), timeout=TORCHRUN_TIMEOUT_S)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_skipping_sync_and_clipping_match_one_process_on_the_global_batch(tmp_path: Path,
                                                                                    strategy: str) -> None:
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one.json"), "4", strategy],
                         capture_output=True, text=True, env=_env(), timeout=TORCHRUN_TIMEOUT_S)
    two = _torchrun(str(WORKER), str(tmp_path / "two.json"), "4", strategy)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    single, double = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "two"))
    assert (single["world_size"], double["world_size"]) == (1, 2)
    assert single["steps"] == double["steps"] == 2  # 21 examples / 4 per micro-step / 2 micro-steps: 3 windows
    assert min(single["norms"]) > 0.5  # every step clipped: under FSDP the norm spans both ranks' shards
    assert double["norms"] == pytest.approx(single["norms"], rel=1e-6)
    for name, values in single["params"].items():
        assert double["params"][name] == pytest.approx(values, abs=1e-6), name
    assert (double["rank_sum"], double["any_rank_last"], double["broadcast"]) == (3, True, {"from": 0, "path": "ck/é"})
    # FSDP's skipped sync: nothing reduce-scattered into the sharded .grad until the window's last micro-step
    assert all(all(hidden) for hidden in double["unsynced_grads_hidden"]) == (strategy == "fsdp")
    if strategy == "fsdp":  # fully_shard keeps each rank's own slice: differing weights are refused, not mixed
        assert double["other_weights"] == ("rank 1 built other initial weights than rank 0; every node needs the "
                                           "same model files at model.name and the same codex")
    # the streaming writer gathered every shard into one file, and cutting it again gives each rank its shard
    assert single["reloaded_shards_equal"] and double["reloaded_shards_equal"]
    streamed = {name: t.flatten().tolist() for name, t in load_file(str(tmp_path / "two.safetensors")).items()}
    assert streamed == double["params"]


def test_a_dead_rank_stops_the_whole_launch_with_its_name(tmp_path: Path) -> None:
    code = ("import sys\nfrom codex_cli.errors import CodexError\nfrom codex_cli.launch import launch_local\n"
            "try:\n    sys.exit(launch_local(2, sys.argv[1:], module='distributed_worker'))\n"
            "except CodexError as e:\n    print(f'codex: error: {e}', file=sys.stderr)\n    sys.exit(e.exit_code)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.json"), "4", "ddp"], capture_output=True,
                            text=True, env=_env(CODEX_TEST_EXIT_AT="1:1"), timeout=TORCHRUN_TIMEOUT_S)
    assert result.returncode == distributed.FAULT_EXIT_CODE
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("codex: error: rank 1 exited with code 17 (pid ")
    assert last.endswith(") in a 2-process run, so every rank was stopped; see its output above "
                         "(add --debug for tracebacks)")
    assert not (tmp_path / "out.json").exists()


# --- codex train on 2 processes: equivalence, rank-0 writes, resume across world sizes, failures ---------------
#
# One process with batch 4 and two with batch 2 (grad_accum 2 in both: no_sync is exercised) train the tiny
# model fully (Llama has no dropout) on 37 examples: 10 global micro-batches, 5 optimizer steps, the last
# micro-batch holding 1 example, so rank 1 trains on a stand-in there. The 5 eval examples split 3 / 2, so
# with batch 2 rank 0 scores two batches and rank 1 one (under FSDP it runs a stand-in forward meanwhile).

RUN_TIMEOUT_S = 180
STEPS = 5


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import build_tiny_model
    from training_support import write_jsonl

    root = tmp_path_factory.mktemp("dist")
    build_tiny_model(root / "model")
    write_jsonl(root / "train.jsonl", [f"def g{i}(x):\n    return x - {i} * {i % 5}\n" for i in range(37)])
    write_jsonl(root / "eval.jsonl", [f"def h{i}(y):\n    return y + {i}\n" for i in range(5)])
    return root


def _train_args(root: Path, ckpt: str, batch: int) -> list[str]:
    return ["train", "--quiet", f"model.name={root / 'model'}", f"data.train={root / 'train.jsonl'}",
            f"data.eval={root / 'eval.jsonl'}", f"checkpoint.dir={root / ckpt}", f"train.batch_size={batch}",
            "train.grad_accum=2", "train.epochs=1", "checkpoint.every_steps=2", "lora.enabled=false",
            "data.mask_secrets=false", "threads=1"]


def _codex(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    from conftest import run_codex

    return run_codex(*args, cwd=root, env={"OMP_NUM_THREADS": "1", **(env or {})}, timeout=RUN_TIMEOUT_S)


def _torchrun_codex(root: Path, *args: str) -> subprocess.CompletedProcess:
    return _torchrun("-m", "codex_cli", *args, env=_env(OMP_NUM_THREADS="1"))


@pytest.fixture(scope="module")
def one_proc(workdir: Path) -> Path:
    result = _codex(workdir, *_train_args(workdir, "one", batch=4))
    assert result.returncode == 0, result.stderr
    return workdir / "one"


@pytest.fixture(scope="module")
def two_proc(workdir: Path) -> tuple[Path, subprocess.CompletedProcess]:
    result = _torchrun_codex(workdir, *_train_args(workdir, "two", batch=2))
    assert result.returncode == 0, result.stderr
    return workdir / "two", result


def _steps(ckpt_dir: Path) -> list[dict]:
    from training_support import metrics

    return [m for m in metrics(ckpt_dir) if m["event"] == "step"]


def _assert_weights_close(a: Path, b: Path) -> None:
    from training_support import assert_tensors_close

    assert_tensors_close(a / "model.safetensors", b / "model.safetensors", rtol=1e-4, atol=1e-5)


def test_two_processes_match_one_process_with_the_global_batch(one_proc: Path, two_proc: tuple) -> None:
    two, _ = two_proc
    single, double = _steps(one_proc), _steps(two)
    assert [m["step"] for m in double] == [m["step"] for m in single] == list(range(1, STEPS + 1))
    assert [m["loss"] for m in double] == pytest.approx([m["loss"] for m in single], rel=1e-4)
    assert [m["tokens_seen"] for m in double] == [m["tokens_seen"] for m in single]
    _assert_weights_close(one_proc / "epoch-0001", two / "epoch-0001")


def test_only_rank_0_writes(one_proc: Path, two_proc: tuple) -> None:
    two, result = two_proc
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one_proc.iterdir())
    lines = [len((d / "metrics.jsonl").read_text().splitlines()) for d in (one_proc, two)]
    assert lines[0] == lines[1]
    # --quiet prints the checkpoint path once: rank 1 prints nothing
    assert result.stdout.strip().splitlines()[-1:] == [str(two / "epoch-0001")]
    assert result.stdout.count(str(two / "epoch-0001")) == 1


def test_a_two_process_checkpoint_resumes_in_one_process(workdir: Path, one_proc: Path, two_proc: tuple) -> None:
    two, _ = two_proc
    result = _codex(workdir, *_train_args(workdir, "two-then-one", batch=4), "--resume", str(two / "step-00000002"))
    assert result.returncode == 0, result.stderr
    _assert_weights_close(one_proc / "epoch-0001", workdir / "two-then-one" / "epoch-0001")
    assert [m["step"] for m in _steps(workdir / "two-then-one")] == [3, 4, 5]


def test_a_one_process_checkpoint_resumes_on_two_with_nproc(workdir: Path, one_proc: Path) -> None:
    args = [*_train_args(workdir, "one-then-two", batch=2), "--nproc", "2", "--resume", str(one_proc / "step-00000004")]
    result = _codex(workdir, *args)
    assert result.returncode == 0, result.stderr
    _assert_weights_close(one_proc / "epoch-0001", workdir / "one-then-two" / "epoch-0001")
    resumed = _steps(workdir / "one-then-two")
    assert [m["step"] for m in resumed] == [5]
    assert resumed[0]["loss"] == pytest.approx(_steps(one_proc)[-1]["loss"], rel=1e-4)


def test_a_world_size_that_changes_the_batch_per_step_is_explained(workdir: Path, two_proc: tuple) -> None:
    two, _ = two_proc
    result = _codex(workdir, *_train_args(workdir, "mismatch", batch=2), "--resume", str(two / "step-00000002"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"codex: error: cannot resume from '{two / 'step-00000002'}': it was trained with 8 examples per optimizer "
        "step (2 processes x batch_size 2 x grad_accum 2) but this run has 4 (1 process x batch_size 2 x "
        "grad_accum 2); set train.batch_size so that processes x batch_size x grad_accum = 8"
    )


def test_a_rank_that_dies_stops_codex_train_nproc(workdir: Path) -> None:
    args = [*_train_args(workdir, "killed", batch=2), "--nproc", "2"]
    result = _codex(workdir, *args, env={"CODEX_TEST_EXIT_AT": "1:3"})
    assert result.returncode in (distributed.FAULT_EXIT_CODE, 1)  # 1: rank 0 failed in the same poll
    last = result.stderr.strip().splitlines()[-1]
    # rank 0, blocked in the step's all-reduce, may fail too before torchrun stops it: then both are named
    assert re.fullmatch(r"codex: error: (rank 0 exited with code 1 \(pid \d+\) and )?rank 1 exited with code 17 "
                        r"\(pid \d+\) in a 2-process run, so every rank was stopped; see its output above "
                        r"\(add --debug for tracebacks\)", last), last
    assert not (workdir / "killed" / "epoch-0001").exists()


def _children_by_rank(parent: int) -> dict[int, int]:
    """{RANK: pid} of the torchrun workers started by process ``parent`` (the agent runs inside codex)."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        rank = [item[5:] for item in env if item.startswith(b"RANK=")]
        if ppid == parent and rank:
            ranks[int(rank[0])] = int(entry.name)
    return ranks


@pytest.mark.parametrize("target", ["codex", "rank-1"], ids=["ctrl-c", "signal-to-one-rank"])
def test_a_stop_signal_stops_every_rank_of_a_lora_run_at_one_step_and_rank_0_saves(workdir: Path, target: str) -> None:
    import time

    from conftest import codex_exe

    ckpt = workdir / f"interrupted-{target}"
    args = [*_train_args(workdir, ckpt.name, batch=2), "lora.enabled=true", "train.epochs=500", "--nproc", "2"]
    proc = subprocess.Popen([codex_exe(), *args], cwd=workdir, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (ckpt / "metrics.jsonl").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    # Ctrl-C reaches codex (torchrun's agent forwards it to every rank); a signal to rank 1 alone must stop all
    pid = proc.pid if target == "codex" else _children_by_rank(proc.pid)[1]
    os.kill(pid, signal.SIGINT)
    out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 130, err
    # an interrupt-* checkpoint, or the epoch-* one when the agreed stop fell on an epoch's last step
    saved = json.loads((ckpt / "latest.json").read_text())["checkpoint"]
    assert saved.startswith(("interrupt-", "epoch-")) and (ckpt / saved / "adapter_model.safetensors").is_file()
    assert out.strip() == str(ckpt / saved)
    assert err.count(f"codex: interrupted; saved {ckpt / saved}, continue with 'codex train --resume'") == 1


def test_nproc_needs_codex_own_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from codex_cli.cli import app

    result = CliRunner().invoke(app, ["train", "--nproc", "2", f"checkpoint.dir={tmp_path / 'ck'}"],
                                catch_exceptions=False)  # in-process: sys.argv is pytest's, not codex's
    assert result.exit_code == 2
    assert result.stderr == ("codex: error: --nproc relaunches codex's own command line; run 'codex train --nproc N' "
                             "from a shell, or torchrun --nproc-per-node N -m codex_cli train\n")


# --- train.strategy: fsdp on 2 processes: the same run, the same checkpoints, resumable both ways ------------------


def _fsdp(*args: str) -> list[str]:
    return [*args, "train.strategy=fsdp"]


def _bitwise_equal(a: Path, b: Path) -> None:
    from training_support import assert_bitwise_equal

    for name in ("model.safetensors", "trainer_state/optimizer.safetensors"):
        assert_bitwise_equal(a / name, b / name)


@pytest.fixture(scope="module")
def fsdp_proc(workdir: Path) -> Path:
    result = _torchrun_codex(workdir, *_fsdp(*_train_args(workdir, "fsdp", batch=2)))
    assert result.returncode == 0, result.stderr
    return workdir / "fsdp"


def test_fsdp_on_two_processes_matches_one_process_with_the_global_batch(one_proc: Path, fsdp_proc: Path) -> None:
    from safetensors import safe_open
    from training_support import tensors

    single, sharded = _steps(one_proc), _steps(fsdp_proc)
    assert [m["step"] for m in sharded] == [m["step"] for m in single] == list(range(1, STEPS + 1))
    assert [m["loss"] for m in sharded] == pytest.approx([m["loss"] for m in single], rel=1e-4)
    assert [m["grad_norm"] for m in sharded] == pytest.approx([m["grad_norm"] for m in single], rel=1e-4)
    _assert_weights_close(one_proc / "epoch-0001", fsdp_proc / "epoch-0001")
    # the same checkpoint as one process writes: files, tensor names, shapes and dtypes, optimizer layout
    for name in ("epoch-0001", "step-00000002", "step-00000004"):
        assert sorted(json.loads((fsdp_proc / name / "metadata.json").read_text())["files"]) == \
            sorted(json.loads((one_proc / name / "metadata.json").read_text())["files"])
    for name in ("model.safetensors", "trainer_state/optimizer.safetensors"):
        left, right = tensors(one_proc / "epoch-0001" / name), tensors(fsdp_proc / "epoch-0001" / name)
        assert {k: (v.shape, v.dtype) for k, v in left.items()} == {k: (v.shape, v.dtype) for k, v in right.items()}
    with safe_open(str(fsdp_proc / "epoch-0001" / "model.safetensors"), "pt") as handle:
        assert handle.metadata() == {"format": "pt"}
    state = [json.loads((d / "epoch-0001" / "trainer_state" / "trainer_state.json").read_text())
             for d in (one_proc, fsdp_proc)]
    assert state[0]["optimizer"] == state[1]["optimizer"]
    assert (state[0]["progress"]["world_size"], state[1]["progress"]["world_size"]) == (1, 2)


def test_an_fsdp_checkpoint_resumes_in_one_process(workdir: Path, one_proc: Path, fsdp_proc: Path) -> None:
    args = _fsdp(*_train_args(workdir, "fsdp-then-one", batch=4))  # one process: the strategy has nothing to shard
    result = _codex(workdir, *args, "--resume", str(fsdp_proc / "step-00000002"))
    assert result.returncode == 0, result.stderr
    _assert_weights_close(one_proc / "epoch-0001", workdir / "fsdp-then-one" / "epoch-0001")
    assert [m["step"] for m in _steps(workdir / "fsdp-then-one")] == [3, 4, 5]


def test_a_ddp_checkpoint_resumes_under_fsdp(workdir: Path, one_proc: Path, two_proc: tuple) -> None:
    two, _ = two_proc
    args = [*_fsdp(*_train_args(workdir, "ddp-then-fsdp", batch=2)), "--nproc", "2", "--resume",
            str(two / "step-00000002")]
    result = _codex(workdir, *args)
    assert result.returncode == 0, result.stderr
    _assert_weights_close(one_proc / "epoch-0001", workdir / "ddp-then-fsdp" / "epoch-0001")
    resumed, single = _steps(workdir / "ddp-then-fsdp"), _steps(one_proc)
    assert [m["step"] for m in resumed] == [3, 4, 5]
    assert [m["loss"] for m in resumed] == pytest.approx([m["loss"] for m in single[2:]], rel=1e-4)


def test_fsdp_killed_while_rank_0_writes_resumes_to_identical_bits(workdir: Path, fsdp_proc: Path) -> None:
    from codex_cli.checkpoint.store import CRASH_ENV

    args = [*_fsdp(*_train_args(workdir, "fsdp-killed", batch=2)), "--nproc", "2"]
    # rank 0 SIGKILLs itself with step 4's weights written while rank 1 gathers the optimizer state with it
    killed = _codex(workdir, *args, env={CRASH_ENV: "write-weights:4"})
    assert killed.returncode == 1, killed.stderr
    assert "rank 0 was killed by SIGKILL" in killed.stderr.strip().splitlines()[-1]
    assert json.loads((workdir / "fsdp-killed" / "latest.json").read_text())["checkpoint"] == "step-00000002"
    result = _codex(workdir, *args, "--resume")
    assert result.returncode == 0, result.stderr
    _bitwise_equal(fsdp_proc / "epoch-0001", workdir / "fsdp-killed" / "epoch-0001")
    assert [m["step"] for m in _steps(workdir / "fsdp-killed")] == [1, 2, 3, 4, 5]


def test_lora_under_fsdp_trains_the_adapter_and_writes_one_peft_loads(workdir: Path) -> None:
    from peft import PeftModel
    from training_support import assert_tensors_close
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from codex_cli.cli import app

    lora = ("lora.enabled=true", "lora.dropout=0", "train.gradient_checkpointing=true")
    single = _codex(workdir, *_train_args(workdir, "lora-one", batch=4), *lora)
    sharded = _torchrun_codex(workdir, *_fsdp(*_train_args(workdir, "lora-fsdp", batch=2), *lora))
    assert single.returncode == 0, single.stderr
    assert sharded.returncode == 0, sharded.stderr
    one, two = workdir / "lora-one" / "epoch-0001", workdir / "lora-fsdp" / "epoch-0001"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    for name in ("adapter_model.safetensors", "trainer_state/optimizer.safetensors"):
        assert_tensors_close(one / name, two / name, rtol=1e-4, atol=1e-6)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(workdir / "model"), two)
    assert any("lora_B" in name and p.abs().sum() > 0 for name, p in model.named_parameters())  # trained
    loaded = CliRunner().invoke(app, ["ckpt", "load", str(two), "--json"], catch_exceptions=False)
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)["kind"] == "lora"


def _openai_gpt(path: Path) -> Path:
    """A tiny model of a family transformers names no decoder layer class for (OpenAI GPT-1)."""
    from transformers import OpenAIGPTConfig, OpenAIGPTLMHeadModel

    OpenAIGPTLMHeadModel(OpenAIGPTConfig(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32)) \
        .save_pretrained(path)
    return path


@pytest.mark.parametrize("extra", [[], ["--nproc", "2"]], ids=["in-process", "nproc"])
def test_fsdp_of_a_family_it_cannot_shard_is_refused_before_any_work(extra: list[str], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from codex_cli.cli import app

    model = _openai_gpt(tmp_path / "gpt1")  # no tokenizer: refused before one is needed
    result = CliRunner().invoke(app, ["train", "train.strategy=fsdp", f"model.name={model}",
                                      f"checkpoint.dir={tmp_path / 'ck'}", *extra], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == ("codex: error: train.strategy=fsdp cannot shard a 'openai-gpt' model: transformers names "
                             "no decoder layer class for it (_no_split_modules); train it with train.strategy=ddp\n")
    assert not (tmp_path / "ck").exists()


def test_fsdp_full_fine_tuning_of_a_model_saved_with_converted_weights_is_refused(tmp_path: Path) -> None:
    from transformers import MixtralConfig, MixtralForCausalLM

    from codex_cli.config import ModelConfig

    MixtralForCausalLM(MixtralConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=1, num_local_experts=2)) \
        .save_pretrained(tmp_path / "moe")
    with pytest.raises(ModelError) as info:
        distributed.check_strategy("fsdp", ModelConfig(name=str(tmp_path / "moe")), full=True)
    assert str(info.value).startswith("train.strategy=fsdp cannot write a full 'mixtral' checkpoint tensor by tensor: "
                                      "transformers converts its weights when saving ('model.layers.0.")
    assert str(info.value).endswith("' is not one of its parameters); use lora.enabled=true or train.strategy=ddp")
    distributed.check_strategy("fsdp", ModelConfig(name=str(tmp_path / "moe")), full=False)  # LoRA: fine
