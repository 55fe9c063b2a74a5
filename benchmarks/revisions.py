"""codex at an older git revision, for benchmarks that time it against this checkout in the same run."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from pathlib import Path


def checkout(rev: str) -> Path:
    """``codex_cli`` at ``rev``, unpacked from git into a temp dir (removed at exit), run with this venv's packages:
    put the dir first on PYTHONPATH and run ``python -m codex_cli`` from it (``-m`` puts the working directory
    first on sys.path)."""
    repo = Path(__file__).resolve().parent.parent
    target = Path(tempfile.mkdtemp(prefix=f"codex-{rev[:12]}-"))
    atexit.register(shutil.rmtree, target, True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "codex_cli"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target
