"""Create the untrained codex-tiny: a small Llama config, seeded random weights, the tokenizer.

This is the starting point that `codex train --full` pretrains (see pretrain.yaml):

    python examples/codex-tiny/init_model.py --tokenizer artifacts/codex-tiny/tokenizer \
        --out artifacts/codex-tiny/init
"""

from __future__ import annotations

import argparse
from pathlib import Path

SEED = 1234
# ~2.4M parameters: 9.4 MB of fp32 safetensors, under the 10 MB budget for a built-in model.
ARCHITECTURE = dict(
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=6,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    initializer_range=0.02,
)


def init(tokenizer_dir: Path, out: Path) -> Path:
    """Save a seeded random-init Llama model and the tokenizer into ``out``."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **ARCHITECTURE,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=64,
        do_sample=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=Path("artifacts/codex-tiny/tokenizer"))
    parser.add_argument("--out", type=Path, default=Path("artifacts/codex-tiny/init"))
    args = parser.parse_args()
    out = init(args.tokenizer, args.out)
    print(f"untrained codex-tiny saved to {out}")


if __name__ == "__main__":
    main()
