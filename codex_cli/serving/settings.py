"""What one server process needs to know, and how the CLI hands it to uvicorn's workers.

``codex serve`` resolves the config once and passes it to every worker in one environment
variable (``CODEX_SERVE_SETTINGS``, JSON, without the API key: that travels as
``CODEX_API_KEY``). A factory started by plain ``uvicorn --factory`` reads ``CODEX_CONFIG``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from codex_cli.config import (
    DEFAULT_SEED,
    CheckpointConfig,
    CodexConfig,
    MaskConfig,
    ModelConfig,
    ServeConfig,
    load_config,
    serve_problems,
)
from codex_cli.errors import ConfigError, ServeError

SETTINGS_ENV = "CODEX_SERVE_SETTINGS"
API_KEY_ENV = "CODEX_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """The config sections a server uses, plus the checkpoint given on the command line."""

    serve: ServeConfig = field(default_factory=ServeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    checkpoint_dir: str = CheckpointConfig.dir
    checkpoint: Optional[str] = None
    threads: int = CodexConfig.threads
    seed: int = DEFAULT_SEED

    @classmethod
    def from_config(cls, config: CodexConfig, checkpoint: Optional[str] = None) -> "ServeSettings":
        """The sections of a resolved config a server uses, and the checkpoint given on the command line."""
        return cls(serve=config.serve, model=config.model, mask=config.mask, checkpoint_dir=config.checkpoint.dir,
                   checkpoint=checkpoint, threads=config.threads, seed=config.seed)

    def api_key(self) -> Optional[str]:
        """The bearer token clients must send: serve.api_key, else $CODEX_API_KEY, else None."""
        return self.serve.api_key or os.environ.get(API_KEY_ENV) or None

    def check(self) -> None:
        """Raise ConfigError for settings that contradict each other."""
        problems = serve_problems(self.serve)
        if problems:
            raise ConfigError(problems)

    def to_env(self) -> dict[str, str]:
        """Environment variables that rebuild these settings in a uvicorn worker."""
        data = dataclasses.asdict(self)
        data["serve"]["api_key"] = None
        env = {SETTINGS_ENV: json.dumps(data)}
        key = self.api_key()
        if key:
            env[API_KEY_ENV] = key
        return env

    @classmethod
    def from_env(cls) -> "ServeSettings":
        """Settings handed over by ``codex serve``, else the config from $CODEX_CONFIG."""
        raw = os.environ.get(SETTINGS_ENV)
        if raw is None:
            return cls.from_config(load_config())
        try:
            data = json.loads(raw)
            return cls(serve=ServeConfig(**data.pop("serve")), model=ModelConfig(**data.pop("model")),
                       mask=MaskConfig(**data.pop("mask")), **data)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ServeError(f"${SETTINGS_ENV} is not valid server settings ({type(e).__name__}); "
                             f"unset it and start the server with 'codex serve'") from e
