"""Training data: read .jsonl/.csv/.txt, scrub secrets, tokenize, cache, split, and batch.

``load_datasets`` returns a stable list of examples for a given file and seed (the training
loop shuffles per epoch with its own generator). Tokenized files are cached on disk, so a
second run with the same file, tokenizer and settings does not tokenize again.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from codex_cli.config import MaskConfig
from codex_cli.data import cache
from codex_cli.data.encode import IGNORE_INDEX, Encoded, Example, encode_records
from codex_cli.data.readers import Fields, decode, detect_format, read_bytes, read_records
from codex_cli.errors import DataError

if TYPE_CHECKING:
    import torch

    from codex_cli.config import DataConfig

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "data"
BUNDLED_TRAIN = BUNDLED_DIR / "train.jsonl"
BUNDLED_EVAL = BUNDLED_DIR / "eval.jsonl"

__all__ = ["Datasets", "Example", "IGNORE_INDEX", "collate", "count_tokens", "load_datasets"]


@dataclass
class Datasets:
    """Train and eval examples plus what the CLI reports about them."""

    train: list[Example]
    eval: list[Example]
    masked_secrets: int
    cache_hit: bool
    train_path: str
    eval_path: Optional[str]
    truncated: int = 0  # examples cut to data.max_length
    skipped: int = 0  # examples with no token to learn from, left out


def load_datasets(cfg: DataConfig, tokenizer: Any, *, seed: int, mask: MaskConfig = MaskConfig()) -> Datasets:
    """Load, scrub (with ``mask``'s replacement, rules and allow list), tokenize (or read from cache), split."""
    train_path, eval_path = _paths(cfg)
    train = _load_file(train_path, "data.train", cfg, tokenizer, mask)
    if eval_path is not None:
        evaluation = _load_file(eval_path, "data.eval", cfg, tokenizer, mask)
        train_examples, eval_examples = train[0].examples, evaluation[0].examples
        parts = [train, evaluation]
    else:
        train_examples, eval_examples = _split(train[0].examples, cfg.eval_fraction, seed, str(train_path))
        parts = [train]
    return Datasets(
        train=train_examples, eval=eval_examples,
        masked_secrets=sum(p[0].masked_secrets for p in parts), cache_hit=all(p[1] for p in parts),
        train_path=str(train_path), eval_path=str(eval_path) if eval_path is not None else None,
        truncated=sum(p[0].truncated for p in parts), skipped=sum(p[0].skipped for p in parts),
    )


def _paths(cfg: DataConfig) -> tuple[Path, Optional[Path]]:
    if cfg.train is None:  # the bundled dataset comes with its own eval split
        return BUNDLED_TRAIN, Path(cfg.eval) if cfg.eval is not None else BUNDLED_EVAL
    return Path(cfg.train), Path(cfg.eval) if cfg.eval is not None else None


def _load_file(path: Path, key: str, cfg: DataConfig, tokenizer: Any, mask: MaskConfig) -> tuple[Encoded, bool]:
    """The file's examples and whether they came from the cache."""
    label = str(path)
    raw = read_bytes(path.expanduser(), label, key)
    fmt = detect_format(path, cfg.format, label)
    fields = Fields(cfg.text_field, cfg.prompt_field, cfg.completion_field)
    settings = {"tokenizer": cache.tokenizer_identity(tokenizer), "max_length": cfg.max_length, "format": fmt,
                "fields": [fields.text, fields.prompt, fields.completion],
                "masking": _masking_identity(mask) if cfg.mask_secrets else None}
    entry = cache.cache_dir(cfg.cache_dir) / f"{cache.cache_key(raw, settings)}.safetensors"
    cached = cache.load(entry)
    if cached is not None:
        return cached, True
    records = read_records(decode(raw, label), fmt, fields, label)
    encoded = encode_records(records, tokenizer, max_length=cfg.max_length, mask_secrets=cfg.mask_secrets,
                             mask=mask, pack=fmt == "txt")
    if not encoded.examples:
        raise DataError(f"data file '{label}' has no example with a token to learn from; "
                        "check its records or raise data.max_length")
    try:
        cache.save(entry, encoded)
    except OSError as e:
        raise DataError(f"cannot write the data cache in '{entry.parent}' ({type(e).__name__}); "
                        "set data.cache_dir to a writable directory") from e
    return encoded, False


def _masking_identity(mask: MaskConfig) -> str | None:
    """What decides the masked text: the rules (built-in and yours), the allow list and the replacement
    (None when DISABLE_SECRET_FILTER is set)."""
    from codex_cli.masking import policy_for, ruleset_identity, secret_filter_disabled

    if secret_filter_disabled():
        return None  # masking is off everywhere: the tokens are those of an unmasked run
    return hashlib.sha256(f"{mask.replacement}\0{ruleset_identity(policy_for(mask))}".encode("utf-8")).hexdigest()


def _split(examples: list[Example], fraction: float, seed: int, label: str) -> tuple[list[Example], list[Example]]:
    """A seeded eval split; both parts keep file order."""
    if fraction == 0:
        return examples, []
    n_eval = max(1, round(len(examples) * fraction))
    if n_eval >= len(examples):
        raise DataError(f"data file '{label}' has too few examples ({len(examples)}) to split off "
                        f"data.eval_fraction={fraction}; add data, set data.eval, or set data.eval_fraction=0")
    held_out = set(random.Random(seed).sample(range(len(examples)), n_eval))
    train = [e for i, e in enumerate(examples) if i not in held_out]
    return train, [e for i, e in enumerate(examples) if i in held_out]


def collate(batch: list[Example], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask and labels (-100 on padding), as int64 tensors."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def count_tokens(batch: Union[dict[str, Any], list[Example]]) -> int:
    """Label tokens that count in the causal-LM loss: labels != -100, after the one-position shift."""
    if isinstance(batch, dict):
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    return sum(sum(1 for label in e.labels[1:] if label != IGNORE_INDEX) for e in batch)
