"""``codex serve --follow CKPT_DIR``: serve each new checkpoint a training run writes, without a restart.

A thread checks ``CKPT_DIR/latest.json`` every ``serve.follow_interval_s`` (its inode, size and mtime:
training replaces it atomically, after the checkpoint directory is complete). A new name is verified
first (the SHA256 of every file, as ``codex ckpt load`` does), then loaded on this thread and switched
in by the registry: requests already queued or running finish on the weights they started with, new
ones get the new checkpoint, and every response names the checkpoint that produced it. A checkpoint
that fails verification or cannot replace the served one is logged once and skipped; the old one
keeps serving. Polling starts once the first model has loaded.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

from codex_cli.checkpoint import layout
from codex_cli.errors import CodexError
from codex_cli.serving.errors import ApiError
from codex_cli.serving.registry import Registry

log = logging.getLogger("codex.serve")


class Follower:
    """Polls a checkpoint.dir's latest.json and switches the registry's base to each new, verified checkpoint."""

    def __init__(self, ckpt_dir: Path, interval: float, registry: Registry, loaded: threading.Event) -> None:
        self._dir = ckpt_dir
        self._interval = interval
        self._registry = registry
        self._loaded = loaded
        self._seen: Optional[tuple[int, int, int]] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="codex-follow", daemon=True)

    def start(self) -> None:
        """Start polling (in the background, once the model has loaded)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; a switch in progress finishes first."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def poll(self) -> Optional[str]:
        """Check latest.json once; switch to a new checkpoint if it names one. Returns the checkpoint switched to."""
        latest = self._dir / layout.LATEST_FILE
        try:
            stat = latest.stat()
        except FileNotFoundError:
            return None  # between two writes, or the run was moved: look again next time
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if seen == self._seen:
            return None
        self._seen = seen
        serving = self._registry.base.checkpoint
        name: Optional[str] = None
        try:
            name = layout.read_latest(self._dir)
            if name is None or name == serving:
                return None
            checkpoint = self._dir / name
            self._registry.switch(checkpoint, layout.verify_checkpoint(checkpoint, rehash=True))
        except (CodexError, ApiError) as e:
            log.error("codex: --follow: skipping %s: %s; still serving '%s'", _what(name), e, serving)
            return None
        except Exception:  # a bug: keep the traceback, keep serving and following
            log.exception("--follow: switching to checkpoint failed; still serving '%s'", serving)
            return None
        log.info("--follow: now serving checkpoint '%s' (requests already running finish on '%s')", name, serving)
        return name

    def _run(self) -> None:
        while not self._loaded.wait(timeout=self._interval):
            if self._stop.is_set():
                return
        while not self._stop.wait(self._interval):
            self.poll()


def _what(name: Optional[str]) -> str:
    return f"checkpoint '{name}'" if name else "latest.json"
