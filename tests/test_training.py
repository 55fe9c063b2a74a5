"""The training loop: schedule, batching, loss arithmetic under accumulation, determinism, checkpoints per epoch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from training_support import assert_bitwise_equal, make_config, metrics, run_training, write_jsonl

from codex_cli.data import count_tokens
from codex_cli.errors import CheckpointError
from codex_cli.training.batches import epoch_order, epoch_windows
from codex_cli.training.schedule import lr_at, make_plan
from codex_cli.training.step import evaluate, loss_sum, train_step


def _plan(schedule: str = "cosine", **kw: object) -> object:
    args = dict(batch_size=4, grad_accum=1, epochs=1, max_steps=None, lr=1.0, schedule=schedule)
    args.update(kw)
    return make_plan(40, **args)


@pytest.mark.parametrize(("n", "batch", "accum", "epochs", "max_steps", "steps_per_epoch", "total"), [
    pytest.param(40, 4, 1, 1, None, 10, 10, id="exact"),
    pytest.param(41, 4, 1, 2, None, 11, 22, id="partial-batch"),
    pytest.param(40, 4, 3, 1, None, 4, 4, id="partial-window"),
    pytest.param(40, 4, 1, 3, 7, 10, 7, id="max-steps"),
])
def test_plan_counts_steps(n: int, batch: int, accum: int, epochs: int, max_steps: int | None,
                           steps_per_epoch: int, total: int) -> None:
    plan = make_plan(n, batch_size=batch, grad_accum=accum, epochs=epochs, max_steps=max_steps, lr=1e-3,
                     schedule="cosine")
    assert (plan.steps_per_epoch, plan.total_steps) == (steps_per_epoch, total)


def test_warmup_steps_win_over_ratio_and_ratio_rounds_up() -> None:
    assert _plan(warmup_steps=3, warmup_ratio=0.5).warmup_steps == 3
    assert _plan(warmup_ratio=0.25).warmup_steps == 3  # ceil(0.25 * 10)


def test_lr_warms_up_linearly_then_decays() -> None:
    plan = _plan(warmup_steps=4)
    assert [lr_at(s, plan) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    decay = [lr_at(s, plan) for s in range(4, 10)]
    assert decay[0] == 1.0 and all(a > b for a, b in zip(decay, decay[1:])) and decay[-1] > 0
    assert lr_at(7, plan) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 6)))


def test_linear_and_constant_schedules() -> None:
    linear, constant = _plan("linear"), _plan("constant")
    assert [lr_at(s, linear) for s in (0, 5, 9)] == pytest.approx([1.0, 0.5, 0.1])
    assert {lr_at(s, constant) for s in range(10)} == {1.0}


def test_epoch_order_is_seeded_per_epoch_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first, again, other = epoch_order(20, 1234, 0), epoch_order(20, 1234, 0), epoch_order(20, 1234, 1)
    assert first == again and first != other and sorted(first) == list(range(20))
    assert torch.equal(torch.get_rng_state(), before)


def test_windows_cover_every_example_once_with_a_last_partial_window() -> None:
    windows = epoch_windows(10, batch_size=3, grad_accum=3, seed=1, epoch=0)
    assert [[len(b) for b in w] for w in windows] == [[3, 3, 3], [1]]
    assert sorted(i for w in windows for b in w for i in b) == list(range(10))


def _batch(rows: list[list[int]], labels: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), 1)
    lab = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row)
        lab[r, :len(row)] = torch.tensor((labels or rows)[r])
        mask[r, :len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def _model(tiny_model_dir: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()


def test_loss_sum_matches_transformers_mean_loss(tiny_model_dir: Path) -> None:
    model = _model(tiny_model_dir).eval().requires_grad_(False)
    batch = _batch([[5, 6, 7, 8, 9], [10, 11, 12]], [[-100, -100, 7, 8, 9], [10, 11, 12]])
    expected = model(**batch).loss  # transformers: mean over shifted, non-ignored labels
    assert count_tokens(batch) == 3 + 2
    assert loss_sum(model, batch, "fp32") / count_tokens(batch) == pytest.approx(float(expected), rel=1e-6)


def _grads_after(tiny_model_dir: Path, window: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    model = _model(tiny_model_dir)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step keeps weights, we read the gradients
    grads: list[torch.Tensor] = []
    opt.register_step_pre_hook(lambda o, a, k: grads.extend(p.grad.clone() for p in model.parameters()))
    train_step(model, opt, window, lr=0.0, grad_clip=None, precision="fp32")
    return grads


def test_accumulation_normalises_over_the_window_tokens(tiny_model_dir: Path) -> None:
    rows = [[3, 4, 5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15], [16, 17, 18, 19, 20, 21, 22, 23]]
    whole = _grads_after(tiny_model_dir, [_batch(rows)])
    split = _grads_after(tiny_model_dir, [_batch(rows[:1]), _batch(rows[1:3]), _batch(rows[3:])])
    mean_of_means = _grads_after(tiny_model_dir, [_batch(rows[:2])])  # a different window: must differ
    for a, b in zip(whole, split):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert not all(torch.allclose(a, b, rtol=1e-3) for a, b in zip(whole, mean_of_means))


def test_evaluate_is_the_token_mean_and_uses_no_rng(tiny_model_dir: Path) -> None:
    model = _model(tiny_model_dir)
    batches = [_batch([[3, 4, 5, 6]]), _batch([[7, 8, 9]])]
    state = torch.get_rng_state()
    loss = evaluate(model, batches, "fp32")
    assert torch.equal(state, torch.get_rng_state()) and model.training
    with torch.no_grad():
        total = sum(float(loss_sum(model.eval(), b, "fp32")) for b in batches)
    assert loss == pytest.approx(total / 5)
    assert evaluate(model, [], "fp32") is None


def test_lora_run_checkpoints_each_epoch_and_logs_metrics(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "train.epochs=2")
    result = run_training(cfg)
    ck = tmp_path / "ck"
    assert result.checkpoints_written == ("epoch-0001", "epoch-0002")
    assert (result.global_step, result.total_steps, result.epochs_done, result.kind) == (18, 18, 2, "lora")
    assert result.trainable_params < result.total_params
    assert result.eval_loss < result.initial_eval_loss
    assert (ck / "latest.json").is_file() and (ck / "epoch-0002" / "adapter_model.safetensors").is_file()
    lines = metrics(ck)
    steps = [m for m in lines if m["event"] == "step"]
    ends = [m for m in lines if m["event"] == "epoch_end"]
    assert [m["step"] for m in steps] == list(range(1, 19))
    assert all({"step", "epoch", "loss", "lr", "tokens_per_s"} <= m.keys() for m in lines)
    assert [(m["epoch"], m["step"]) for m in ends] == [(1, 9), (2, 18)]
    assert ends[-1]["perplexity"] == pytest.approx(math.exp(ends[-1]["eval_loss"]))


def test_full_run_with_max_steps_stops_mid_epoch_with_a_step_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=false", "train.max_steps=3",
                      "train.grad_accum=2", "train.warmup_steps=2")
    result = run_training(cfg)
    assert (result.global_step, result.epochs_done, result.checkpoints_written) == (3, 0, ("step-00000003",))
    assert result.trainable_params == result.total_params and result.eval_loss is not None
    assert (tmp_path / "ck" / "step-00000003" / "model.safetensors").is_file()


def test_two_runs_give_bitwise_identical_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    for name in ("a", "b"):
        run_training(make_config(tiny_model_dir, data, tmp_path / name, "lora.enabled=true", "train.max_steps=6"))
    assert_bitwise_equal(tmp_path / "a" / "step-00000006" / "adapter_model.safetensors",
                         tmp_path / "b" / "step-00000006" / "adapter_model.safetensors")


def test_bf16_and_gradient_checkpointing_train(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "train.max_steps=3",
                      "train.precision=bf16", "train.gradient_checkpointing=true")
    result = run_training(cfg)
    assert result.global_step == 3 and math.isfinite(result.train_loss)


def test_a_fresh_run_refuses_a_dir_that_holds_a_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl")
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=1")
    run_training(cfg)
    with pytest.raises(CheckpointError) as info:
        run_training(cfg)
    assert str(info.value) == (
        f"checkpoint.dir '{tmp_path / 'ck'}' already holds a run (latest.json exists); continue it with "
        "'codex train --resume', or set checkpoint.dir to another directory (or remove this one)"
    )


def test_a_signal_during_the_stop_agreement_stops_at_the_next_step(tiny_model_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C lands while the ranks are agreeing after step 2: the agreement carries the old answer, and the
    # request must survive it to stop the run after step 3 (it once was overwritten, and the run went on).
    import os
    import signal

    from codex_cli import distributed
    from codex_cli.training import loop

    agree = distributed.agree_to_stop

    def agree_with_a_signal_in_flight(requested: bool, step: int) -> bool:
        answer = agree(requested, step)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, after the answer was reached
        return answer

    monkeypatch.setattr(loop.distributed, "agree_to_stop", agree_with_a_signal_in_flight)
    data = write_jsonl(tmp_path / "train.jsonl")
    result = run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true"))
    assert result.interrupted
    assert (result.global_step, result.checkpoints_written) == (3, ("interrupt-00000003",))
