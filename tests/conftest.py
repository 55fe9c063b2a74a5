"""Shared fixtures: an isolated environment for every test and a tiny offline model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Property tests draw the same examples on every run (a seed from each test's own code), so CI cannot fail on
# an example no earlier run drew; HYPOTHESIS_PROFILE=explore draws new ones each run, to look for more.
hypothesis_settings.register_profile("codex", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "codex"))

_TOKENIZER_TEXT = (
    "def add(a, b):\n    return a + b\n\nclass Point:\n    x: int = 0\n"
    "The quick brown fox jumps over the lazy dog. import os, sys, json\n"
    "for i in range(10):\n    print(i * 2)\n"
) * 20


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's config, caches or secret-filter switch."""
    home = tmp_path_factory.mktemp("home")
    for var in ("CODEX_CONFIG", "DISABLE_SECRET_FILTER", "CODEX_API_KEY", "CODEX_DEBUG", "CODEX_MLFLOW",
                "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("CODEX_CACHE_DIR", str(home / ".cache" / "codex"))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def codex_exe() -> str:
    """The installed ``codex`` console script next to this interpreter."""
    exe = Path(sys.executable).with_name("codex")
    return str(exe) if exe.exists() else shutil.which("codex") or "codex"


def run_codex(*args: str, input: bytes | str | None = None, cwd: Path | None = None,
              env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the installed ``codex`` command in a subprocess and capture its output as text."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run([codex_exe(), *args], input=data, capture_output=True, cwd=cwd, env=full_env, timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))


def build_tiny_model(path: Path, vocab_size: int = 320, hidden: int = 32, layers: int = 2) -> Path:
    """Save a tiny random Llama model and a byte-level BPE tokenizer to ``path`` (offline, < 1 s)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([_TOKENIZER_TEXT], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden,
                         intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama model + tokenizer saved with save_pretrained, shared by the session (read-only)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
