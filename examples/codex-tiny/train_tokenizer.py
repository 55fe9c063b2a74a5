"""Train the codex-tiny byte-level BPE tokenizer on the corpus, offline, with `tokenizers`.

Byte-level BPE with no normalizer and no prefix space is lossless: any UTF-8 text
encodes and decodes back to itself. Deterministic for a given corpus.

    python examples/codex-tiny/train_tokenizer.py --corpus artifacts/codex-tiny/corpus.txt \
        --out artifacts/codex-tiny/tokenizer
"""

from __future__ import annotations

import argparse
from pathlib import Path

VOCAB_SIZE = 4096
EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train(corpus: Path, out: Path, vocab_size: int = VOCAB_SIZE) -> Path:
    """Train the tokenizer and save it with save_pretrained into ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    documents = corpus.read_text(encoding="utf-8").split(EOS)
    tok.train_from_iterator(documents, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=PAD,
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("artifacts/codex-tiny/corpus.txt"))
    parser.add_argument("--out", type=Path, default=Path("artifacts/codex-tiny/tokenizer"))
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    args = parser.parse_args()
    out = train(args.corpus, args.out, args.vocab_size)
    print(f"tokenizer saved to {out}")


if __name__ == "__main__":
    main()
