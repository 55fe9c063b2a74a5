"""``codex serve``: a Starlette app that batches continuously, streams and never leaks a secret.

Two halves: ``http`` (app, routes, schemas, guard, metrics, the uvicorn runner) and ``generation``
(jobs, the iteration-level scheduler, the engines, per-row LoRA); ``source`` picks and loads the model
that joins them, ``adapters`` checks LoRA adapters against its base, ``registry`` names what is served
and changes it at runtime, and ``follow`` switches to each new checkpoint of a training run.
``create_app`` is the uvicorn factory (``uvicorn --factory codex_cli.serving:create_app``);
``run_server`` is what the CLI calls. Torch is imported only when a real model loads.
"""

from __future__ import annotations

from codex_cli.serving.http import create_app, run_server

__all__ = ["create_app", "run_server"]
