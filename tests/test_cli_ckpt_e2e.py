"""End to end: `codex train` writes checkpoints, `codex ckpt inspect|load|export` read them (installed codex)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ckpt_fixtures import codex_logits, plain_transformers_logits
from conftest import run_codex
from typer.testing import CliRunner

from codex_cli.checkpoint import layout
from codex_cli.cli import app

PROMPT = "def add(a, b):"


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_end_to_end_on_what_codex_train_writes(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`codex train` (LoRA, then full) → inspect, load and export the real output; exports load without codex."""
    lines = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(24)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    common = ["--model", str(tiny_model_dir), "--data", "d.jsonl", "train.batch_size=8", "data.mask_secrets=false",
              "--quiet"]
    for kind, ckpt_dir in (("--lora", "lora-ckpts"), ("--full", "full-ckpts")):
        proc = run_codex("train", "--epochs", "1", kind, f"checkpoint.dir={ckpt_dir}", *common, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"{ckpt_dir}/epoch-0001"
    lora_dir, full_dir = tmp_path / "lora-ckpts", tmp_path / "full-ckpts"

    proc = run_codex("ckpt", "inspect", str(lora_dir), "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["ok"], data["latest"], [r["name"] for r in data["rows"]]) == (True, "epoch-0001", ["epoch-0001"])
    assert data["rows"][0]["kind"] == "lora" and data["rows"][0]["eval_loss"] is not None
    assert len(data["metrics"]["losses"]) == data["rows"][0]["step"]  # one point per optimizer step
    result = _invoke("ckpt", "inspect", str(full_dir / "epoch-0001"), "--tensors", "--json")
    assert result.exit_code == 0, result.output
    names = {t["name"] for t in json.loads(result.stdout)["tensors"] if t["file"] == layout.MODEL_WEIGHTS}
    assert "model.embed_tokens.weight" in names and "lm_head.weight" in names

    proc = run_codex("ckpt", "load", str(lora_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["kind"], json.loads(proc.stdout)["integrity"]) == ("lora", "verified (sha256)")
    result = _invoke("ckpt", "load", str(full_dir), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "full"

    outs = {"adapter": tmp_path / "out-adapter", "merged": tmp_path / "out-merged", "full": tmp_path / "out-full"}
    proc = run_codex("ckpt", "export", str(lora_dir), str(outs["adapter"]))
    assert proc.returncode == 0, proc.stderr
    assert _invoke("ckpt", "export", str(lora_dir), str(outs["merged"]), "--merge").exit_code == 0
    assert _invoke("ckpt", "export", str(full_dir), str(outs["full"])).exit_code == 0
    jobs = {"auto": {k: str(v) for k, v in outs.items()},
            "peft": {"peft-on-checkpoint": [str(tiny_model_dir), str(lora_dir / "epoch-0001")]}}
    out = plain_transformers_logits(jobs, PROMPT, tmp_path)
    assert out["codex_cli imported"] is False
    lora_logits = codex_logits(lora_dir / "epoch-0001", PROMPT)
    for key in ("adapter", "merged", "peft-on-checkpoint"):
        assert out[key] == pytest.approx(lora_logits, abs=1e-5), key
    assert out["full"] == pytest.approx(codex_logits(full_dir / "epoch-0001", PROMPT), abs=1e-6)
