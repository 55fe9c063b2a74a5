"""codex_cli.checkpoint.sharded: the names an FSDP save writes are the ones save_pretrained writes unsharded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codex_cli.checkpoint.layout import read_safetensors_header
from codex_cli.checkpoint.sharded import weight_file_names
from codex_cli.errors import ModelError


def _tiny(model_type: str, **extra: object) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    sizes = {"llama": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                           intermediate_size=32, vocab_size=64),
             "gpt2": dict(n_embd=16, n_layer=1, n_head=2, vocab_size=64, n_positions=32),
             "mixtral": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                             intermediate_size=32, vocab_size=64, num_local_experts=2)}
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **sizes[model_type], **extra))


@pytest.mark.parametrize(("model_type", "extra"), [
    pytest.param("llama", {"tie_word_embeddings": True}, id="llama-tied"),
    pytest.param("llama", {"tie_word_embeddings": False}, id="llama"),
    pytest.param("gpt2", {}, id="gpt2-tied"),
])
def test_the_names_are_those_save_pretrained_writes(tmp_path: Path, model_type: str, extra: dict) -> None:
    from transformers import AutoModelForCausalLM

    model = _tiny(model_type, **extra)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)  # as training has it: loaded by from_pretrained
    names = weight_file_names(reloaded, reloaded.state_dict())
    written = {name for name in read_safetensors_header(tmp_path / "model.safetensors") if name != "__metadata__"}
    assert set(names) == written
    assert all(names[name] == name for name in names)  # no renaming for these families: each is its parameter
    assert ("lm_head.weight" in names) == (extra.get("tie_word_embeddings") is False)


def test_weights_converted_on_save_cannot_be_streamed() -> None:
    model = _tiny("mixtral")
    expected = (r"^train\.strategy=fsdp cannot write a full 'mixtral' checkpoint tensor by tensor: "
                r"transformers converts its weights when saving \('model\.layers\.0\.")
    with pytest.raises(ModelError, match=expected):
        weight_file_names(model, model.state_dict())
