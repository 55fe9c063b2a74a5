"""The gated patterns: the cheap substring gate in front of a slow regex never hides one of its matches."""

from __future__ import annotations

import random

import pytest
from regex_sample import sample

from codex_cli.masking.rules import base, values
from codex_cli.masking.rules.base import gated_pattern

GATED = {"base placeholder": base._PLACEHOLDER, "value placeholder": values._PLACEHOLDER,
         "template": values._TEMPLATE}


@pytest.mark.parametrize("name", GATED)
def test_every_match_of_a_gated_pattern_passes_its_gate(name: str) -> None:
    pattern: gated_pattern = GATED[name]
    source = pattern._source.decode("latin-1")
    rng = random.Random(1234)
    for _ in range(1500):  # random branches: every alternative of the pattern comes up many times
        text = sample(source, rng).encode("latin-1")
        assert any(gate in text.lower() for gate in pattern.gates), text
        assert pattern.found(text)


@pytest.mark.parametrize("name", GATED)
def test_a_gated_pattern_finds_exactly_what_its_regex_finds(name: str) -> None:
    pattern: gated_pattern = GATED[name]
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./<>[]{}$#%*:="
    texts = ["".join(rng.choices(alphabet, k=rng.randrange(1, 60))) for _ in range(3000)]
    texts += ["YOUR_API_KEY", "<your-token>", "${DB_PASSWORD}", "xxxxxxxx", "changeme", "wJalrXUtnFEMI/EXAMPLEKEY",
              "sk-ant-api03-" + "a1B2c3D4e5" * 9, "%(password)s", "*anchor", "not_a_real_key", "TokenHere"]
    for text in texts:
        data = text.encode()
        assert pattern.found(data) == (pattern().search(data) is not None), text


def _sequence_runs_by_loop(body: bytes, shortest: int) -> int:
    covered, run, last = 0, 1, -2
    for c in body.lower():
        run = run + 1 if c == last + 1 and (48 <= c <= 57 or 97 <= c <= 122) else 1
        if run == shortest:
            covered += shortest
        elif run > shortest:
            covered += 1
        last = c
    return covered


def test_sequence_runs_quick_answer_never_changes_the_count() -> None:
    """sequence_runs answers 0 at once when no shortest - 1 steps of +1 follow each other; that must be exactly
    when the byte-by-byte count is 0 too (wrap-around, upper case, punctuation before a digit included)."""
    rng = random.Random(1234)
    alphabets = [b"abcdefghij0123456789", bytes(range(256)), b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/09",
                 b"\xfe\xff\x00\x01\x02"]
    for _ in range(20000):
        alphabet = rng.choice(alphabets)
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        for shortest in (2, 3, 4, 5):
            assert base.sequence_runs(body, shortest) == _sequence_runs_by_loop(body, shortest), (body, shortest)
    assert base.sequence_runs(b"xxABCDEFGHxx", 4) == 8 and base.sequence_runs(b"/0123", 4) == 5
