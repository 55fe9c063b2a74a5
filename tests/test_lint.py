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
    offender = REPO / "codex_cli" / "cli" / "_lint_probe.py"
    offender.write_text("import torch\n\nprint(torch)\n")
    try:
        result = subprocess.run([_ruff(), "check", "--no-cache", "--select", "TID253", str(offender)], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
    finally:
        offender.unlink()
    assert result.returncode == 1
    assert "TID253" in result.stdout
