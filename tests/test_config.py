"""The config loader: defaults, precedence, validation and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from codex_cli.config import DEFAULTS_FILE, CodexConfig, dump_yaml, known_keys, load_config
from codex_cli.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_defaults_match_dataclass_defaults() -> None:
    # load_config() skips parsing defaults.yaml when nothing else needs yaml, so the two must agree exactly.
    assert yaml.safe_load(DEFAULTS_FILE.read_text()) == CodexConfig().to_dict()
    assert load_config() == CodexConfig() == load_config(overrides=["seed=1234"])


def test_defaults_file_has_every_key_and_no_other() -> None:
    data = yaml.safe_load(DEFAULTS_FILE.read_text())
    flat = []
    for key, value in data.items():
        flat.extend(f"{key}.{sub}" for sub in value) if isinstance(value, dict) else flat.append(key)
    assert flat == known_keys()


def test_required_defaults() -> None:
    cfg = load_config()
    assert cfg.seed == 1234
    assert cfg.checkpoint.dir == "artifacts/ckpts"
    assert (cfg.serve.host, cfg.serve.port) == ("127.0.0.1", 8000)
    assert cfg.mask.replacement == "[SECRET]"
    assert cfg.model.name == "codex-tiny"
    assert cfg.model.local_files_only is True


@pytest.mark.parametrize("value", ["0", "null", "~"], ids=["zero", "null", "tilde"])
def test_seed_zero_or_null_means_1234(value: str) -> None:
    assert load_config(overrides=[f"seed={value}"]).seed == 1234


def test_precedence_defaults_file_overrides_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = write(tmp_path / "c.yaml", "train:\n  epochs: 3\n  lr: 0.01\nlora:\n  r: 4\n  alpha: 8\n")
    cfg = load_config(cfg_file)
    assert (cfg.train.epochs, cfg.train.lr, cfg.lora.r, cfg.lora.alpha) == (3, 0.01, 4, 8)
    assert cfg.train.batch_size == CodexConfig().train.batch_size  # untouched keys keep defaults
    cfg = load_config(cfg_file, ["train.epochs=5", "lora.r=16"])
    assert (cfg.train.epochs, cfg.lora.r, cfg.lora.alpha) == (5, 16, 8)
    cfg = load_config(cfg_file, ["train.epochs=5"], {"train.epochs": 7, "lora.enabled": None})
    assert cfg.train.epochs == 7
    assert cfg.lora.enabled is False  # a None flag means "not given"


def test_env_var_names_the_file_and_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = write(tmp_path / "env.yaml", "train:\n  epochs: 4\n")
    cli_file = write(tmp_path / "cli.yaml", "train:\n  epochs: 6\n")
    monkeypatch.setenv("CODEX_CONFIG", str(env_file))
    assert load_config().train.epochs == 4
    assert load_config(cli_file).train.epochs == 6


def test_override_values_are_yaml_scalars() -> None:
    cfg = load_config(overrides=["train.lr=3e-4", "lora.enabled=true", "train.max_steps=null",
                                 "lora.target_modules=[q_proj, v_proj]", "model.name=gpt2"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.lora.enabled is True
    assert cfg.train.max_steps is None
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.model.name == "gpt2"


def test_comma_separated_list_override() -> None:
    assert load_config(overrides=["lora.target_modules=q_proj,v_proj"]).lora.target_modules == ["q_proj", "v_proj"]


def test_int_accepted_for_float_but_not_bool_for_int() -> None:
    assert load_config(overrides=["train.lr=1"]).train.lr == 1.0
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["train.epochs=true"])
    assert str(err.value) == "config key 'train.epochs' expects an integer, got True (bool)"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lora.rr=3", "unknown config key 'lora.rr' (in override 'lora.rr=…'); did you mean 'lora.r'?"),
        ("trian.epochs=3", "unknown config key 'trian' (in override 'trian.epochs=…'); did you mean 'train'?"),
        ("train.learning_rate=3", "unknown config key 'train.learning_rate' (in override 'train.learning_rate=…'); "
                                  "did you mean 'train.lr'?"),
        ("model.epochs=2", "unknown config key 'model.epochs' (in override 'model.epochs=…'); "
                           "did you mean 'train.epochs'?"),
        ("lora.zzz=2", "unknown config key 'lora.zzz' (in override 'lora.zzz=…'); "
                       "run 'codex config show' to list valid keys"),
        ("train.lr=fast", "config key 'train.lr' expects a number, got 'fast' (str)"),
        ("train.precision=fp8", "config key 'train.precision' expects one of 'fp32', 'bf16', got 'fp8' (str)"),
        ("train.max_steps=ten", "config key 'train.max_steps' expects an integer or null, got 'ten' (str)"),
        ("train.batch_size=0", "config key 'train.batch_size' must be >= 1, got 0 (int)"),
        ("serve.port=70000", "config key 'serve.port' must be a port in 0..65535, got 70000 (int)"),
        ("lora=3", "config key 'lora' is a section and needs a mapping, got 3 (in override 'lora=…')"),
        ("serve.api_key=[1]", "config key 'serve.api_key' expects a string or null, got a list value (hidden)"),
    ],
    ids=["typo-key", "typo-section", "alias", "other-section", "no-suggestion", "bad-float", "bad-choice",
         "bad-optional", "bound", "port", "section-scalar", "secret-hidden"],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert str(err.value) == message


def test_contradicting_serve_limits_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["serve.max_new_tokens=8"])
    assert str(err.value) == ("serve.default_max_new_tokens (32) is above the cap serve.max_new_tokens (8); "
                              "lower it or raise the cap")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "c.yaml", "lora:\n  rr: 1\ntrain:\n  lr: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_file, ["serve.port=-1"])
    assert err.value.problems == [
        f"unknown config key 'lora.rr' (in {cfg_file}); did you mean 'lora.r'?",
        "config key 'train.lr' expects a number, got 'x' (str)",
        "config key 'serve.port' must be a port in 0..65535, got -1 (int)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as err:
        load_config(missing)
    assert str(err.value) == (f"config file '{missing}' not found; pass an existing YAML file to --config "
                              "or unset CODEX_CONFIG")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "train:\n  epochs: 1\n  lr: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value).startswith(f"config file '{bad}' line 4, column 1: invalid YAML (")


def test_non_mapping_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == f"config file '{bad}' must be a YAML mapping of sections, got list"


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "empty.yaml", "")) == CodexConfig()


def test_malformed_override() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["epochs"])
    assert str(err.value) == "override 'epochs' must look like section.key=value (for example lora.r=16)"


def test_secrets_are_redacted_when_shown() -> None:
    cfg = load_config(overrides=["serve.api_key=sk-very-secret-value"])
    assert cfg.serve.api_key == "sk-very-secret-value"
    assert cfg.redacted_dict()["serve"]["api_key"] == "[SECRET]"
    assert "sk-very-secret-value" not in dump_yaml(cfg)


def test_dump_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(overrides=["lora.r=32", "train.lr=0.001"])
    again = load_config(write(tmp_path / "dump.yaml", dump_yaml(cfg)))
    assert again == cfg


def test_config_is_frozen() -> None:
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.train.epochs = 3  # type: ignore[misc]


def _doc_mask_example() -> str:
    text = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text(encoding="utf-8")
    section = text.split("### Your own masking rules", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_documented_mask_rules_load_and_mask(tmp_path: Path) -> None:
    from codex_cli.masking import mask_text, policy_for

    path = tmp_path / "codex.yaml"
    path.write_text(_doc_mask_example())
    cfg = load_config(path).mask
    assert [r.name for r in cfg.rules] == ["acme-api-key", "internal-db-password"]
    text = f"k=acme_live_{'0a' * 16}\nINTERNAL_DB_PW=s3cr3t!\nid AKIAIOSFODNN7EXAMPLE\n"
    assert mask_text(text, typed=True, policy=policy_for(cfg)) == (
        "k=[SECRET:acme]\nINTERNAL_DB_PW=[SECRET:custom]\nid AKIAIOSFODNN7EXAMPLE\n", 2)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("mask:\n  rules:\n    - {name: a, regex: 'x('}\n",
     "config key 'mask.rules[0].regex' is not a valid regex (missing ), unterminated subpattern at position 1)"),
    ("mask:\n  rules:\n    - {name: a, regex: 'x*'}\n",
     "config key 'mask.rules[0].regex' matches the empty string; make it match the secret itself"),
    ("mask:\n  rules:\n    - {name: a, regex: 'x(y)', secret_group: 2}\n",
     "config key 'mask.rules[0].secret_group' is 2, but the regex has 1 group(s)"),
    ("mask:\n  rules:\n    - {name: a, regex: 'xy'}\n    - {name: a, regex: 'zz'}\n",
     "config key 'mask.rules[1].name' repeats the rule name 'a'; give each rule its own"),
    ("mask:\n  rules:\n    - {name: a, regx: 'xy'}\n",
     "unknown config key 'mask.rules[0].regx' (in mask.rules); did you mean 'mask.rules[0].regex'?; "
     "config key 'mask.rules[0]' needs 'regex'"),
    ("mask:\n  rules: acme\n", "config key 'mask.rules' expects a list of mappings, got 'acme' (str)"),
    ("mask:\n  allow: ['[']\n",
     "config key 'mask.allow[0]' is not a valid regex (unterminated character set at position 0)"),
], ids=["regex", "empty-match", "group", "repeated-name", "unknown-field", "not-a-list", "allow"])
def test_bad_mask_rules_name_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    from codex_cli.errors import ConfigError

    path = tmp_path / "codex.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == message
