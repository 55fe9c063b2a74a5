"""Which model a server answers with, checked cheaply at startup and loaded once on the worker thread.

Order: ``--checkpoint PATH``; else ``--follow DIR`` (the checkpoint its latest.json names, then each new
one); else ``serve.model`` (``--model``; ``echo`` is the echo model); else the checkpoint named by
latest.json in ``checkpoint.dir``; else ``model.name``. There is no fallback: a source that cannot be
loaded is an error. Adapters (``--adapter NAME=PATH``) are checked against the source's base here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

from codex_cli.checkpoint import layout
from codex_cli.checkpoint.inference import is_checkpoint_ref
from codex_cli.errors import CheckpointError, UsageError
from codex_cli.model import resolve_model_path
from codex_cli.serving.adapters import (
    AdapterRef,
    BaseModel,
    base_of_checkpoint,
    base_of_model,
    find_adapter,
    parse_specs,
)
from codex_cli.serving.generation import ECHO_NAME, EchoEngine, Engine
from codex_cli.serving.settings import ServeSettings

if TYPE_CHECKING:
    from codex_cli.serving.generation.engine import TorchEngine
    from codex_cli.serving.generation.lora import PreparedAdapter

Origin = Literal["--checkpoint", "--follow", "serve.model", "latest.json", "model.name"]
FULL_FOLLOW_NO_ADAPTERS = ("adapters need a fixed base model, and --follow of a full fine-tuning run changes the "
                           "base with every checkpoint; follow a LoRA run or serve a checkpoint")


@dataclass(frozen=True)
class ModelSource:
    """A model reference, where it came from, the name clients use, and the adapters served on it."""

    ref: str
    origin: Origin
    name: str
    checkpoint: str = ""  # the name of the weights that answer; "" means the same as ``name``
    kind: Literal["lora", "full", "model", "echo"] = "model"
    adapters: tuple[AdapterRef, ...] = ()

    @property
    def is_echo(self) -> bool:
        return self.kind == "echo"

    @property
    def weights_name(self) -> str:
        """The name responses give for the weights that produced them."""
        return self.checkpoint or self.name

    def describe(self) -> str:
        """One line for the startup log."""
        served = f"'{self.name}' (from {self.origin}: {self.ref})"
        return served + "".join(f", adapter '{a.name}' ({a.path})" for a in self.adapters)


def select_source(settings: ServeSettings) -> ModelSource:
    """Pick the model to serve and check that it exists, and that every adapter fits it, without loading (no torch)."""
    settings.check()
    source = _pick(settings)
    specs = parse_specs(settings.serve.adapters)
    if not specs:
        return source
    if source.is_echo:
        raise UsageError("the echo model takes no adapters; drop --adapter (serve.adapters) or serve a real model")
    if source.origin == "--follow" and source.kind == "full":
        raise UsageError(FULL_FOLLOW_NO_ADAPTERS)
    base = source_base(source, settings)
    adapters = []
    for name, path in specs:
        if name == source.name:
            raise UsageError(f"adapter '{name}' has the name of the base model; give it another name")
        adapters.append(find_adapter(name, path, base, settings.model))
    return replace(source, adapters=tuple(adapters))


def source_base(source: ModelSource, settings: ServeSettings) -> BaseModel:
    """The base model that adapters served on ``source`` must have been trained on."""
    if source.kind == "model":
        return base_of_model(source.ref, settings.model)
    checkpoint = Path(source.ref)
    return base_of_checkpoint(checkpoint, layout.read_metadata(checkpoint), settings.model)


def _pick(settings: ServeSettings) -> ModelSource:
    serve = settings.serve
    if settings.checkpoint and serve.model:
        raise UsageError("give either --checkpoint or --model (serve.model), not both")
    if serve.follow and (settings.checkpoint or serve.model):
        raise UsageError("give either --follow (serve.follow) or --checkpoint/--model, not both")
    if settings.checkpoint:
        return _checkpoint(layout.resolve_checkpoint(Path(settings.checkpoint).expanduser()), "--checkpoint")
    if serve.follow:
        return _followed(Path(serve.follow).expanduser())
    if serve.model == ECHO_NAME:
        return ModelSource(ECHO_NAME, "serve.model", ECHO_NAME, kind="echo")
    if serve.model:
        return _plain(settings, serve.model, "serve.model")
    latest = layout.read_latest(Path(settings.checkpoint_dir).expanduser())
    if latest is not None:
        return _checkpoint(Path(settings.checkpoint_dir).expanduser() / latest, "latest.json")
    return _plain(settings, settings.model.name, "model.name")


def _checkpoint(checkpoint: Path, origin: Origin, name: Optional[str] = None) -> ModelSource:
    kind = layout.read_metadata(checkpoint)["kind"]
    return ModelSource(str(checkpoint), origin, name or checkpoint.name, checkpoint.name, kind)


def _followed(ckpt_dir: Path) -> ModelSource:
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"--follow: '{ckpt_dir}' is not a directory; point it at the checkpoint.dir of a "
                              "training run")
    latest = layout.read_latest(ckpt_dir)
    if latest is None:
        raise CheckpointError(f"--follow: '{ckpt_dir}' has no {layout.LATEST_FILE} yet; start codex serve once "
                              "training has written its first checkpoint")
    return _checkpoint(ckpt_dir / latest, "--follow", ckpt_dir.resolve().name)


def _plain(settings: ServeSettings, ref: str, origin: Literal["serve.model", "model.name"]) -> ModelSource:
    if is_checkpoint_ref(ref):
        return _checkpoint(layout.resolve_checkpoint(Path(ref).expanduser()), origin)
    resolve_model_path(replace(settings.model, name=ref))
    return ModelSource(ref, origin, ref)


def load_engine(source: ModelSource, settings: ServeSettings, adapters: list[tuple[str, AdapterRef]]) -> Engine:
    """Load the model and tokenizer behind ``source``, then its adapters under their inner names (worker thread)."""
    limits = {"max_prompt_tokens": settings.serve.max_prompt_tokens, "mask": settings.mask}
    if source.is_echo:
        return EchoEngine(**limits)
    chunk = settings.serve.prefill_chunk_tokens
    from codex_cli.checkpoint.inference import load_for_inference
    from codex_cli.runtime import configure_threads
    from codex_cli.serving.generation.engine import TorchEngine

    configure_threads(settings.threads)
    loaded = load_for_inference(source.ref, settings.model, verify=True)
    engine = TorchEngine(loaded.model, loaded.tokenizer, loaded.name, prefill_chunk_tokens=chunk, **limits)
    for inner, adapter in adapters:
        attach_adapter(engine, inner, adapter)
    return engine


def attach_adapter(engine: TorchEngine, inner: str, adapter: AdapterRef) -> None:
    """Verify an adapter's files, read it and add it to the engine as ``inner`` (call on the worker thread)."""
    try:
        engine.attach(inner, read_verified(adapter, engine.device))
    except (UsageError, CheckpointError) as e:
        raise type(e)(f"adapter '{adapter.name}': {e}") from e


def read_verified(adapter: AdapterRef, device: str) -> PreparedAdapter:
    """Re-hash a codex adapter checkpoint's files, then read its config and weights onto ``device``."""
    from codex_cli.serving.generation.lora import read_adapter

    if adapter.codex:
        layout.verify_checkpoint(adapter.path, rehash=True)
    return read_adapter(str(adapter.path), device)
