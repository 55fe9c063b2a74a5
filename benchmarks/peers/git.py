"""Read-only access to a peer's checkout: the files of HEAD, through ``git``, never the work tree."""

from __future__ import annotations

import subprocess


class Git:
    """Read files of HEAD from a checkout (bare or not) without touching its work tree."""

    def __init__(self, repo: str):
        self.repo = repo

    def _run(self, *args: str) -> str:
        proc = subprocess.run(["git", "-C", self.repo, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise FileNotFoundError(f"git {' '.join(args)} in {self.repo}: {proc.stderr.strip()}")
        return proc.stdout

    def commit(self) -> str:
        return self._run("rev-parse", "HEAD").strip()

    def show(self, path: str) -> str:
        return self._run("show", f"HEAD:{path}")

    def ls(self, subdir: str, recursive: bool = True) -> list[str]:
        args = ["ls-tree", "--name-only", "HEAD"] + (["-r"] if recursive else [])
        return [p for p in self._run(*args, subdir.rstrip("/") + "/").splitlines() if p]
