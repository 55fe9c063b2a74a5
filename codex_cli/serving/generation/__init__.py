"""The generation half of ``codex serve``: jobs, the iteration-level scheduler, and the engines it steps.

Nothing here knows HTTP: the HTTP half (``codex_cli.serving.http``) submits ``Job``s to the
``Scheduler`` and reads their text and outcome. Torch is imported only by the torch engine's modules.
"""

from __future__ import annotations

from codex_cli.serving.generation.echo import ECHO_NAME, EchoEngine
from codex_cli.serving.generation.jobs import GenRequest, Job, JobResult, Outcome, Target
from codex_cli.serving.generation.scheduler import Engine, Scheduler

__all__ = ["ECHO_NAME", "EchoEngine", "Engine", "GenRequest", "Job", "JobResult", "Outcome", "Scheduler", "Target"]
