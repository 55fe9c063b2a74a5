"""Chat conversations as text: the model's chat template, or codex's default for models without one.

``codex train`` renders chat records with it (the loss counts only the assistant turns) and
``codex serve`` renders /v1/chat/completions messages with the same function, so a model is
served in exactly the format it was fine-tuned on. The default template ends every assistant
turn with the tokenizer's EOS token, so a model trained on it learns to stop where its turn ends.
"""

from __future__ import annotations

from typing import Any, Sequence

from codex_cli.errors import DataError

ROLES = ("system", "developer", "user", "assistant", "tool")
Message = tuple[str, str]  # (role, content)

# <|role|>\ncontent, one turn per line; an assistant turn ends with EOS.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


class ChatTemplateError(DataError):
    """The chat template could not render these messages."""


def template_of(tokenizer: Any) -> str:
    """The template codex renders chats with: the tokenizer's own, else DEFAULT_CHAT_TEMPLATE."""
    own = getattr(tokenizer, "chat_template", None)
    return own if isinstance(own, str) and own else DEFAULT_CHAT_TEMPLATE


def render_chat(tokenizer: Any, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
    """The conversation as the model sees it; with ``add_generation_prompt`` it ends where the assistant speaks."""
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template([{"role": role, "content": content} for role, content in messages],
                                             chat_template=template_of(tokenizer), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except TemplateError as e:
        raise ChatTemplateError(f"the chat template refused these messages ({first_message(e)})") from e
    return text


def assistant_spans(tokenizer: Any, messages: Sequence[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns (end-of-turn marker included)."""
    full = render_chat(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for i, (role, _) in enumerate(messages):
        if role != "assistant":
            continue
        before = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
        through = render_chat(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (through.startswith(before) and full.startswith(through)):
            raise ChatTemplateError("the chat template does not render a conversation as the prefix of its "
                                    "continuation, so its assistant turns cannot be found")
        spans.append((len(before), len(through)))
    return full, spans


def encode_chat(tokenizer: Any, messages: Sequence[Message]) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation and, for each, whether it belongs to an assistant turn."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = list(encoded["input_ids"])
    # a token that reaches into an assistant turn counts (a template whose prompt ends in a space merges it
    # into the turn's first token)
    learn = [any(begin < end_ and finish > start_ for start_, end_ in spans) for begin, finish in
             encoded["offset_mapping"]]
    return ids, learn


def first_message(error: Exception) -> str:
    """The first line of a template's own error (written by the template's author, never by a client)."""
    text = str(getattr(error, "message", None) or error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
