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
