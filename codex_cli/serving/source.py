"""Which model a server answers with, checked cheaply at startup and loaded once on the worker thread.

Order: ``--checkpoint PATH``; else ``serve.model`` (``--model``; ``echo`` is the echo model);
else the checkpoint named by latest.json in ``checkpoint.dir``; else ``model.name``.
There is no fallback: a source that cannot be loaded is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from codex_cli.checkpoint import layout
from codex_cli.checkpoint.inference import is_checkpoint_ref
from codex_cli.errors import UsageError
from codex_cli.model import resolve_model_path
from codex_cli.serving.generation import ECHO_NAME, EchoEngine, Engine
from codex_cli.serving.settings import ServeSettings


@dataclass(frozen=True)
class ModelSource:
    """A model reference, where it came from, and the name responses carry."""

    ref: str
    origin: Literal["--checkpoint", "serve.model", "latest.json", "model.name"]
    name: str

    @property
    def is_echo(self) -> bool:
        return self.ref == ECHO_NAME and self.origin == "serve.model"

    def describe(self) -> str:
        """One line for the startup log."""
        return f"'{self.name}' (from {self.origin}: {self.ref})"


def select_source(settings: ServeSettings) -> ModelSource:
    """Pick the model to serve and check that it exists, without loading it (no torch)."""
    settings.check()
    if settings.checkpoint and settings.serve.model:
        raise UsageError("give either --checkpoint or --model (serve.model), not both")
    if settings.checkpoint:
        checkpoint = layout.resolve_checkpoint(Path(settings.checkpoint).expanduser())
        return ModelSource(str(checkpoint), "--checkpoint", checkpoint.name)
    if settings.serve.model == ECHO_NAME:
        return ModelSource(ECHO_NAME, "serve.model", ECHO_NAME)
    if settings.serve.model:
        return _plain(settings, settings.serve.model, "serve.model")
    latest = layout.read_latest(Path(settings.checkpoint_dir).expanduser())
    if latest is not None:
        return ModelSource(str(Path(settings.checkpoint_dir).expanduser() / latest), "latest.json", latest)
    return _plain(settings, settings.model.name, "model.name")


def _plain(settings: ServeSettings, ref: str, origin: Literal["serve.model", "model.name"]) -> ModelSource:
    if is_checkpoint_ref(ref):
        checkpoint = layout.resolve_checkpoint(Path(ref).expanduser())
        return ModelSource(str(checkpoint), origin, checkpoint.name)
    resolve_model_path(replace(settings.model, name=ref))
    return ModelSource(ref, origin, ref)


def load_engine(source: ModelSource, settings: ServeSettings) -> Engine:
    """Load the model and tokenizer behind ``source`` (call on the worker thread)."""
    limits = {"max_prompt_tokens": settings.serve.max_prompt_tokens, "mask": settings.mask}
    if source.is_echo:
        return EchoEngine(**limits)
    chunk = settings.serve.prefill_chunk_tokens
    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.runtime import configure_threads
    from codex_cli.serving.generation.engine import TorchEngine

    configure_threads(settings.threads)
    loaded = load_for_inference(source.ref, settings.model, verify=True)
    return TorchEngine(loaded.model, loaded.tokenizer, loaded.name, prefill_chunk_tokens=chunk, **limits)
