"""``codex mask`` through CliRunner and through the installed ``codex`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import codex_exe, run_codex
from typer.testing import CliRunner

from codex_cli.cli import app

GH = "ghp_" + "a1B2" * 9
AWS = "AKIA1234567890EXAMPLE"
DISABLED_LINE = "codex: secret filter disabled (DISABLE_SECRET_FILTER=1); input is copied unmasked\n"


def invoke(*args: str, input: bytes | str | None = None):
    return CliRunner().invoke(app, ["mask", *args], input=input, catch_exceptions=False)


def test_worked_example_through_the_installed_command() -> None:
    proc = run_codex("mask", input="aws key AKIA1234567890EXAMPLE\n")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "aws key [SECRET]\n", "")


def test_bytes_in_bytes_out_through_the_installed_command() -> None:
    data = b"\x00\xff bin\r\nkey=" + AWS.encode() + b"\r\n\xc3\x28 no newline"
    proc = subprocess.run([codex_exe(), "mask"], input=data, capture_output=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, data.replace(AWS.encode(), b"[SECRET]"), b"")


def test_files_and_stdin_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text(f"one {GH}\n")
    second.write_text("two, no newline")
    result = invoke(str(first), "-", str(second), input=f"stdin {AWS}\n")
    assert result.exit_code == 0
    assert result.stdout == "one [SECRET]\nstdin [SECRET]\ntwo, no newline"


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_file_fails_before_writing_anything(tmp_path: Path, kind: str) -> None:
    good = tmp_path / "good.txt"
    good.write_text(f"fine {GH}\n")
    bad = tmp_path / ("nope.txt" if kind == "missing" else "adir")
    if kind == "directory":
        bad.mkdir()
    reason = "No such file or directory" if kind == "missing" else "Is a directory"
    proc = run_codex("mask", str(good), str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"codex: error: cannot read '{bad}': {reason}; pass a readable file, or '-' for stdin\n"


def test_unreadable_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads files whatever their mode, so the kernel's refusal is simulated at the open() the CLI uses.
    bad = tmp_path / "secret.txt"
    bad.write_text("x")
    real_open = open

    def refuse(path: object, *args: object, **kwargs: object) -> object:
        if str(path) == str(bad):
            raise PermissionError(13, "Permission denied", str(bad))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("codex_cli.masking.files.open", refuse, raising=False)
    result = invoke(str(bad))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"codex: error: cannot read '{bad}': Permission denied; "
                             "pass a readable file, or '-' for stdin\n")


def test_check_prints_nothing_and_sets_the_exit_code() -> None:
    dirty = run_codex("mask", "--check", input=f"x {AWS}\n")
    clean = run_codex("mask", "--check", input="nothing to see\n")
    assert (dirty.returncode, dirty.stdout, dirty.stderr) == (1, "", "")
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "")


def test_report_json_names_rules_and_positions_never_secrets(tmp_path: Path) -> None:
    path = tmp_path / "app.env"
    path.write_text(f"# config\nGITHUB_TOKEN={GH}\naws_secret_access_key = {'Zz9/' * 10}\n")
    proc = run_codex("mask", "--report", "json", str(path), "-", input=f"id {AWS}")
    assert proc.returncode == 0
    assert proc.stdout == "# config\nGITHUB_TOKEN=[SECRET]\naws_secret_access_key = [SECRET]\nid [SECRET]"
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert records == [
        {"rule": "github-token", "family": "github", "file": str(path), "line": 2, "column": 14, "length": 40},
        {"rule": "aws-secret-access-key", "family": "aws", "file": str(path), "line": 3, "column": 25, "length": 40},
        {"rule": "aws-access-key-id", "family": "aws", "file": "-", "line": 1, "column": 4, "length": 21},
    ]
    assert GH not in proc.stderr and "Zz9/" not in proc.stderr and AWS not in proc.stderr


def test_check_with_report_lists_findings_on_stderr_only() -> None:
    proc = run_codex("mask", "--check", "--report", "json", input=f"{GH}\n")
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads(proc.stderr)["rule"] == "github-token"


def test_disable_secret_filter_copies_input_and_says_so_once(tmp_path: Path) -> None:
    other = tmp_path / "b.txt"
    other.write_text(GH)
    proc = run_codex("mask", "-", str(other), input=f"x {AWS}\n", env={"DISABLE_SECRET_FILTER": "1"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"x {AWS}\n{GH}", DISABLED_LINE)
    check = run_codex("mask", "--check", input=f"x {AWS}\n", env={"DISABLE_SECRET_FILTER": "1"})
    assert (check.returncode, check.stdout, check.stderr) == (0, "", DISABLED_LINE)


def test_replacement_and_typed_flags_and_config(tmp_path: Path) -> None:
    assert invoke("--typed", input=f"{GH} {AWS}").stdout == "[SECRET:github] [SECRET:aws]"
    assert invoke("--replacement", "***", input=f"t={GH}").stdout == "t=***"
    config = tmp_path / "codex.yaml"
    config.write_text("mask:\n  replacement: '<hidden>'\n  typed: true\n")
    assert invoke("--config", str(config), input=GH).stdout == "<hidden>:github"
    assert invoke("--config", str(config), "--untyped", input=GH).stdout == "<hidden>"


def test_unknown_report_format_is_a_usage_error() -> None:
    proc = run_codex("mask", "--report", "xml", input="")
    assert proc.returncode == 2 and proc.stdout == "" and "--report" in proc.stderr


@pytest.mark.parametrize("engine", ["python", "auto"])
def test_engines_give_the_same_output(engine: str) -> None:
    text = f"a {GH}\nb {AWS}\n-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\nok\n"
    proc = run_codex("mask", input=text, env={"CODEX_MASK_ENGINE": engine})
    assert (proc.returncode, proc.stdout) == (0, "a [SECRET]\nb [SECRET]\n[SECRET]\nok\n")


def test_bad_engine_name_is_one_line_and_no_output() -> None:
    proc = run_codex("mask", input=f"{GH}\n", env={"CODEX_MASK_ENGINE": "turbo"})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "codex: error: CODEX_MASK_ENGINE must be auto, hyperscan or python, got 'turbo'\n"


def test_mask_never_imports_heavy_libraries() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom codex_cli.cli import app\n"
        "r = CliRunner().invoke(app, ['mask', '--typed'], input='k AKIA1234567890EXAMPLE')\n"
        "assert r.stdout == 'k [SECRET:aws]', r.stdout\n"
        "heavy = ('torch', 'transformers', 'peft', 'safetensors', 'starlette', 'uvicorn', 'numpy', 'tokenizers')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "[]\n", "")


def test_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(f"line with {GH}\n".encode() * 200_000)
    with subprocess.Popen([codex_exe(), "mask", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout.read(19) == b"line with [SECRET]\n"
        proc.stdout.close()
        assert proc.wait(timeout=120) == 141
        assert proc.stderr.read() == b""
