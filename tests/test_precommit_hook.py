"""The shipped pre-commit hook, run by the real ``pre-commit`` on a throwaway git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / ".pre-commit-hooks.yaml"
GH = "ghp_" + "a1B2" * 9


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PRE_COMMIT_HOME=str(home / "pre-commit"), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def test_the_manifest_declares_the_codex_mask_hook() -> None:
    (hook,) = yaml.safe_load(MANIFEST.read_text())
    assert (hook["id"], hook["entry"], hook["language"]) == ("codex-mask", "codex mask --check", "system")


def test_pre_commit_refuses_a_commit_with_a_secret_and_lets_a_clean_one_through(tmp_path: Path) -> None:
    pre_commit = Path(sys.executable).with_name("pre-commit")
    if not pre_commit.exists():
        pytest.fail("pre-commit is not installed next to this Python; pip install -e '.[dev]'")
    env = _env(tmp_path)
    hooks = tmp_path / "hooks"  # a repository that ships the hook: our manifest, committed
    hooks.mkdir()
    shutil.copy(MANIFEST, hooks / ".pre-commit-hooks.yaml")
    _git(hooks, "init", "-q")
    _git(hooks, "add", ".")
    subprocess.run(["git", "commit", "-qm", "hook"], cwd=hooks, check=True, env=env, capture_output=True)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hooks, capture_output=True, text=True).stdout.strip()

    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n      - id: codex-mask\n")
    subprocess.run([str(pre_commit), "install"], cwd=project, check=True, env=env, capture_output=True, timeout=120)

    (project / "app.env").write_text(f"# settings\nGITHUB_TOKEN={GH}\n")
    _git(project, "add", ".")
    refused = subprocess.run(["git", "commit", "-m", "add settings"], cwd=project, env=env, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode != 0
    assert "app.env:2:14: github-token (github secret)" in refused.stdout + refused.stderr
    assert GH not in refused.stdout + refused.stderr

    (project / "app.env").write_text("# settings\nGITHUB_TOKEN=${GITHUB_TOKEN}\n")
    _git(project, "add", ".")
    accepted = subprocess.run(["git", "commit", "-m", "add settings"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "codex mask (no secrets)" in accepted.stderr and "Passed" in accepted.stderr
