"""MLflow tracking through the installed ``codex``: what a run logs, resume, secrets, failures, the toggle.

Every store is a sqlite file in the test's own directory, read back with MlflowClient.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import codex_exe, run_codex
from training_support import make_config, metrics, run_training, write_jsonl

from codex_cli import __version__, tracking
from codex_cli.checkpoint import store
from codex_cli.config import TrackConfig
from codex_cli.errors import TrackingError, UsageError

# MLflow's own code trips SQLAlchemy 2.1 deprecation warnings when it reads and writes in this process.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow")

SECRET = "sk-proj-" + "Zq9" * 16  # a config secret that must never reach the store
# 2 epochs of 9 steps (36 train / 4 eval examples, batch 4), LoRA dropout on, a checkpoint every 3 steps:
# step-00000003, step-00000006, epoch-0001 (step 9), step-00000012, step-00000015, epoch-0002 (step 18).
RUN = ("--lora", "--epochs", "2", "train.batch_size=4", "data.mask_secrets=false", "lora.dropout=0.1",
       "checkpoint.every_steps=3", "threads=1")
# Variables with which MLflow turns its telemetry off by itself: the no-network check runs without them.
CI_VARS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "CIRCLECI", "GITLAB_CI", "JENKINS_URL", "TRAVIS", "TF_BUILD",
           "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION", "CLOUD_RUN_EXECUTION",
           "RUNBOT_HOST_URL", "RUNBOT_BUILD_NAME", "RUNBOT_WORKER_ID", "DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY")
NET_GUARD = '''
import os, socket
def _refuse(what):
    with open(os.environ["CODEX_TEST_NET_LOG"], "a") as log:
        log.write(repr(what) + "\\n")
    raise OSError("network refused by the test")
_connect = socket.socket.connect
def connect(self, address):
    if self.family != socket.AF_UNIX:
        _refuse(("connect", address))
    return _connect(self, address)
socket.socket.connect = connect
socket.getaddrinfo = lambda host, *args, **kwargs: _refuse(("getaddrinfo", host))
'''


@functools.lru_cache(maxsize=None)
def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _only_run(uri: str) -> Any:
    runs = _client(uri).search_runs(["0"])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in _client(uri).get_metric_history(run_id, key))


def _expected_metrics(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl as MLflow histories: step rows by field name; epoch_end rows' eval loss, perplexity, mean loss."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        names = ({"loss": "epoch_train_loss", "eval_loss": "eval_loss", "perplexity": "perplexity"}
                 if row["event"] == "epoch_end" else
                 {k: k for k in ("loss", "lr", "tokens_per_s", "grad_norm", "tokens_seen", "epoch")})
        for field, name in names.items():
            expected.setdefault(name, []).append((row["step"], float(row[field])))
    return {name: sorted(values) for name, values in expected.items()}


def _trained_args(tiny_model_dir: Path, data: Path, ck: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(tiny_model_dir), "--data", str(data), *RUN, f"checkpoint.dir={ck}", *extra]


def _start_until(args: list[str], ck: Path, lines: int, action: Callable[[subprocess.Popen], None], *,
                 cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Start ``codex`` and call ``action`` once metrics.jsonl has ``lines`` lines; wait for it to end."""
    proc = subprocess.Popen([codex_exe(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                            env={**os.environ, **env})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (ck / "metrics.jsonl").is_file() and (ck / "metrics.jsonl").read_text().count("\n") >= lines:
            action(proc)
            break
        time.sleep(0.005)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl")


@pytest.fixture(scope="module")
def tracked(tiny_model_dir: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted tracked run into the default store, with a secret in its config and the network refused."""
    work = tmp_path_factory.mktemp("tracked")
    (work / "guard").mkdir()
    (work / "guard" / "sitecustomize.py").write_text(NET_GUARD)
    (work / "c.yaml").write_text(f"serve:\n  api_key: {SECRET}\n")
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS}
    env.update(CODEX_MLFLOW="1", PYTHONPATH=str(work / "guard"), CODEX_TEST_NET_LOG=str(work / "net.log"),
               COLUMNS="400")
    args = _trained_args(tiny_model_dir, data, work / "ck", "--config", str(work / "c.yaml"), "track.log_model=true")
    proc = subprocess.run([codex_exe(), *args], capture_output=True, text=True, cwd=work, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return {"work": work, "ck": work / "ck", "uri": f"sqlite:///{work / 'mlflow.db'}", "proc": proc}


@pytest.mark.slow
def test_a_run_reads_back_as_its_metrics_and_metadata(tracked: dict[str, Any], tiny_model_dir: Path) -> None:
    ck, uri = tracked["ck"], tracked["uri"]
    run = _only_run(uri)  # in the default store, sqlite:///mlflow.db in the working directory
    assert run.info.status == "FINISHED"
    assert f"MLflow: logging to run {run.info.run_id} (experiment 'Default') in {uri}" in tracked["proc"].stderr
    state = json.loads((ck / "epoch-0002" / "trainer_state" / "trainer_state.json").read_text())
    assert state["progress"]["mlflow_run_id"] == run.info.run_id

    metadata = json.loads((ck / "epoch-0002" / "metadata.json").read_text())
    flat: dict[str, Any] = {}
    for section, values in metadata["config"].items():
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            flat[f"{section}.{key}" if key else section] = value
    assert run.data.params == {k: v if isinstance(v, str) else json.dumps(v) for k, v in flat.items()}
    assert run.data.params["serve.api_key"] == "[SECRET]"
    assert {k: v for k, v in run.data.tags.items() if k.startswith("codex.")} == {
        "codex.version": __version__, "codex.kind": "lora", "codex.world_size": "1",
        "codex.checkpoint_dir": str(ck.resolve()), "codex.base_model.name": str(tiny_model_dir),
        "codex.base_model.path": str(tiny_model_dir),
        "codex.base_model.config_sha256": metadata["base_model"]["config_sha256"],
    }

    expected = _expected_metrics(metrics(ck))
    assert sorted(run.data.metrics) == sorted(expected)
    for name, values in expected.items():
        assert _history(uri, run.info.run_id, name) == values, name

    client, checkpoints = _client(uri), sorted(p.name for p in ck.iterdir() if (p / "metadata.json").is_file())
    assert len(checkpoints) == 6
    logged = [Path(a.path).name for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert sorted(logged) == checkpoints
    for name in checkpoints:
        local = client.download_artifacts(run.info.run_id, f"checkpoints/{name}/metadata.json", str(tracked["work"]))
        assert Path(local).read_bytes() == (ck / name / "metadata.json").read_bytes()
    model = Path(client.download_artifacts(run.info.run_id, "model", str(tracked["work"] / "model-copy")))
    final = ck / "epoch-0002"
    assert sorted(p.relative_to(model) for p in model.rglob("*")) == sorted(p.relative_to(final)
                                                                             for p in final.rglob("*"))
    assert (model / "adapter_model.safetensors").read_bytes() == (final / "adapter_model.safetensors").read_bytes()


@pytest.mark.slow
def test_no_config_secret_reaches_the_store_and_no_connection_is_opened(tracked: dict[str, Any]) -> None:
    work = tracked["work"]
    stored = [work / "mlflow.db", *(p for p in (work / "mlruns").rglob("*") if p.is_file())]
    assert len(stored) > 10
    assert [p for p in stored if SECRET.encode() in p.read_bytes()] == []
    assert SECRET not in tracked["proc"].stdout + tracked["proc"].stderr
    assert not (work / "net.log").exists(), (work / "net.log").read_text()


@pytest.mark.slow
def test_kill_9_and_resume_continue_one_run_without_duplicate_steps(tiny_model_dir: Path, data: Path, tmp_path: Path,
                                                                    tracked: dict[str, Any]) -> None:
    ck, env = tmp_path / "ck", {"CODEX_MLFLOW": "1"}
    args = _trained_args(tiny_model_dir, data, ck, "--quiet")
    killed = _start_until(args, ck, 7, lambda proc: proc.send_signal(signal.SIGKILL), cwd=tmp_path, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _only_run(f"sqlite:///{tmp_path / 'mlflow.db'}").info.status == "RUNNING"
    assert json.loads((ck / "latest.json").read_text())["global_step"] < 18
    resumed = run_codex(*args, "--resume", cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = _only_run(uri)
    assert run.info.status == "FINISHED"
    reference = _only_run(tracked["uri"])
    loss = _history(uri, run.info.run_id, "loss")
    assert loss == _history(tracked["uri"], reference.info.run_id, "loss")
    assert loss == [(m["step"], m["loss"]) for m in metrics(tracked["ck"]) if m["event"] == "step"]
    for name in run.data.metrics:
        steps = [step for step, _ in _history(uri, run.info.run_id, name)]
        assert len(steps) == len(set(steps)), name
    state = json.loads((ck / "epoch-0002" / "trainer_state" / "trainer_state.json").read_text())
    assert state["progress"]["mlflow_run_id"] == run.info.run_id


@pytest.mark.slow
def test_a_replayed_step_already_in_the_store_is_not_logged_twice(tiny_model_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    class SimulatedCrash(BaseException):
        """Stands in for SIGKILL."""

    def die() -> None:
        raise SimulatedCrash()

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setattr(tracking, "FLUSH_S", 0.0)  # every row reaches the store at once, before its checkpoint
    monkeypatch.setattr(store, "_die", die)
    monkeypatch.setenv("CODEX_MLFLOW", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = make_config(tiny_model_dir, write_jsonl(tmp_path / "train.jsonl"), tmp_path / "ck", "lora.enabled=true",
                      "train.max_steps=6", "checkpoint.every_steps=3")
    monkeypatch.setenv(store.CRASH_ENV, "step:5")  # steps 4 and 5 are logged, the checkpoint holds step 3
    with pytest.raises(SimulatedCrash):
        run_training(cfg)
    crashed = _only_run(uri)
    run_id = crashed.info.run_id
    assert crashed.info.status == "FAILED"  # an exception ends the run so; a real kill -9 leaves it RUNNING
    assert _history(uri, run_id, "loss")[-1][0] == 5
    monkeypatch.delenv(store.CRASH_ENV)
    run_training(make_config(tiny_model_dir, tmp_path / "train.jsonl", tmp_path / "ck", "lora.enabled=true",
                             "train.max_steps=6", "checkpoint.every_steps=3", "checkpoint.keep_last=5"), resume=True)

    rows = metrics(tmp_path / "ck")
    assert [row["step"] for row in rows if row["event"] == "step"] == [1, 2, 3, 4, 5, 6]
    for name, values in _expected_metrics(rows).items():
        if name != "tokens_per_s":  # a replayed step keeps the values first logged: the same, but for the timing
            assert _history(uri, run_id, name) == values, name
    resumed = _only_run(uri)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.params["checkpoint.keep_last"] == "null"  # MLflow params never change...
    assert resumed.data.tags["codex.params_changed_on_resume"] == "checkpoint.keep_last"  # ...so the tag says it
    assert resumed.data.tags["codex.resumed_from"] == str(tmp_path / "ck" / "step-00000003")


@pytest.mark.slow
def test_tracking_turned_on_at_a_resume_logs_the_whole_run_and_a_foreign_run_id_is_refused(
        tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    data = write_jsonl(tmp_path / "train.jsonl")
    run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=2", "checkpoint.every_steps=1"))
    assert not (tmp_path / "store.db").exists()
    monkeypatch.setenv("CODEX_MLFLOW", "1")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=4", "checkpoint.every_steps=1")
    run_training(cfg, resume=True)
    run = _only_run(uri)
    for name, values in _expected_metrics(metrics(tmp_path / "ck")).items():
        assert _history(uri, run.info.run_id, name) == values, name
    assert len(_client(uri).list_artifacts(run.info.run_id, "checkpoints")) == 4

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(TrackingError) as info:
        run_training(cfg, resume=True)
    assert str(info.value) == (
        f"the checkpoint's MLflow run {run.info.run_id} is not in the store 'sqlite:///{tmp_path / 'other.db'}'; set "
        "MLFLOW_TRACKING_URI to the store it was logged to, or CODEX_MLFLOW=0 to resume without tracking")


@pytest.mark.slow
def test_two_processes_log_one_run_from_rank_0_to_the_named_store_and_experiment(tiny_model_dir: Path, data: Path,
                                                                                 tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'runs.db'}"
    env = {"CODEX_MLFLOW": "1", "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "codex-ddp"}
    args = ["train", "--quiet", "--model", str(tiny_model_dir), "--data", str(data), "--nproc", "2", "--max-steps", "3",
            "train.batch_size=2", "data.mask_secrets=false", "threads=1", f"checkpoint.dir={tmp_path / 'ck'}"]
    result = run_codex(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "mlflow.db").exists()
    client = _client(uri)
    experiment = client.get_experiment_by_name("codex-ddp")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["codex.world_size"] == "2"
    for name, values in _expected_metrics(metrics(tmp_path / "ck")).items():
        assert _history(uri, runs[0].info.run_id, name) == values, name


def test_a_stopped_run_is_killed_in_the_store_with_its_interrupt_checkpoint(tiny_model_dir: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_cli.training import loop

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("CODEX_MLFLOW", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(loop.distributed, "agree_to_stop", lambda requested, step: requested or step == 2)  # Ctrl-C
    cfg = make_config(tiny_model_dir, write_jsonl(tmp_path / "train.jsonl"), tmp_path / "ck", "train.max_steps=4")
    assert run_training(cfg).interrupted
    run = _only_run(uri)
    assert run.info.status == "KILLED"
    assert [a.path for a in _client(uri).list_artifacts(run.info.run_id, "checkpoints")] == [
        "checkpoints/interrupt-00000002"]
    assert _history(uri, run.info.run_id, "loss") == [(m["step"], m["loss"]) for m in metrics(tmp_path / "ck")]


def _lock_and_break(db: Path, saved: dict[str, bytes]) -> Callable[[subprocess.Popen], None]:
    """Damage the sqlite header under an exclusive lock: the store fails on its next transaction."""
    def act(_: subprocess.Popen) -> None:
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        with open(db, "r+b") as handle:
            saved["header"] = handle.read(28)
            handle.seek(0)
            handle.write(b"not a database!!" + b"\0" * 8 + b"\xff" * 4)  # magic and change counter
        lock.execute("ROLLBACK")
        lock.close()

    return act


@pytest.mark.slow
def test_a_store_that_fails_mid_run_costs_one_warning_and_resume_logs_the_rest(tiny_model_dir: Path, data: Path,
                                                                               tmp_path: Path) -> None:
    ck, db, saved = tmp_path / "ck", tmp_path / "mlflow.db", {}
    args = _trained_args(tiny_model_dir, data, ck, "--quiet")
    env = {"CODEX_MLFLOW": "1"}
    failed = _start_until(args, ck, 5, _lock_and_break(db, saved), cwd=tmp_path, env=env)
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout == f"{ck / 'epoch-0002'}\n"
    warning = failed.stderr.splitlines()
    assert len(warning) == 1, failed.stderr
    assert warning[0].startswith(f"codex: warning: MLflow store 'sqlite:///{db}' failed at step ")
    assert "(sqlite3.DatabaseError) file is not a database" in warning[0]
    # at a checkpoint, or at a timed write of metrics in between when the machine is slow
    assert re.search(r"; not logged to run \w+: metrics from step \d+ on, the metadata\.json of (step-\d+ and of )?"
                     r"later checkpoints, the run's end\. Training goes on", warning[0]), warning[0]
    assert warning[0].endswith("once the store works again, 'codex train --resume' logs what is missing")
    assert json.loads((ck / "latest.json").read_text())["global_step"] == 18

    with open(db, "r+b") as handle:
        handle.write(saved["header"])
    caught_up = run_codex(*args, "--resume", cwd=tmp_path, env=env)
    assert caught_up.returncode == 0, caught_up.stderr
    uri = f"sqlite:///{db}"
    run = _only_run(uri)
    assert run.info.status == "FINISHED"
    for name, values in _expected_metrics(metrics(ck)).items():
        assert _history(uri, run.info.run_id, name) == values, name
    logged = [Path(a.path).name for a in _client(uri).list_artifacts(run.info.run_id, "checkpoints")]
    assert sorted(logged) == sorted(p.name for p in ck.iterdir() if (p / "metadata.json").is_file())


def _hide(tmp_path: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """An environment whose Python lacks ``packages``: site-packages seen through links to everything else."""
    import sysconfig

    site, shadow = Path(sysconfig.get_paths()["purelib"]), tmp_path / "site-without"
    shadow.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(packages):
            (shadow / entry.name).symlink_to(entry)
    (tmp_path / "guard").mkdir()
    (tmp_path / "guard" / "sitecustomize.py").write_text(
        f"import sys\nsys.path[:] = [{str(shadow)!r} if p == {str(site)!r} else p for p in sys.path]\n")
    return {"PYTHONPATH": str(tmp_path / "guard")}


@pytest.mark.parametrize(("hidden", "args", "env", "source", "missing"), [
    pytest.param(("mlflow",), ["track.mlflow=true"], {}, "track.mlflow: true", "mlflow is", id="mlflow-config"),
    pytest.param(("mlflow",), ["--nproc", "2"], {"CODEX_MLFLOW": "1"}, "CODEX_MLFLOW=1", "mlflow is",
                 id="mlflow-env-nproc"),
    pytest.param(("sqlalchemy", "alembic"), [], {"CODEX_MLFLOW": "yes"}, "CODEX_MLFLOW=yes",
                 "sqlalchemy and alembic are", id="sqlite-store-packages"),
])
def test_without_the_extra_a_tracked_run_stops_before_any_work(tiny_model_dir: Path, data: Path, tmp_path: Path,
                                                               hidden: tuple[str, ...], args: list[str],
                                                               env: dict[str, str], source: str, missing: str) -> None:
    result = run_codex("train", "--model", str(tiny_model_dir), "--data", str(data),
                       f"checkpoint.dir={tmp_path / 'ck'}", *args, cwd=tmp_path, env={**_hide(tmp_path, hidden), **env})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"codex: error: experiment tracking is on ({source}) but {missing} not installed; "
                             "pip install 'codex-cli[mlflow]', or set CODEX_MLFLOW=0\n")
    assert not (tmp_path / "ck").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(("env", "configured", "on"), [
    pytest.param(None, False, False, id="default-off"),
    pytest.param(None, True, True, id="config-on"),
    pytest.param("1", False, True, id="env-on-wins"),
    pytest.param("0", True, False, id="env-off-wins"),
    pytest.param("true", False, True, id="env-true"),
    pytest.param("off", True, False, id="env-off-word"),
])
def test_the_environment_toggle_wins_over_the_config(monkeypatch: pytest.MonkeyPatch, env: str | None,
                                                     configured: bool, on: bool) -> None:
    if env is not None:
        monkeypatch.setenv("CODEX_MLFLOW", env)
    assert tracking.toggle(TrackConfig(mlflow=configured))[0] is on


def test_a_bad_toggle_value_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_MLFLOW", "maybe")
    with pytest.raises(UsageError, match=r"^CODEX_MLFLOW must be 1 or 0 \(or true/false\), got 'maybe'$"):
        tracking.toggle(TrackConfig())


def test_only_sqlite_and_http_stores_are_used_and_credentials_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_MLFLOW", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://ops:hunter2@db.internal:5432/mlflow")
    with pytest.raises(TrackingError) as info:
        tracking.open_tracker(TrackConfig(), writer=True)
    assert str(info.value) == (
        "MLFLOW_TRACKING_URI 'postgresql://db.internal:5432/mlflow' is not a store codex logs to; use sqlite:///PATH "
        "(unset, it is sqlite:///mlflow.db in the working directory) or an http(s):// MLflow server")
    assert tracking.shown_uri("https://me:tok@mlflow.example/x?token=1") == "https://mlflow.example/x"
    assert tracking.shown_uri("sqlite:////abs/mlflow.db") == "sqlite:////abs/mlflow.db"


def test_an_http_store_that_does_not_answer_stops_the_start_without_showing_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CODEX_MLFLOW", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:pw123@127.0.0.1:{port}")
    for name in tracking.HTTP_DEFAULTS:  # codex's bounded retries, not MLflow's 4 minutes
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TrackingError) as info:
        tracking.open_tracker(TrackConfig(), writer=True)
    message = str(info.value)
    assert message.startswith(f"MLflow store 'http://127.0.0.1:{port}' cannot be used (API request to ")
    assert message.endswith("; fix MLFLOW_TRACKING_URI, or set CODEX_MLFLOW=0 to train without tracking")
    assert "bob" not in message and "pw123" not in message


def test_params_are_the_dotted_config_and_a_value_too_long_for_mlflow_is_cut_saying_so() -> None:
    rules = [{"name": f"rule-{i}", "regex": f"acme{i}_[0-9a-f]{{32}}"} for i in range(200)]
    params = tracking.run_params({"seed": 1234, "lora": {"target_modules": None, "enabled": True},
                                  "mask": {"replacement": "[SECRET]", "rules": rules}})
    assert {k: v for k, v in params.items() if k != "mask.rules"} == {
        "seed": "1234", "lora.target_modules": "null", "lora.enabled": "true", "mask.replacement": "[SECRET]"}
    assert len(params["mask.rules"]) == 6000 and params["mask.rules"].startswith(json.dumps(rules)[:5000])
    assert params["mask.rules"].endswith(f"... ({len(json.dumps(rules))} characters; the whole value is in each "
                                         "checkpoint's metadata.json)")


def test_other_ranks_and_a_toggle_off_get_a_tracker_that_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_MLFLOW", "1")
    assert type(tracking.open_tracker(TrackConfig(), writer=False)) is tracking.Tracker
    monkeypatch.setenv("CODEX_MLFLOW", "0")
    assert type(tracking.open_tracker(TrackConfig(mlflow=True), writer=True)) is tracking.Tracker
