"""The one config loader: packaged defaults < YAML file < dotted overrides < flags.

Every section is a frozen dataclass. Loading checks every key and value once and
reports every problem by dotted key path in a single ConfigError. Torch and the
other heavy libraries are never imported here, so loading config is instant.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union, get_args, get_origin, get_type_hints

from codex_cli.errors import ConfigError

DEFAULT_SEED = 1234
CONFIG_ENV = "CODEX_CONFIG"  # also cli.options.CONFIG_ENV, which codex mask reads without importing this module
DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
REDACTED = "[SECRET]"
# Keys whose values are secrets: shown and recorded as REDACTED, never verbatim.
SECRET_KEYS = frozenset({"serve.api_key"})


@dataclass(frozen=True)
class ModelConfig:
    name: str = "codex-tiny"
    revision: Optional[str] = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    local_files_only: bool = True
    allow_download: bool = False


@dataclass(frozen=True)
class LoraConfig:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: Optional[list[str]] = None


@dataclass(frozen=True)
class DataConfig:
    train: Optional[str] = None
    eval: Optional[str] = None
    eval_fraction: float = 0.1
    format: Literal["auto", "jsonl", "csv", "txt"] = "auto"
    text_field: str = "text"
    prompt_field: str = "prompt"
    completion_field: str = "completion"
    messages_field: str = "messages"
    max_length: int = 256
    mask_secrets: bool = True
    cache_dir: Optional[str] = None


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    grad_clip: Optional[float] = 1.0
    precision: Literal["fp32", "bf16"] = "fp32"
    gradient_checkpointing: bool = False
    log_every: int = 1
    nproc: int = 1
    strategy: Literal["ddp", "fsdp"] = "ddp"


@dataclass(frozen=True)
class CheckpointConfig:
    dir: str = "artifacts/ckpts"
    keep_last: Optional[int] = None
    keep_best: bool = False
    every_steps: Optional[int] = None
    resume: bool = False


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    model: Optional[str] = None
    preload: bool = False
    api_key: Optional[str] = None
    max_batch_size: int = 16
    max_batch_tokens: int = 8192
    prefill_chunk_tokens: int = 256
    max_queue: int = 64
    max_body_bytes: int = 1048576
    max_prompt_tokens: int = 1024
    default_max_new_tokens: int = 32
    max_new_tokens: int = 256
    request_timeout_s: float = 60.0
    adapters: list[str] = field(default_factory=list)
    follow: Optional[str] = None
    follow_interval_s: float = 2.0


@dataclass(frozen=True)
class MaskRule:
    """One user rule (``mask.rules`` entry): a regex, matched line by line, with optional keywords."""

    name: str
    regex: str
    family: str = "custom"
    keywords: Optional[list[str]] = None
    secret_group: Optional[Union[int, str]] = None
    description: str = ""


@dataclass(frozen=True)
class MaskConfig:
    replacement: str = "[SECRET]"
    typed: bool = False
    rules: list[MaskRule] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrackConfig:
    mlflow: bool = False
    log_model: bool = False


@dataclass(frozen=True)
class CodexConfig:
    """The fully resolved configuration shared by every command."""

    seed: int = DEFAULT_SEED
    threads: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    track: TrackConfig = field(default_factory=TrackConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, secrets included (for in-process use only)."""
        return dataclasses.asdict(self)

    def redacted_dict(self) -> dict[str, Any]:
        """Nested dict safe to print, log or store: secret values are REDACTED."""
        data = self.to_dict()
        for dotted in SECRET_KEYS:
            section, key = dotted.split(".")
            if data[section][key] is not None:
                data[section][key] = REDACTED
        return data


# Bounds checked after types: (predicate, description) by dotted key.
_BOUNDS: dict[str, tuple[Any, str]] = {
    "seed": (lambda v: v >= 0, "a non-negative integer"),
    "threads": (lambda v: v >= 0, ">= 0 (0 lets torch decide)"),
    "lora.r": (lambda v: v >= 1, ">= 1"),
    "lora.alpha": (lambda v: v >= 1, ">= 1"),
    "lora.dropout": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.eval_fraction": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.max_length": (lambda v: v >= 2, ">= 2"),
    "train.epochs": (lambda v: v >= 1, ">= 1"),
    "train.max_steps": (lambda v: v is None or v >= 1, ">= 1 or null"),
    "train.batch_size": (lambda v: v >= 1, ">= 1"),
    "train.grad_accum": (lambda v: v >= 1, ">= 1"),
    "train.lr": (lambda v: v > 0, "> 0"),
    "train.warmup_steps": (lambda v: v >= 0, ">= 0"),
    "train.warmup_ratio": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "train.weight_decay": (lambda v: v >= 0, ">= 0"),
    "train.grad_clip": (lambda v: v is None or v > 0, "> 0 or null"),
    "train.log_every": (lambda v: v >= 1, ">= 1"),
    "train.nproc": (lambda v: v >= 1, ">= 1"),
    "checkpoint.keep_last": (lambda v: v is None or v >= 1, ">= 1 or null"),
    "checkpoint.every_steps": (lambda v: v is None or v >= 1, ">= 1 or null"),
    "serve.port": (lambda v: 0 <= v <= 65535, "a port in 0..65535"),
    "serve.workers": (lambda v: v >= 1, ">= 1"),
    "serve.max_batch_size": (lambda v: v >= 1, ">= 1"),
    "serve.max_batch_tokens": (lambda v: v >= 2, ">= 2"),
    "serve.prefill_chunk_tokens": (lambda v: v >= 1, ">= 1"),
    "serve.max_queue": (lambda v: v >= 1, ">= 1"),
    "serve.max_body_bytes": (lambda v: v >= 1, ">= 1"),
    "serve.max_prompt_tokens": (lambda v: v >= 1, ">= 1"),
    "serve.default_max_new_tokens": (lambda v: v >= 1, ">= 1"),
    "serve.max_new_tokens": (lambda v: v >= 1, ">= 1"),
    "serve.request_timeout_s": (lambda v: v > 0, "> 0"),
    "serve.follow_interval_s": (lambda v: v > 0, "> 0"),
}


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    flags: Mapping[str, Any] | None = None,
) -> CodexConfig:
    """Resolve the config: defaults < YAML file (or $CODEX_CONFIG) < overrides < flags.

    ``overrides`` are ``dotted.key=value`` strings whose values are YAML scalars;
    ``flags`` maps dotted keys to values, and a None value means "flag not given".
    """
    config_path = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if config_path is None and not overrides:
        # Nothing to parse: skip importing yaml (start-up of `codex mask`). The dataclass defaults are
        # the packaged defaults.yaml, value for value; tests/test_config.py keeps the two identical.
        merged = CodexConfig().to_dict()
    else:
        merged = _read_yaml(DEFAULTS_FILE, "packaged defaults")
    problems: list[str] = []
    if config_path is not None:
        user = _read_yaml(Path(config_path), f"config file '{config_path}'")
        _merge(merged, user, "", problems, source=str(config_path))
    for item in overrides:
        key, value = _parse_override(item)
        _merge(merged, _nest(key, value), "", problems, source=f"override '{key}=…'")
    for key, value in (flags or {}).items():
        if value is not None:
            _merge(merged, _nest(key, value), "", problems, source=f"flag for '{key}'")
    config = _build(CodexConfig, merged, "", problems)
    if problems:
        raise ConfigError(problems)
    problems.extend(serve_problems(config.serve))
    problems.extend(mask_problems(config.mask))
    if problems:
        raise ConfigError(problems)
    return config


def serve_problems(serve: ServeConfig) -> list[str]:
    """Serve settings that contradict each other (checked by the loader and by serving's own settings)."""
    if serve.default_max_new_tokens > serve.max_new_tokens:
        return [f"serve.default_max_new_tokens ({serve.default_max_new_tokens}) is above the cap "
                f"serve.max_new_tokens ({serve.max_new_tokens}); lower it or raise the cap"]
    return []


def mask_problems(mask: MaskConfig) -> list[str]:
    """User rules and allow patterns that cannot work: a bad regex or secret group, a repeated name."""
    if not mask.rules and not mask.allow:
        return []
    from codex_cli.masking.custom import RuleError, compile_pattern, compile_rule  # stdlib; only when needed

    problems: list[str] = []
    seen: set[str] = set()
    for i, rule in enumerate(mask.rules):
        where = f"mask.rules[{i}]"
        if rule.name in seen:
            problems.append(f"config key '{where}.name' repeats the rule name {rule.name!r}; give each rule its own")
        seen.add(rule.name)
        try:
            compile_rule(rule.name, rule.regex, rule.family, rule.keywords or (), rule.secret_group)
        except RuleError as e:
            problems.append(f"config key '{where}.{e.field}' {e}")
    for i, pattern in enumerate(mask.allow):
        try:
            compile_pattern(pattern)
        except RuleError as e:
            problems.append(f"config key 'mask.allow[{i}]' {e}")
    return problems


def known_keys() -> list[str]:
    """Every valid dotted key, in declaration order."""
    keys: list[str] = []
    hints = get_type_hints(CodexConfig)
    for f in dataclasses.fields(CodexConfig):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys.extend(f"{f.name}.{sub.name}" for sub in dataclasses.fields(hint))
        else:
            keys.append(f.name)
    return keys


def flat_dict(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict (``to_dict``, ``redacted_dict``) as {dotted key: value}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flat_dict(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def dump_yaml(config: CodexConfig) -> str:
    """The resolved config as YAML, secrets redacted."""
    import yaml

    return yaml.safe_dump(config.redacted_dict(), sort_keys=False, default_flow_style=False)


def _read_yaml(path: Path, label: str) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{label} not found; pass an existing YAML file to --config or unset {CONFIG_ENV}") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{label} is a directory; pass a YAML file to --config") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{label} cannot be read ({type(e).__name__}); check its permissions and encoding") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{label}{where}: invalid YAML ({problem}); fix the syntax there") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label} must be a YAML mapping of sections, got {type(data).__name__}")
    return data


def _parse_override(item: str) -> tuple[str, Any]:
    import yaml

    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{item.split('=')[0]}' must look like section.key=value (for example lora.r=16)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not a YAML scalar: keep the text as a string
    if isinstance(value, (dict, list)) and not raw.lstrip().startswith(("[", "{")):
        value = raw
    return key, value


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def _merge(base: dict[str, Any], update: Mapping[str, Any], prefix: str, problems: list[str], source: str) -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str) or key not in base:
            problems.append(_unknown_key(str(dotted), [f"{prefix}{k}" for k in base], source))
            continue
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                problems.append(f"config key '{dotted}' is a section and needs a mapping, got {value!r} (in {source})")
                continue
            _merge(base[key], value, f"{dotted}.", problems, source)
        else:
            base[key] = value


# Names people bring from other tools, mapped to ours.
_ALIASES = {
    "learning_rate": "lr", "num_epochs": "epochs", "num_train_epochs": "epochs", "epoch": "epochs",
    "rank": "r", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "steps": "max_steps",
    "gradient_accumulation_steps": "grad_accum", "max_grad_norm": "grad_clip", "warmup": "warmup_steps",
    "per_device_train_batch_size": "batch_size", "batch": "batch_size", "model_name": "name", "path": "name",
    "output_dir": "dir", "save_total_limit": "keep_last", "lr_scheduler_type": "scheduler", "dtype_": "dtype",
}


def _unknown_key(dotted: str, siblings: list[str], source: str) -> str:
    prefix, _, leaf = dotted.rpartition(".")
    prefix = f"{prefix}." if prefix else ""
    leaves = [s[len(prefix):] for s in siblings]
    close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.6)
    if not close and _ALIASES.get(leaf) in leaves:
        close = [_ALIASES[leaf]]
    if close:
        hint = f"; did you mean '{prefix}{close[0]}'?"
    else:
        elsewhere = [k for k in known_keys() if k.rsplit(".", 1)[-1] in (leaf, _ALIASES.get(leaf))]
        hint = f"; did you mean '{elsewhere[0]}'?" if elsewhere else "; run 'codex config show' to list valid keys"
    return f"unknown config key '{dotted}' (in {source}){hint}"


def _build(cls: type, data: Mapping[str, Any], prefix: str, problems: list[str]) -> Any:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        hint = hints[f.name]
        raw = data.get(f.name)
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, raw or {}, f"{dotted}.", problems)
            continue
        item = _dataclass_item(hint)
        if item is not None:
            built = _build_list(item, raw, dotted, problems)
            if built is not None:
                values[f.name] = built
            continue
        if dotted == "seed" and raw in (None, 0):
            raw = DEFAULT_SEED
        ok, value = _coerce(raw, hint)
        if not ok:
            problems.append(f"config key '{dotted}' expects {_describe(hint)}, got {_show(dotted, raw)}")
            continue
        bound = _BOUNDS.get(dotted)
        if bound is not None and value is not None and not bound[0](value):
            problems.append(f"config key '{dotted}' must be {bound[1]}, got {_show(dotted, raw)}")
            continue
        values[f.name] = value
    if len(values) < len(dataclasses.fields(cls)):
        return None
    return cls(**values)


def _dataclass_item(hint: Any) -> Optional[type]:
    """The item class of a ``list[SomeDataclass]`` hint, else None."""
    if get_origin(hint) is list:
        (item,) = get_args(hint)
        if dataclasses.is_dataclass(item):
            return item
    return None


def _build_list(item: type, raw: Any, dotted: str, problems: list[str]) -> Optional[list[Any]]:
    """A list of typed entries (``mask.rules``): each a mapping, checked field by field, by index."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"config key '{dotted}' expects a list of mappings, got {_show(dotted, raw)}")
        return None
    hints = get_type_hints(item)
    names = [f.name for f in dataclasses.fields(item)]
    required = [f.name for f in dataclasses.fields(item)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    built, count = [], len(problems)
    for i, entry in enumerate(raw):
        where = f"{dotted}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"config key '{where}' expects a mapping ({', '.join(names)}), got {_show(where, entry)}")
            continue
        for key in entry:
            if key not in names:
                problems.append(_unknown_key(f"{where}.{key}", [f"{where}.{n}" for n in names], dotted))
        missing = [n for n in required if entry.get(n) is None]
        if missing:
            problems.append(f"config key '{where}' needs {', '.join(repr(n) for n in missing)}")
            continue
        values = {}
        for name in names:
            if name not in entry:
                continue
            ok, value = _coerce(entry[name], hints[name])
            if not ok:
                problems.append(f"config key '{where}.{name}' expects {_describe(hints[name])}, "
                                f"got {_show(where, entry[name])}")
            values[name] = value
        built.append(item(**values))
    return built if len(problems) == count else None


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = get_origin(hint)
    if origin is Union:
        args = get_args(hint)
        if value is None:
            return (type(None) in args), None
        for arg in args:
            if arg is type(None):
                continue
            ok, coerced = _coerce(value, arg)
            if ok:
                return True, coerced
        return False, None
    if origin is Literal:
        return (value in get_args(hint)), value
    if origin is list:
        (item,) = get_args(hint)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            return False, None
        coerced = [_coerce(v, item) for v in value]
        return all(ok for ok, _ in coerced), [v for _, v in coerced]
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if hint is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads "3e-4" as a string; accept it as the float it plainly is
                return True, float(value)
            except ValueError:
                return False, None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, None
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)
        return isinstance(value, str), value
    raise TypeError(f"unsupported config type {hint!r}")


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Union:
        parts = [_describe(a) for a in get_args(hint) if a is not type(None)]
        return " or ".join(parts) + " or null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin is list:
        return f"a list of {_describe(get_args(hint)[0])}"
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}[hint]


def _show(dotted: str, value: Any) -> str:
    if dotted in SECRET_KEYS:
        return f"a {type(value).__name__} value (hidden)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
