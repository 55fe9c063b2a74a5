"""Records to token examples: mask secrets, tokenize, append eos, truncate or pack, mask the labels that must
not count (prompts; in chats every turn but the assistant's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codex_cli.config import MaskConfig
from codex_cli.data.readers import Chat, Record

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
    scrub = _Scrubber(mask_secrets, mask)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    plain = [r for r in records if not isinstance(r, Chat)]
    prompts = [scrub(prompt) if prompt is not None else None for _, prompt, _ in plain]
    text_ids = _tokenize(tokenizer, [scrub(text) for _, _, text in plain])
    if pack:
        stream = [token for ids in text_ids for token in ids + eos]
        result = Encoded(masked_secrets=scrub.count)
        for start in range(0, len(stream), max_length):
            window = stream[start:start + max_length]
            _add(result, window, [True] * len(window))
        return result
    prompt_iter = iter(_tokenize(tokenizer, [p for p in prompts if p is not None]))
    plain_iter = iter(zip(prompts, text_ids))
    sequences = []  # (ids, learn) in file order
    for record in records:
        if isinstance(record, Chat):
            sequences.append(_chat(tokenizer, record, scrub))
            continue
        prompt, ids = next(plain_iter)
        head = next(prompt_iter) if prompt is not None else []
        sequences.append((head + ids + eos, [False] * len(head) + [True] * (len(ids) + len(eos))))
    result = Encoded(masked_secrets=scrub.count)
    for ids, learn in sequences:
        if len(ids) > max_length:
            result.truncated += 1
        _add(result, ids[:max_length], learn[:max_length])
    return result


def _chat(tokenizer: Any, record: Chat, scrub: _Scrubber) -> tuple[list[int], list[bool]]:
    from codex_cli.data.chat import ChatTemplateError, encode_chat

    try:
        return encode_chat(tokenizer, [(role, scrub(content)) for role, content in record.messages])
    except ChatTemplateError as e:
        raise ChatTemplateError(f"chat record on line {record.line}: {e}") from e


class _Scrubber:
    """Masks secrets in each piece of text it is given and counts them."""

    def __init__(self, enabled: bool, mask: MaskConfig) -> None:
        self.enabled = enabled
        self.replacement = mask.replacement
        self.policy = None
        if enabled:
            from codex_cli.masking import policy_for

            self.policy = policy_for(mask)  # the built-in rules and the config's own (mask.rules, mask.allow)
        self.count = 0

    def __call__(self, value: str) -> str:
        if not self.enabled:
            return value
        from codex_cli.masking import mask_text

        # bulk: one of many records, so the fastest engine pays off even for short ones (same output)
        masked, found = mask_text(value, replacement=self.replacement, policy=self.policy, bulk=True)
        self.count += found
        return masked


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    # verbose=False: long .txt documents are meant to exceed model_max_length before packing.
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


def _add(result: Encoded, ids: list[int], learn: list[bool]) -> None:
    labels = [token if counts else IGNORE_INDEX for token, counts in zip(ids, learn)]
    # The model predicts token i from tokens < i, so position 0 never counts in the loss.
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        result.skipped += 1
        return
    result.examples.append(Example(input_ids=ids, labels=labels))
