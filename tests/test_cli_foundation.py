"""The root command: --version, --help, config show, the error boundary and lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_codex
from typer.testing import CliRunner

from codex_cli import __version__
from codex_cli.cli import app

# pydantic too: typer 0.29 pulls it in for every option, which doubled start-up. mlflow and its database
# packages load only when tracking is on (CODEX_MLFLOW=1 or track.mlflow: true).
HEAVY = ("torch", "transformers", "peft", "safetensors", "starlette", "uvicorn", "numpy", "tokenizers", "pydantic",
         "mlflow", "sqlalchemy", "alembic")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version_in_process(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == f"codex {__version__}\n"


def test_version_installed_and_module_agree() -> None:
    installed = run_codex("--version")
    module = subprocess.run([sys.executable, "-m", "codex_cli", "--version"], capture_output=True, text=True)
    assert installed.returncode == module.returncode == 0
    assert installed.stdout == module.stdout == f"codex {__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [[], ["ckpt"], ["config"], ["train"], ["serve"], ["mask"], ["ckpt", "inspect"], ["ckpt", "load"],
     ["ckpt", "export"], ["config", "show"]],
    ids=lambda a: " ".join(a) or "root",
)
def test_help_on_every_level(runner: CliRunner, argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Usage: codex" in result.output


def test_root_help_lists_every_command(runner: CliRunner) -> None:
    output = runner.invoke(app, ["--help"], catch_exceptions=False).output
    for command in ("train", "serve", "mask", "ckpt", "config"):
        assert command in output


def test_config_show_yaml_is_the_resolved_config(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: 3\n")
    result = runner.invoke(app, ["--config", str(cfg), "config", "show", "lora.r=16"], catch_exceptions=False)
    assert result.exit_code == 0
    shown = yaml.safe_load(result.output)
    assert shown["train"]["epochs"] == 3
    assert shown["lora"]["r"] == 16
    assert shown["seed"] == 1234


def test_config_show_json_subprocess(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("serve:\n  api_key: sk-supersecretvalue123\n")
    result = run_codex("config", "show", "--json", "--config", str(cfg), "train.lr=3e-4")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["train"]["lr"] == pytest.approx(3e-4)
    assert shown["serve"]["api_key"] == "[SECRET]"
    assert "supersecret" not in result.stdout + result.stderr


def test_env_config_is_used(tmp_path: Path) -> None:
    cfg = tmp_path / "env.yaml"
    cfg.write_text("train:\n  epochs: 9\n")
    result = run_codex("config", "show", "--json", env={"CODEX_CONFIG": str(cfg)})
    assert json.loads(result.stdout)["train"]["epochs"] == 9


def test_command_config_option_beats_global(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("train:\n  epochs: 2\n")
    (tmp_path / "b.yaml").write_text("train:\n  epochs: 5\n")
    result = runner.invoke(app, ["--config", str(tmp_path / "a.yaml"), "config", "show", "--json", "--config",
                                 str(tmp_path / "b.yaml")], catch_exceptions=False)
    assert json.loads(result.output)["train"]["epochs"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "show", "lora.rr=3"],
         "codex: error: unknown config key 'lora.rr' (in override 'lora.rr=…'); did you mean 'lora.r'?\n"),
        (["config", "show", "train.lr=abc"], "codex: error: config key 'train.lr' expects a number, got 'abc' (str)\n"),
        (["--config", "/nonexistent/c.yaml", "config", "show"],
         "codex: error: config file '/nonexistent/c.yaml' not found; pass an existing YAML file to --config "
         "or unset CODEX_CONFIG\n"),
    ],
    ids=["unknown-key", "wrong-type", "missing-file"],
)
def test_config_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_codex(*args)
    assert result.returncode == 2
    assert result.stderr == message
    assert result.stdout == ""


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [1\n")
    result = run_codex("--config", str(bad), "config", "show")
    assert result.returncode == 2
    assert result.stderr.startswith(f"codex: error: config file '{bad}' line 3, column 1: invalid YAML (")
    assert result.stderr.count("\n") == 1


def test_config_error_in_process(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "show", "seed=-5"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "config key 'seed' must be a non-negative integer, got -5 (int)" in result.output


@pytest.mark.parametrize(("args", "env"), [(["--debug"], {}), ([], {"CODEX_DEBUG": "1"})], ids=["flag", "env"])
def test_debug_shows_the_traceback(args: list[str], env: dict[str, str]) -> None:
    result = run_codex(*args, "config", "show", "lora.rr=1", env=env)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConfigError" in result.stderr


def _modules_after(argv: list[str], tmp_path: Path, stdin: str = "", env: dict[str, str] | None = None) -> list[str]:
    """Run the CLI in a fresh interpreter (in ``tmp_path``) and report which heavy modules it imported."""
    out = tmp_path / "modules.json"
    script = (
        "import sys, json, atexit\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['codex', *{argv!r}]\n"
        "from codex_cli.cli import main\n"
        "main()\n"
    )
    subprocess.run([sys.executable, "-c", script], input=stdin, capture_output=True, text=True, timeout=120,
                   cwd=tmp_path, env={**os.environ, **(env or {})})
    loaded = json.loads(out.read_text())
    return [name for name in loaded if name.split(".")[0] in HEAVY]


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [(["--help"], ""), (["config", "show"], ""), (["mask"], "aws key AKIA1234567890EXAMPLE\n"),
     (["train", "--help"], ""), (["serve", "--help"], ""), (["ckpt", "inspect", "--help"], "")],
    ids=["help", "config-show", "mask", "train-help", "serve-help", "ckpt-help"],
)
def test_fast_paths_never_import_heavy_libraries(argv: list[str], stdin: str, tmp_path: Path) -> None:
    assert _modules_after(argv, tmp_path, stdin) == []


def test_file_arguments_and_options_stay_light(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mask:\n  typed: true\n")
    text = tmp_path / "in.txt"
    text.write_text("token ghp_" + "a1B2" * 9 + "\n")
    assert _modules_after(["--config", str(cfg), "mask", "--replacement", "X", str(text)], tmp_path) == []
    assert _modules_after(["config", "show", "--config", str(cfg), "--json", "train.lr=0.1"], tmp_path) == []


def test_the_guard_itself_detects_heavy_imports(tmp_path: Path) -> None:
    # The same harness must see torch when a command does need it (train imports it before failing here).
    argv = ["train", "--model", str(tmp_path / "missing"), f"checkpoint.dir={tmp_path / 'ckpts'}"]
    assert "torch" in _modules_after(argv, tmp_path)


def test_a_train_with_tracking_off_never_imports_mlflow_nor_writes_its_files(tiny_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    # track.mlflow says on, CODEX_MLFLOW=0 wins: the run trains and MLflow stays out of the process and the directory.
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": f"def f{i}(x):\n    return x + {i}\n"}) + "\n" for i in range(12)))
    argv = ["train", "--quiet", "--model", str(tiny_model_dir), "--data", str(data), "--max-steps", "1",
            f"checkpoint.dir={tmp_path / 'ck'}", "track.mlflow=true"]
    loaded = _modules_after(argv, tmp_path, env={"CODEX_MLFLOW": "0"})
    assert "torch" in loaded and (tmp_path / "ck" / "step-00000001" / "metadata.json").is_file()
    assert [name for name in loaded if name.split(".")[0] in ("mlflow", "sqlalchemy", "alembic")] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "modules.json", "train.jsonl"]
