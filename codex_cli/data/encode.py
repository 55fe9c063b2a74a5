"""Records to token examples: mask secrets, tokenize, append eos, truncate or pack, mask prompt labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from codex_cli.config import MaskConfig
from codex_cli.data.readers import Record

IGNORE_INDEX = -100  # label value the loss skips (prompt tokens, padding)


@dataclass
class Example:
    """One training sequence; ``labels`` is -100 where the loss must not count."""

    input_ids: list[int]
    labels: list[int]


@dataclass
class Encoded:
    """The examples of one file and what happened on the way."""

    examples: list[Example] = field(default_factory=list)
    masked_secrets: int = 0
    truncated: int = 0  # examples cut to max_length
    skipped: int = 0  # examples left with no token to learn from (empty, or prompt filled max_length)


def encode_records(records: list[Record], tokenizer: Any, *, max_length: int, mask_secrets: bool,
                   mask: MaskConfig, pack: bool) -> Encoded:
    """Tokenize records; ``pack`` joins all text and cuts it into max_length windows (for .txt)."""
    prompts, texts, masked = _scrub(records, mask_secrets, mask)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    text_ids = _tokenize(tokenizer, texts)
    if pack:
        stream = [token for ids in text_ids for token in ids + eos]
        result = Encoded(masked_secrets=masked)
        for start in range(0, len(stream), max_length):
            _add(result, stream[start:start + max_length], 0)
        return result
    prompt_ids = _tokenize(tokenizer, [p for p in prompts if p is not None])
    result = Encoded(masked_secrets=masked)
    prompt_iter = iter(prompt_ids)
    for prompt, ids in zip(prompts, text_ids):
        head = next(prompt_iter) if prompt is not None else []
        sequence = head + ids + eos
        if len(sequence) > max_length:
            result.truncated += 1
        _add(result, sequence[:max_length], len(head))
    return result


def _scrub(records: list[Record], mask_secrets: bool, mask: MaskConfig) -> tuple[list[Optional[str]], list[str], int]:
    prompts = [prompt for _, prompt, _ in records]
    texts = [text for _, _, text in records]
    if not mask_secrets:
        return prompts, texts, 0
    from codex_cli.masking import mask_text, policy_for

    total = 0
    policy = policy_for(mask)

    def scrub(value: str) -> str:
        nonlocal total
        masked, count = mask_text(value, replacement=mask.replacement, policy=policy)
        total += count
        return masked

    prompts = [scrub(p) if p is not None else None for p in prompts]
    texts = [scrub(t) for t in texts]
    return prompts, texts, total


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    # verbose=False: long .txt documents are meant to exceed model_max_length before packing.
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


def _add(result: Encoded, ids: list[int], prompt_len: int) -> None:
    labels = [IGNORE_INDEX] * min(prompt_len, len(ids)) + ids[prompt_len:]
    # The model predicts token i from tokens < i, so position 0 never counts in the loss.
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        result.skipped += 1
        return
    result.examples.append(Example(input_ids=ids, labels=labels))
