"""``codex serve``: a Starlette app that batches, streams and never leaks a secret.

``create_app`` is the uvicorn factory (``uvicorn --factory codex_cli.serving:create_app``);
``run_server`` is what the CLI calls. Torch is imported only when a real model loads.
"""

from __future__ import annotations

from codex_cli.serving.app import create_app
from codex_cli.serving.server import run_server

__all__ = ["create_app", "run_server"]
