"""Helpers shared by the training, checkpoint-store and resume tests: tiny data, configs, in-process runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codex_cli.config import CodexConfig, load_config

LINES = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(40)]


def write_jsonl(path: Path, texts: list[str] | None = None) -> Path:
    """A small `text` jsonl file (40 short Python snippets by default)."""
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in (texts or LINES)), encoding="utf-8")
    return path


def make_config(model_dir: Path, data: Path, ckpt_dir: Path, *overrides: str) -> CodexConfig:
    """A resolved config for a fast run on the tiny model: batch 4, eval split 10%, threads 1."""
    base = [f"model.name={model_dir}", f"data.train={data}", f"checkpoint.dir={ckpt_dir}", "train.batch_size=4",
            "threads=1", "data.mask_secrets=false"]
    return load_config(None, [*base, *overrides])


def run_training(cfg: CodexConfig, **kwargs: Any) -> Any:
    """codex_cli.training.train called the way the CLI calls it, in this process, quietly."""
    from codex_cli.training import train

    return train(cfg.model, cfg.lora, cfg.data, cfg.train, cfg.checkpoint, seed=cfg.seed, threads=cfg.threads,
                 mask=cfg.mask, run_config=cfg.redacted_dict(), **kwargs)


def tensors(path: Path) -> dict[str, Any]:
    """Every tensor of a safetensors file."""
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_bitwise_equal(a: Path, b: Path) -> None:
    """Two safetensors files hold the same tensor names with identical bits."""
    import torch

    left, right = tensors(a), tensors(b)
    assert sorted(left) == sorted(right)
    for name in left:
        assert torch.equal(left[name], right[name]), f"{name} differs between {a} and {b}"


def assert_tensors_close(a: Path, b: Path, *, rtol: float, atol: float) -> None:
    """Two safetensors files hold the same tensor names with values equal within the tolerances."""
    import torch

    left, right = tensors(a), tensors(b)
    assert sorted(left) == sorted(right)
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=rtol, atol=atol, msg=name)


def metrics(ckpt_dir: Path) -> list[dict[str, Any]]:
    """The parsed lines of metrics.jsonl."""
    return [json.loads(line) for line in (ckpt_dir / "metrics.jsonl").read_text().splitlines()]
