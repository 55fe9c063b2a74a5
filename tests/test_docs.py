"""The README, the config reference and CI stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codex_cli.config import known_keys

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_quickstart_has_exactly_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in _bash_blocks(quickstart)]
    assert len(blocks) == 2
    assert all("\n" not in b for b in blocks)
    assert "codex train --epochs 1 --lora" in blocks[0]
    assert "codex ckpt inspect artifacts/ckpts" in blocks[0]
    assert "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    test_command = _bash_blocks(quickstart)[1].strip()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


@pytest.mark.parametrize("key", known_keys())
def test_every_config_key_is_documented(key: str) -> None:
    assert f"| `{key}` |" in (REPO / "docs" / "config.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["codex train", "codex ckpt inspect", "codex ckpt load", "codex ckpt export",
                                     "codex serve", "codex mask", "codex config show"])
def test_every_command_has_a_readme_section(command: str) -> None:
    assert re.search(rf"^### .*`{re.escape(command)}", README, flags=re.M), command


def test_changelog_has_unreleased_section() -> None:
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
