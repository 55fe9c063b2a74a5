"""Print what a model continues a Python prompt with (greedy by default), to eyeball a base model.

    python examples/codex-tiny/sample.py --model codex_cli/assets/codex-tiny --prompt "def read_lines(path):"
"""

from __future__ import annotations

import argparse

PROMPTS = ["import os\n\n\ndef ", "class Parser:\n    def __init__(self, ", "    for line in lines:\n"]


def sample(model_dir: str, prompt: str, max_new_tokens: int, temperature: float, seed: int) -> str:
    """The prompt followed by the model's continuation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    options = dict(do_sample=True, temperature=temperature, top_k=40) if temperature > 0 else dict(do_sample=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **options)
    return tokenizer.decode(out[0], skip_special_tokens=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="codex_cli/assets/codex-tiny")
    parser.add_argument("--prompt", action="append", help="repeatable; default: three Python prompts")
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    for prompt in args.prompt or PROMPTS:
        print(sample(args.model, prompt, args.max_new_tokens, args.temperature, args.seed))
        print("-" * 60)


if __name__ == "__main__":
    main()
