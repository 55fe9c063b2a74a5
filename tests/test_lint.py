"""ruff keeps the code clean and enforces the ban on module-level heavy imports (TID253)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _ruff() -> str:
    exe = Path(sys.executable).with_name("ruff")
    return str(exe) if exe.exists() else (shutil.which("ruff") or "ruff")


def test_ruff_is_clean() -> None:
    result = subprocess.run([_ruff(), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_module_level_torch_import_in_the_cli_is_refused() -> None:
    # Checked as if it were a file of the CLI package, without writing one into the source tree.
    result = subprocess.run([_ruff(), "check", "--no-cache", "--stdin-filename", "codex_cli/cli/probe.py", "-"],
                            input="import torch\n\nprint(torch)\n", cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "TID253" in result.stdout
