"""What a server answers with, by the name clients send as ``model``, and how that changes while it runs.

The base model and every adapter are ``Target``s. A request is bound to its target when it is queued,
under the registry's lock, so it runs start to end on the weights it was bound to. Adding an adapter,
removing one and switching to a followed checkpoint read and check files on the calling thread (a
request's executor thread or the follower's, never the worker), attach the weights on the worker
between two steps, then publish the new target; the scheduler releases what was removed or replaced
once no queued or running request uses it. Torch is imported only by the engine these steps call.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from codex_cli.errors import CheckpointError, CodexError
from codex_cli.masking import mask_text
from codex_cli.serving.adapters import BaseModel, base_of_checkpoint, find_adapter, name_problem
from codex_cli.serving.errors import ApiError
from codex_cli.serving.generation import Target
from codex_cli.serving.source import FULL_FOLLOW_NO_ADAPTERS, ModelSource, read_verified, source_base

if TYPE_CHECKING:
    from codex_cli.serving.generation import Scheduler
    from codex_cli.serving.settings import ServeSettings

PEFT_DEFAULT = "default"  # the adapter name peft gives a LoRA checkpoint loaded as the base
MAX_LISTED = 20


class Registry:
    """The served targets by name; adapters added and removed, followed checkpoints switched, at runtime."""

    def __init__(self, source: ModelSource, settings: ServeSettings) -> None:
        self.source = source
        self.settings = settings
        self.scheduler: Optional[Scheduler] = None  # set once the server has started it
        self._lock = threading.Lock()
        self._inner = itertools.count(1)
        self.base = Target(source.name, source.weights_name, adapter=PEFT_DEFAULT if source.kind == "lora" else None)
        self._adapters: dict[str, Target] = {}
        self._reserved: set[str] = set()
        self._base_model: Optional[BaseModel] = None
        self.startup = [(self._inner_name(), adapter) for adapter in source.adapters]  # loaded with the model
        for inner, adapter in self.startup:
            self._adapters[adapter.name] = Target(adapter.name, adapter.checkpoint, inner, parent=source.name)

    def targets(self) -> list[Target]:
        """The base, then every adapter, as served now."""
        with self._lock:
            return [self.base, *self._adapters.values()]

    @contextlib.contextmanager
    def binding(self) -> Iterator[None]:
        """Hold while resolving a name and queuing its jobs, so no switch or removal falls in between."""
        with self._lock:
            yield

    def resolve(self, name: Optional[str]) -> Target:
        """The target for a request's ``model`` (None: the base); 404 listing what is served. Hold ``binding``."""
        if name is None or name == self.base.name:
            return self.base
        target = self._adapters.get(name)
        if target is not None:
            return target
        if name == self.base.checkpoint:  # the checkpoint the base name stands for now
            return self.base
        if not self._adapters:
            raise ApiError(404, f"this server serves model '{self.base.name}' only; set 'model' to it "
                                "(see GET /v1/models)", "model_not_found")
        names = [self.base.name, *self._adapters]
        listed = ", ".join(f"'{n}'" for n in names[:MAX_LISTED])
        more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        raise ApiError(404, f"this server serves models {listed}{more}; set 'model' to one of them "
                            "(see GET /v1/models)", "model_not_found")

    def add(self, name: str, path: str) -> Target:
        """Check, load and publish an adapter (blocking: call off the event loop); ApiError when it cannot be served."""
        self._check_changeable()
        problem = name_problem(name)
        if problem:
            raise ApiError(422, problem)
        with self._lock:
            if name in self._reserved or name in self._adapters or name in (self.base.name, self.base.checkpoint):
                raise ApiError(409, f"model '{name}' is already served; remove it first (DELETE /v1/adapters/"
                                    f"{name}) or choose another name", "conflict")
            self._reserved.add(name)
        try:
            adapter = find_adapter(name, path, self._base(), self.settings.model)
            prepared = read_verified(adapter, self._call(lambda engine: engine.device))
            inner = self._inner_name()
            self._call(lambda engine: engine.attach(inner, prepared))
            target = Target(name, adapter.checkpoint, inner, parent=self.base.name)
            with self._lock:
                self._adapters[name] = target
            return target
        except CodexError as e:
            raise ApiError(422, mask_text(str(e))[0]) from e
        finally:
            with self._lock:
                self._reserved.discard(name)

    def remove(self, name: str) -> Target:
        """Stop serving an adapter: new requests get 404 at once, those already queued or running finish on it."""
        self._check_changeable()
        with self._lock:
            if name in (self.base.name, self.base.checkpoint):
                raise ApiError(409, "the base model cannot be removed; only adapters can", "conflict")
            target = self._adapters.pop(name, None)
        if target is None:
            raise ApiError(404, "no adapter of that name is served (see GET /v1/models)", "model_not_found")
        inner = target.adapter
        self._scheduler().retire(target, lambda engine: engine.detach(inner))
        return target

    def switch(self, checkpoint: Path, metadata: dict[str, Any]) -> Target:
        """Serve a followed run's new checkpoint (already verified) under the base's name; blocking, off the worker.

        Raises CheckpointError when it cannot replace the one served (another kind, base or tokenizer).
        """
        old = self.base
        kind = metadata["kind"]
        if kind != self.source.kind:
            raise CheckpointError(f"it is a {kind} checkpoint, but this server follows a {self.source.kind} run; "
                                  "restart codex serve to serve it")
        if kind == "lora":
            base = base_of_checkpoint(checkpoint, metadata, self.settings.model)
            if base != self._base():
                raise CheckpointError(f"it was trained on base model '{base.label}', not on '{self._base().label}' "
                                      "that this server runs; restart codex serve to serve it")
            from codex_cli.serving.generation.lora import read_adapter

            prepared = read_adapter(str(checkpoint), self._call(lambda engine: engine.device))
            inner = self._inner_name()
            self._call(lambda engine: engine.attach(inner, prepared))
            target = Target(old.name, checkpoint.name, inner)
            release = old.adapter
        else:
            target = Target(old.name, checkpoint.name, weights=self._load_full(checkpoint, metadata))
            release = None
        with self._lock:
            self.base = target
        self._scheduler().retire(old, lambda engine: engine.detach(release) if release else None)
        return target

    def _load_full(self, checkpoint: Path, metadata: dict[str, Any]) -> Any:
        from codex_cli.checkpoint.inference import load_verified

        loaded = load_verified(checkpoint, metadata, self.settings.model)
        if loaded.tokenizer.get_vocab() != self._call(lambda engine: engine.tokenizer.get_vocab()):
            raise CheckpointError("its tokenizer differs from the one being served; restart codex serve to serve it")
        return loaded.model

    def _check_changeable(self) -> None:
        if self.source.is_echo:
            raise ApiError(409, "the echo model takes no adapters", "conflict")
        if self.settings.serve.workers > 1:
            raise ApiError(409, "adapters can be added or removed at runtime only with --workers 1 (each worker "
                                "holds its own model); name them with --adapter at start instead", "conflict")
        if self.source.origin == "--follow" and self.source.kind == "full":
            raise ApiError(409, FULL_FOLLOW_NO_ADAPTERS, "conflict")

    def _base(self) -> BaseModel:
        if self._base_model is None:
            self._base_model = source_base(self.source, self.settings)
        return self._base_model

    def _inner_name(self) -> str:
        return f"codex_{next(self._inner)}"  # never a client's name: peft's module keys cannot hold every character

    def _call(self, fn: Any) -> Any:
        return self._scheduler().call(fn).result()

    def _scheduler(self) -> Scheduler:
        assert self.scheduler is not None, "the server has not started"
        return self.scheduler
