"""The built-in secret rules, in priority order: where two could match at one position, the first wins.

Key blocks come first, then provider formats (the most specific), then structured secrets (URIs,
headers), then name-keyed values (the most general). ``base`` states the invariant every rule
keeps; ``tests/test_masking_rules.py`` has positive and negative examples for each.
"""

from __future__ import annotations

from codex_cli.masking.rules import contextual, keys, providers, structured
from codex_cli.masking.rules.base import (
    ALLOW_MARKER,
    ALLOW_REACH,
    BLOCK,
    LINE,
    LOOKBEHIND,
    REACH,
    TOKEN,
    Anchor,
    Hit,
    HsPattern,
    Rule,
)

RULES: tuple[Rule, ...] = keys.RULES + providers.RULES + structured.RULES + contextual.RULES

__all__ = ["ALLOW_MARKER", "ALLOW_REACH", "BLOCK", "LINE", "LOOKBEHIND", "REACH", "RULES", "TOKEN", "Anchor", "Hit",
           "HsPattern", "Rule"]
