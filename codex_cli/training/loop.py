"""The training loop: set up a run, then per epoch: steps, evaluation, checkpoint; read top to bottom."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from codex_cli import distributed
from codex_cli.checkpoint import store
from codex_cli.checkpoint.resume import resolve_resume
from codex_cli.config import TrackConfig
from codex_cli.data import collate, load_datasets
from codex_cli.errors import DataError
from codex_cli.model import base_identity, load_model
from codex_cli.runtime import configure_threads, seed_everything
from codex_cli.tracking import open_tracker
from codex_cli.training.batches import MicroBatch, epoch_windows, rank_windows
from codex_cli.training.progress import QuietReporter
from codex_cli.training.run import Run, build_optimizer, check_fresh_dir, perplexity, restore, save
from codex_cli.training.schedule import lr_at, make_plan
from codex_cli.training.signals import StopRequest, stop_on_signals
from codex_cli.training.step import StepStats, evaluate, train_step

if TYPE_CHECKING:
    from codex_cli.config import CheckpointConfig, DataConfig, LoraConfig, MaskConfig, ModelConfig, TrainConfig


@dataclass(frozen=True)
class TrainResult:
    """What a run did, for the summary table and for scripts."""

    kind: str
    model_name: str
    trainable_params: int
    total_params: int
    train_examples: int
    eval_examples: int
    masked_secrets: int
    cache_hit: bool
    threads: int
    epochs_done: int
    global_step: int
    total_steps: int
    steps_this_run: int
    samples_seen: int
    tokens_seen: int
    tokens_per_s: float
    elapsed_s: float
    train_loss: Optional[float]
    initial_eval_loss: Optional[float]
    eval_loss: Optional[float]
    perplexity: Optional[float]
    checkpoint: Optional[Path]
    checkpoints_written: tuple[str, ...]
    resumed_from: Optional[Path]
    interrupted: bool
    rank: int = 0  # under torchrun only rank 0 reports
    world_size: int = 1  # processes that trained together (each with `threads` threads)


def train(
    model_cfg: ModelConfig,
    lora_cfg: LoraConfig,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    ckpt_cfg: CheckpointConfig,
    *,
    seed: int,
    threads: int,
    mask: MaskConfig,
    run_config: dict[str, Any],
    resume: bool = False,
    resume_path: Optional[Path] = None,
    reporter: Optional[QuietReporter] = None,
    track_cfg: Optional[TrackConfig] = None,
) -> TrainResult:
    """Fine-tune (LoRA or full) and checkpoint every epoch; ``resume``/``resume_path`` continue a run exactly.

    ``run_config`` is the resolved config with secrets redacted: it is stored in every checkpoint and
    compared on resume. SIGINT/SIGTERM stop at the next step boundary with an ``interrupt`` checkpoint.
    Started by torchrun, each process trains as one rank of a DDP or FSDP run (docs/distributed.md). With
    tracking on (``track_cfg``, $CODEX_MLFLOW) rank 0 also logs the run to MLflow (codex_cli.tracking).
    """
    threads_used = configure_threads(threads)
    distributed.check_strategy(train_cfg.strategy, model_cfg, full=not lora_cfg.enabled)
    world = distributed.init_distributed(model_cfg.device)
    reporter = (reporter or QuietReporter()) if world.is_main else QuietReporter()  # rank 0 alone shows progress
    seed_everything(seed)
    resuming = resume or resume_path is not None
    checkpoint = _checkpoint_to_resume(Path(ckpt_cfg.dir), resume_path) if resuming else None
    notes = check_fresh_dir(Path(ckpt_cfg.dir)) if world.is_main and not resuming else []
    tracker = open_tracker(track_cfg or TrackConfig(), writer=world.is_main)  # MLflow missing: stop before any work
    sharding = train_cfg.strategy == "fsdp" and world.enabled  # FSDP moves each shard to the device itself
    loaded = load_model(model_cfg, lora_cfg, gradient_checkpointing=train_cfg.gradient_checkpointing,
                        to_device=not sharding)
    with distributed.main_process_first():  # rank 0 tokenizes and fills the cache, the others then read it
        data = load_datasets(data_cfg, loaded.tokenizer, seed=seed, mask=mask)
    if not data.train:
        raise DataError(f"no training examples in '{data.train_path}'; add records to it or point data.train elsewhere")
    plan = make_plan(len(data.train), batch_size=train_cfg.batch_size * world.world_size,  # the global batch
                     grad_accum=train_cfg.grad_accum, epochs=train_cfg.epochs, max_steps=train_cfg.max_steps,
                     lr=train_cfg.lr, schedule=train_cfg.scheduler, warmup_steps=train_cfg.warmup_steps,
                     warmup_ratio=train_cfg.warmup_ratio)
    step_model = distributed.wrap_model(loaded.model, world, strategy=train_cfg.strategy, precision=train_cfg.precision)
    # The optimizer comes after wrapping: FSDP replaces every parameter by its shard.
    run = Run(loaded, data, build_optimizer(loaded.model, train_cfg), plan, train_cfg, ckpt_cfg, seed,
              base_identity(model_cfg), run_config, reporter, world, tracker=tracker, step_model=step_model)
    notes += restore(run, checkpoint) if checkpoint is not None else []
    notes += _start_tracking(run)
    distributed.seed_rank(seed, world, run.state.global_step)  # dropout: ranks > 0 get their own streams
    _introduce(run, threads_used, [*loaded.notes, *notes])
    if not resuming:
        run.state.initial_eval_loss = _evaluate(run)
    run.started = time.perf_counter()
    with stop_on_signals() as stop:
        reporter.start(plan.total_steps, run.state.global_step, run.state.epoch + 1)
        try:
            interrupted = _fit(run, stop)
        except BaseException as error:
            run.tracker.end("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            reporter.stop()
    run.tracker.end("KILLED" if interrupted else "FINISHED", run.last_checkpoint)
    # shutdown() waits for every rank, so none leaves before rank 0 has written the last checkpoint: after a
    # stop the ranks exit 130, and torchrun stops the remaining ranks as soon as one exits non-zero.
    distributed.shutdown()
    return _result(run, threads_used, interrupted)


def _checkpoint_to_resume(ckpt_dir: Path, resume_path: Optional[Path]) -> Path:
    """The checkpoint to resume, found before anything is loaded; every rank takes the one rank 0 found."""
    return Path(distributed.broadcast_json(str(resolve_resume(ckpt_dir, resume_path))))


def _start_tracking(run: Run) -> list[str]:
    """Begin, or continue after a resume, the run's MLflow run; its id goes into the training state."""
    run_id, notes = run.tracker.start(run.state.mlflow_run_id, config=run.config, kind=run.loaded.kind,
                                      base_model=run.base_model, world_size=run.world.world_size,
                                      ckpt_dir=run.ckpt_dir, resumed_from=run.resumed_from)
    run.state.mlflow_run_id = run_id
    return notes


def _fit(run: Run, stop: StopRequest) -> bool:
    """Train epoch by epoch from the run's position; True when stopped by a signal."""
    cfg, state = run.train_cfg, run.state
    run.step_model.train()  # from_pretrained returns eval mode; dropout must be on while training
    # What every rank agreed at the last step. Kept apart from stop.requested: a signal that lands while
    # the agreement is in flight must not be overwritten by its result; it joins the next agreement.
    stopping = False
    for epoch in range(state.epoch, cfg.epochs):
        if state.global_step >= run.plan.total_steps:  # resumed a run that already reached max_steps
            break
        windows = _rank_windows(run, epoch)
        while state.step_in_epoch < len(windows) and state.global_step < run.plan.total_steps:
            stats = _step(run, windows[state.step_in_epoch])
            _after_step(run, stats, epoch)
            store.crash_point("step", state.global_step)  # tests only: SIGKILL right after this step
            # Ranks stop at the same step (or the others would wait forever in the next all-reduce).
            stopping = distributed.agree_to_stop(stop.requested, state.global_step)
            boundary = state.step_in_epoch == len(windows) or state.global_step == run.plan.total_steps
            if stopping and not boundary:
                save(run, "interrupt")
                return True
            if run.ckpt_cfg.every_steps and state.global_step % run.ckpt_cfg.every_steps == 0 and not boundary:
                save(run, "steps")
        if state.step_in_epoch < len(windows):  # max_steps ends the run inside this epoch
            _end_run_mid_epoch(run, epoch)
            return stopping
        _end_epoch(run, epoch)
        if stopping or state.global_step >= run.plan.total_steps:
            return stopping
    return False


def _rank_windows(run: Run, epoch: int) -> list[list[MicroBatch]]:
    """This rank's share of the epoch's windows of the global batch (all of them in one process)."""
    cfg, world = run.train_cfg, run.world
    windows = epoch_windows(len(run.data.train), batch_size=cfg.batch_size * world.world_size,
                            grad_accum=cfg.grad_accum, seed=run.seed, epoch=epoch)
    return rank_windows(windows, world.rank, world.world_size)


def _step(run: Run, window: list[MicroBatch]) -> StepStats:
    """Collate one accumulation window and take one optimizer step at the scheduled learning rate."""
    pad_id = run.loaded.tokenizer.pad_token_id
    device = run.device
    batches = [{k: v.to(device) for k, v in collate([run.data.train[i] for i in micro.indices], pad_id).items()}
               for micro in window]
    run.last_lr = lr_at(run.state.global_step, run.plan)
    return train_step(run.step_model, run.optimizer, batches, lr=run.last_lr, grad_clip=run.train_cfg.grad_clip,
                      precision=run.train_cfg.precision, stand_ins=[micro.stand_in for micro in window],
                      world_size=run.world.world_size)


def _after_step(run: Run, stats: StepStats, epoch: int) -> None:
    """Advance the counters, log the step to metrics.jsonl and the progress bar."""
    state = run.state
    state.global_step += 1
    state.step_in_epoch += 1
    state.samples_seen += stats.samples
    state.tokens_seen += stats.input_tokens
    state.epoch_loss_sum += stats.loss * stats.target_tokens
    state.epoch_target_tokens += stats.target_tokens
    run.steps_this_run += 1
    run.tokens_this_run += stats.input_tokens
    run.last_train_loss = stats.loss
    if state.global_step % run.train_cfg.log_every == 0 or state.global_step == run.plan.total_steps:
        record = {"event": "step", "step": state.global_step, "epoch": epoch + 1, "loss": stats.loss,
                  "lr": run.last_lr, "tokens_per_s": _tokens_per_s(run), "grad_norm": stats.grad_norm,
                  "tokens_seen": state.tokens_seen}
        _log_metrics(run, record)
        run.reporter.step(record)


def _end_epoch(run: Run, epoch: int) -> None:
    """Evaluate, log the epoch's line, move the data position to the next epoch and checkpoint."""
    train_loss, eval_loss = _evaluate_epoch(run, epoch)
    state = run.state
    state.epoch += 1
    state.step_in_epoch = 0
    state.epoch_loss_sum, state.epoch_target_tokens = 0.0, 0
    run.last_train_loss = train_loss
    save(run, "epoch", eval_loss=eval_loss)


def _end_run_mid_epoch(run: Run, epoch: int) -> None:
    """max_steps reached inside an epoch: evaluate and checkpoint where the run stands."""
    _, eval_loss = _evaluate_epoch(run, epoch)
    save(run, "steps", eval_loss=eval_loss)


def _evaluate_epoch(run: Run, epoch: int) -> tuple[float, Optional[float]]:
    """The epoch's mean train loss so far and the eval loss, logged as its epoch_end line."""
    state = run.state
    train_loss = state.epoch_loss_sum / max(state.epoch_target_tokens, 1)
    eval_loss = _evaluate(run)
    state.last_eval_loss = eval_loss
    if eval_loss is not None and (state.best_eval_loss is None or eval_loss < state.best_eval_loss):
        state.best_eval_loss = eval_loss
    record = {"event": "epoch_end", "step": state.global_step, "epoch": epoch + 1, "loss": train_loss,
              "lr": run.last_lr, "tokens_per_s": _tokens_per_s(run), "eval_loss": eval_loss,
              "perplexity": perplexity(eval_loss), "tokens_seen": state.tokens_seen}
    _log_metrics(run, record)
    run.reporter.epoch_end(record)
    return train_loss, eval_loss


def _log_metrics(run: Run, record: dict[str, Any]) -> None:
    """Append ``record`` to metrics.jsonl and hand it to the tracker; rank 0 alone writes, like every write."""
    if run.world.is_main:
        store.append_metrics(run.ckpt_dir, record)
        run.tracker.log_metrics(record)


def _evaluate(run: Run) -> Optional[float]:
    pad_id = run.loaded.tokenizer.pad_token_id
    world = run.world  # each rank scores its shard; evaluate() sums over the ranks
    device, size, examples = run.device, run.train_cfg.batch_size, run.data.eval[world.rank::world.world_size]
    batches = ({k: v.to(device) for k, v in collate(examples[i:i + size], pad_id).items()}
               for i in range(0, len(examples), size))
    return evaluate(run.loaded.model, batches, run.train_cfg.precision)


def _tokens_per_s(run: Run) -> float:
    elapsed = time.perf_counter() - run.started
    return run.tokens_this_run / elapsed if elapsed > 0 else 0.0


def _introduce(run: Run, threads: int, notes: list[str]) -> None:
    loaded, data = run.loaded, run.data
    share = 100.0 * loaded.trainable_params / max(loaded.total_params, 1)
    run.reporter.note(f"model {loaded.name} ({loaded.kind}): {loaded.trainable_params:,} trainable of "
                      f"{loaded.total_params:,} parameters ({share:.2f}%), {threads} thread(s)")
    cache = "cache hit" if data.cache_hit else "tokenized and cached"
    run.reporter.note(f"data: {len(data.train)} train / {len(data.eval)} eval examples, "
                      f"{data.masked_secrets} secret(s) masked, {cache}")
    for note in notes:
        run.reporter.note(note)


def _result(run: Run, threads: int, interrupted: bool) -> TrainResult:
    state, loaded, elapsed = run.state, run.loaded, time.perf_counter() - run.started
    return TrainResult(
        kind=loaded.kind, model_name=loaded.name, trainable_params=loaded.trainable_params,
        total_params=loaded.total_params, train_examples=len(run.data.train), eval_examples=len(run.data.eval),
        masked_secrets=run.data.masked_secrets, cache_hit=run.data.cache_hit, threads=threads,
        epochs_done=state.epoch, global_step=state.global_step, total_steps=run.plan.total_steps,
        steps_this_run=run.steps_this_run, samples_seen=state.samples_seen, tokens_seen=state.tokens_seen,
        tokens_per_s=_tokens_per_s(run), elapsed_s=elapsed, train_loss=run.last_train_loss,
        initial_eval_loss=state.initial_eval_loss, eval_loss=state.last_eval_loss,
        perplexity=perplexity(state.last_eval_loss), checkpoint=run.last_checkpoint,
        checkpoints_written=tuple(run.written), resumed_from=run.resumed_from, interrupted=interrupted,
        rank=run.world.rank, world_size=run.world.world_size,
    )
