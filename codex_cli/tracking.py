"""Experiment tracking: a training run as one MLflow run (params, tags, metrics, checkpoint metadata).

The policy, in the order a run meets it:

- Off unless ``CODEX_MLFLOW`` (1/0; it wins) or ``track.mlflow`` turns it on. mlflow is imported then and
  only then, by the process that writes (rank 0). MLflow missing or a store that cannot be used stops the
  run before any training, with one line.
- The store is ``MLFLOW_TRACKING_URI``, else ``sqlite:///<working dir>/mlflow.db`` (MLflow's own default),
  in the experiment ``MLFLOW_EXPERIMENT_NAME`` (else "Default"). Only an http(s) store opens a connection:
  MLflow's usage telemetry is switched off.
- One MLflow run per codex run; its id is kept in the checkpoint's training state, so ``--resume`` continues it.
- Metrics mirror metrics.jsonl row for row. They are buffered and written in batches (at every checkpoint,
  every FLUSH_S seconds and at the end), so a training step never waits for the store.
- A metric is written only at a step past the last one the run already holds for it. Steps replayed after
  a resume are therefore never logged twice, and what the store missed (a kill, a failure) is caught up
  from metrics.jsonl and the checkpoint directory when the run starts again.
- The first store failure mid-run ends tracking for this process with one warning that says what was not
  logged; training and checkpoints go on.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import urlsplit

from codex_cli import __version__
from codex_cli.checkpoint.layout import METADATA_FILE, METRICS_FILE, list_checkpoints, read_metric_rows
from codex_cli.config import flat_dict
from codex_cli.errors import TrackingError, UsageError, first_line
from codex_cli.masking import mask_text

if TYPE_CHECKING:
    from codex_cli.config import TrackConfig

TOGGLE_ENV = "CODEX_MLFLOW"
URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "Default"
DEFAULT_STORE_FILE = "mlflow.db"
INSTALL_HINT = "pip install 'codex-cli[mlflow]'"
# An http(s) store that stops answering then fails after about 6 s (connection refused) or 35 s (no reply),
# not MLflow's 4 minutes; the user's own values of these variables win.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
FLUSH_S = 5.0  # the longest a metrics row waits in memory (a checkpoint flushes at once)
# metrics.jsonl fields -> MLflow metric names. A step row's fields keep their names; an epoch_end row adds the
# eval loss, its perplexity and the epoch's mean train loss (the row's "loss"); its other fields repeat the step.
STEP_METRICS = {name: name for name in ("loss", "lr", "tokens_per_s", "grad_norm", "tokens_seen", "epoch")}
EPOCH_METRICS = {"loss": "epoch_train_loss", "eval_loss": "eval_loss", "perplexity": "perplexity"}
# sqlite is MLflow 3's local store (its ./mlruns file store is deprecated); http(s) is an MLflow server.
_SCHEMES = ("sqlite", "http", "https")
_MAX_METRICS_PER_CALL = 1000  # MLflow's log_batch limits
_MAX_PARAMS_PER_CALL = 100
_MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

log = logging.getLogger("codex.tracking")


def toggle(cfg: TrackConfig) -> tuple[bool, str]:
    """Whether tracking is on, and what said so: ``$CODEX_MLFLOW`` when set, else ``track.mlflow``."""
    raw = os.environ.get(TOGGLE_ENV, "").strip()
    if not raw:
        return cfg.mlflow, f"track.mlflow: {str(cfg.mlflow).lower()}"
    if raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE, f"{TOGGLE_ENV}={raw}"
    raise UsageError(f"{TOGGLE_ENV} must be 1 or 0 (or true/false), got {raw!r}")


def open_tracker(cfg: TrackConfig, *, writer: bool) -> Tracker:
    """MLflow when the toggle is on and this process writes (rank 0), else a tracker that does nothing.

    Raises TrackingError (exit code 2) when MLflow is missing or its store cannot be used.
    """
    on, source = toggle(cfg)
    if not (on and writer):
        return Tracker()
    uri = store_uri()
    require_installed(cfg)
    return MlflowTracker(_connect(uri), uri, log_model=cfg.log_model)


def store_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<working directory>/mlflow.db``."""
    return os.environ.get(URI_ENV) or f"sqlite:///{Path.cwd() / DEFAULT_STORE_FILE}"


def require_installed(cfg: TrackConfig) -> None:
    """Raise TrackingError when tracking is on and a package it needs is missing (checked without importing it)."""
    on, source = toggle(cfg)
    if not on:
        return
    needed = ["mlflow", *(["sqlalchemy", "alembic"] if urlsplit(store_uri()).scheme.lower() == "sqlite" else [])]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        what = f"{missing[0]} is" if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]} are"
        raise TrackingError(f"experiment tracking is on ({source}) but {what} not installed; {INSTALL_HINT}, "
                            f"or set {TOGGLE_ENV}=0")


def shown_uri(uri: str) -> str:
    """A tracking URI fit for messages: no user, password or query string."""
    netloc = urlsplit(uri).netloc
    if "@" in netloc:
        uri = uri.replace(netloc, netloc.rpartition("@")[2], 1)
    return uri.split("?", 1)[0]


def run_params(config: dict[str, Any]) -> dict[str, str]:
    """The resolved config (secrets already redacted) as MLflow params: dotted keys, JSON for non-strings.

    A value longer than MLflow allows (a long ``mask.rules`` list) is cut, saying so; metadata.json has it whole.
    """
    params = {key: value if isinstance(value, str) else json.dumps(value) for key, value in flat_dict(config).items()}
    for key, text in params.items():
        if len(text) > _MAX_PARAM_CHARS:
            note = f"... ({len(text)} characters; the whole value is in each checkpoint's metadata.json)"
            params[key] = text[:_MAX_PARAM_CHARS - len(note)] + note
    return params


def row_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The MLflow metrics of one metrics.jsonl row, by name (fields that are null are left out)."""
    names = EPOCH_METRICS if row.get("event") == "epoch_end" else STEP_METRICS
    return {name: float(row[field]) for field, name in names.items() if isinstance(row.get(field), (int, float))}


def _connect(uri: str) -> tuple[Any, str, str]:
    """An MlflowClient on ``uri`` (its store created and migrated on first use), the experiment's id and name."""
    if urlsplit(uri).scheme.lower() not in _SCHEMES:
        raise TrackingError(f"{URI_ENV} '{shown_uri(uri)}' is not a store codex logs to; use sqlite:///PATH "
                            "(unset, it is sqlite:///mlflow.db in the working directory) or an http(s):// MLflow "
                            "server")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # read when mlflow is imported: no network but the store's
    for name, value in HTTP_DEFAULTS.items():  # MLflow's own (7 retries, 120 s) stall 4 minutes on a dead server
        os.environ.setdefault(name, value)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as e:  # installed but broken (a dependency of its own is missing)
        raise TrackingError(f"mlflow cannot be imported ({first_line(e)}); {INSTALL_HINT}") from e
    # codex says what failed in one line; MLflow would add "Creating initial MLflow database tables..." notes
    # and, for a locked sqlite store, a traceback of its own.
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    try:
        client = MlflowClient(tracking_uri=uri)
        name = os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT
        return client, _experiment_id(client, name), name
    except TrackingError:
        raise
    except Exception as e:  # any failure of the store (MlflowException, sqlalchemy, requests) ends the start here
        raise TrackingError(_masked(f"MLflow store '{shown_uri(uri)}' cannot be used ({first_line(e)}); fix "
                                    f"{URI_ENV}, or set {TOGGLE_ENV}=0 to train without tracking", uri)) from e


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name)
    if found.lifecycle_stage == "deleted":
        raise TrackingError(f"MLflow experiment '{name}' is deleted; restore it (mlflow experiments restore) "
                            f"or set {EXPERIMENT_ENV} to another name")
    return found.experiment_id


def _masked(text: str, uri: str) -> str:
    """``text`` (which may quote third-party errors) without the URI's credentials or anything that looks a secret."""
    userinfo = urlsplit(uri).netloc.rpartition("@")[0]
    for secret in filter(None, (userinfo, userinfo.partition(":")[2])):
        text = text.replace(secret, "***")
    return mask_text(text)[0]


class Tracker:
    """Tracking off: every call does nothing, so the training loop reads the same either way."""

    def start(self, run_id: Optional[str], **run: Any) -> tuple[Optional[str], list[str]]:
        """Begin (or continue) the run; return its id (kept in the training state) and notes for the user."""
        return run_id, []

    def log_metrics(self, row: dict[str, Any]) -> None:
        """One metrics.jsonl row, just appended."""

    def checkpoint(self, path: Path) -> None:
        """A checkpoint is complete at ``path``."""

    def end(self, status: str, final: Optional[Path] = None) -> None:
        """The run ended: FINISHED (``final`` is its last checkpoint), KILLED or FAILED."""


class MlflowTracker(Tracker):
    """Logs to one MLflow run through MlflowClient (synchronous calls, batched metrics)."""

    def __init__(self, connection: tuple[Any, str, str], uri: str, *, log_model: bool) -> None:
        self._client, self._experiment_id, self._experiment = connection
        self._raw_uri, self._uri = uri, shown_uri(uri)
        self._log_model = log_model
        self._run_id = ""
        self._logged: dict[str, int] = {}  # metric name -> the last step the run holds (or will once flushed)
        self._pending: list[Any] = []  # mlflow Metric objects not yet written
        self._flushed_at = time.monotonic()
        self._step = 0  # the last step seen, for messages
        self._failed = False

    def start(self, run_id: Optional[str], *, config: dict[str, Any], kind: str, base_model: dict[str, str],
              world_size: int, ckpt_dir: Path, resumed_from: Optional[Path] = None) -> tuple[Optional[str], list[str]]:
        tags = {"codex.version": __version__, "codex.kind": kind, "codex.world_size": str(world_size),
                "codex.checkpoint_dir": str(Path(ckpt_dir).resolve()),
                **{f"codex.base_model.{key}": str(value) for key, value in base_model.items()}}
        if resumed_from is not None:
            tags["codex.resumed_from"] = str(resumed_from)
        try:
            run = self._open_run(run_id)
            changed = self._log_params_and_tags(run, run_params(config), tags)
            self._logged = {m.key: m.step for m in run.to_proto().data.metrics}
            self._catch_up(Path(ckpt_dir))
        except TrackingError:
            raise
        except Exception as e:  # the store failed before training: say so and stop, nothing is lost yet
            message = (f"MLflow store '{self._uri}' failed while starting the run ({first_line(e)}); fix {URI_ENV}, "
                       f"or set {TOGGLE_ENV}=0 to train without tracking")
            raise TrackingError(_masked(message, self._raw_uri)) from e
        verb = "continuing" if run_id else "logging to"
        experiment = self._experiment if run.info.experiment_id == self._experiment_id else run.info.experiment_id
        notes = [f"MLflow: {verb} run {self._run_id} (experiment {experiment!r}) in {self._uri}"]
        if changed:
            notes.append(f"MLflow: the run keeps the params it started with; changed since: {', '.join(changed)}")
        return self._run_id, notes

    def log_metrics(self, row: dict[str, Any]) -> None:
        if self._failed:
            return
        self._queue(row)
        if time.monotonic() - self._flushed_at >= FLUSH_S or len(self._pending) >= _MAX_METRICS_PER_CALL:
            self._attempt(self._flush, self._lost_mid_run)

    def checkpoint(self, path: Path) -> None:
        def write() -> None:
            self._flush()
            self._client.log_artifact(self._run_id, str(path / METADATA_FILE), f"checkpoints/{path.name}")

        self._attempt(write, lambda: self._lost_mid_run(path.name))

    def end(self, status: str, final: Optional[Path] = None) -> None:
        def write() -> None:
            self._flush()
            if self._log_model and status == "FINISHED" and final is not None:
                self._client.log_artifacts(self._run_id, str(final), "model")
            self._client.set_terminated(self._run_id, status)

        model = [f"the model ({final.name})"] if self._log_model and status == "FINISHED" and final else []
        self._attempt(write, lambda: [*([self._metrics_lost()] if self._pending else []), *model,
                                      f"the run's end ({status})"], ending=True)

    def _open_run(self, run_id: Optional[str]) -> Any:
        if run_id is None:
            run = self._client.create_run(self._experiment_id)
        else:
            run = self._find_run(run_id)
            self._client.update_run(run_id, status="RUNNING")
        self._run_id = run.info.run_id
        return run

    def _find_run(self, run_id: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            run = self._client.get_run(run_id)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            run = None
        if run is None or run.info.lifecycle_stage == "deleted":
            state = "is deleted from" if run is not None else "is not in"
            raise TrackingError(f"the checkpoint's MLflow run {run_id} {state} the store '{self._uri}'; set {URI_ENV} "
                                f"to the store it was logged to, or {TOGGLE_ENV}=0 to resume without tracking")
        return run

    def _log_params_and_tags(self, run: Any, params: dict[str, str], tags: dict[str, str]) -> list[str]:
        """Log the params the run lacks and every tag; return the keys whose value changed since (on resume)."""
        from mlflow.entities import Param, RunTag

        held = run.data.params
        missing = [Param(key, value) for key, value in params.items() if key not in held]
        for i in range(0, len(missing), _MAX_PARAMS_PER_CALL):
            self._client.log_batch(self._run_id, params=missing[i:i + _MAX_PARAMS_PER_CALL], synchronous=True)
        changed = sorted(key for key, value in params.items() if key in held and held[key] != value)
        if changed:
            tags["codex.params_changed_on_resume"] = ", ".join(changed)
        tag_list = [RunTag(key, value) for key, value in tags.items()]
        for i in range(0, len(tag_list), _MAX_PARAMS_PER_CALL):
            self._client.log_batch(self._run_id, tags=tag_list[i:i + _MAX_PARAMS_PER_CALL], synchronous=True)
        return changed

    def _catch_up(self, ckpt_dir: Path) -> None:
        """Log what the run lacks of metrics.jsonl and of the checkpoints' metadata.json."""
        for row in read_metric_rows(ckpt_dir / METRICS_FILE)[0]:
            self._queue(row)
        self._flush()
        held = {Path(artifact.path).name for artifact in self._client.list_artifacts(self._run_id, "checkpoints")}
        for path in list_checkpoints(ckpt_dir):
            if path.name not in held:
                self._client.log_artifact(self._run_id, str(path / METADATA_FILE), f"checkpoints/{path.name}")

    def _queue(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        step = int(row["step"])
        self._step = max(self._step, step)
        timestamp = int(time.time() * 1000)
        for name, value in row_metrics(row).items():
            if step > self._logged.get(name, -1):  # never a second value at a step the run already holds
                self._pending.append(Metric(name, value, timestamp, step))
                self._logged[name] = step

    def _flush(self) -> None:
        for i in range(0, len(self._pending), _MAX_METRICS_PER_CALL):
            self._client.log_batch(self._run_id, metrics=self._pending[i:i + _MAX_METRICS_PER_CALL], synchronous=True)
        self._pending = []
        self._flushed_at = time.monotonic()

    def _metrics_lost(self) -> str:
        first = self._pending[0].step if self._pending else self._step + 1
        return f"metrics from step {first} on"

    def _lost_mid_run(self, checkpoint: Optional[str] = None) -> list[str]:
        """What a failure before the run's end leaves unlogged (this process logs nothing after it)."""
        metadata = f"{checkpoint} and of later checkpoints" if checkpoint else "later checkpoints"
        return [self._metrics_lost(), f"the metadata.json of {metadata}",
                *(["the model"] if self._log_model else []), "the run's end"]

    def _attempt(self, write: Callable[[], None], lost: Callable[[], list[str]], *, ending: bool = False) -> None:
        """Run ``write``; on the first failure warn once, naming what ``lost`` says was not logged; then stop."""
        if self._failed:
            return
        try:
            write()
        except Exception as e:  # whatever the store raises, training must go on: one warning, then no more calls
            self._failed = True
            goes_on = "metrics.jsonl" if ending else "Training goes on, and metrics.jsonl"
            log.warning(_masked(
                f"codex: warning: MLflow store '{self._uri}' failed at step {self._step} ({first_line(e)}); not "
                f"logged to run {self._run_id}: {', '.join(lost())}. {goes_on} and the checkpoints have everything: "
                "once the store works again, 'codex train --resume' logs what is missing", self._raw_uri))
