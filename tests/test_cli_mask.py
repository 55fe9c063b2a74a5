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


def test_check_lists_where_secrets_are_and_sets_the_exit_code(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text(f"# config\nGITHUB_TOKEN={GH}\n")
    dirty = run_codex("mask", "--check", str(env), "-", input=f"x {AWS}\n")
    clean = run_codex("mask", "--check", input="nothing to see\n")
    assert (dirty.returncode, dirty.stdout) == (1, "")
    assert dirty.stderr == (f"{env}:2:14: github-token (github secret)\n"
                            "-:1:3: aws-access-key-id (aws secret)\n")
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


ISSUE_LINES = {  # what a new user pastes (issue #10), and what comes out
    f"HF_TOKEN={'hf_' + 'jCBaQngSHiHDRYOcsMcifUcysGyaiybUWz'}": "HF_TOKEN=[SECRET:huggingface]",
    "huggingface-cli login --token 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":
        "huggingface-cli login --token [SECRET:huggingface]",
    "STRIPE_SECRET_KEY=sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv": "STRIPE_SECRET_KEY=[SECRET:stripe]",
    "GITLAB_TOKEN=glpat-Ab3Cd5Ef7Gh9Ij1Kl3Mn": "GITLAB_TOKEN=[SECRET:gitlab]",
    "//registry.npmjs.org/:_authToken=npm_Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5":
        "//registry.npmjs.org/:_authToken=[SECRET:npm]",
    "TWINE_PASSWORD=pypi-AgEIcHlwaS5vcmcCJGE1ZmI3YzNhLWIxZDItNGVmMy04YjQ1LTY3ODkwYWJjZGVmMAACKlszLCJmMmI2":
        "TWINE_PASSWORD=[SECRET:pypi]",
    "export VAULT_TOKEN=hvs." + "CAESIP2jTxc9S2K7Z6CtcFWQv7044m" * 3 + "Q":
        "export VAULT_TOKEN=[SECRET:hashicorp]",
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + "Zm9vYmFy" * 11 + ";EndpointSuffix=core":
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=[SECRET:azure];EndpointSuffix=core",
    "curl https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw4/getMe":
        "curl https://api.telegram.org/bot123456789:[SECRET:telegram]/getMe",
    "DATABASE_URL=postgres://app:s3cr3tPw@db:5432/app": "DATABASE_URL=postgres://app:[SECRET:uri]@db:5432/app",
    "git clone https://deploy:Fq9zK2mW7pLx4@git.example.com/org/repo.git":
        "git clone https://deploy:[SECRET:uri]@git.example.com/org/repo.git",
    "Authorization: Bearer 8f3a9c2e7b1d4f6a0c5e9b2d7f1a3c8e": "Authorization: Bearer [SECRET:http-auth]",
    'curl -H "X-Api-Key: 9f8e7d6c5b4a39281706" https://x': 'curl -H "X-Api-Key: [SECRET:credential]" https://x',
    "DB_PASSWORD=Tr0ub4dor&3": "DB_PASSWORD=[SECRET:credential]",
    "mysql -u admin --password=Sup3rS3cret app": "mysql -u admin --password=[SECRET:credential] app",
    "  client_secret: aB3dE5gH7jK9": "  client_secret: [SECRET:credential]",
    "AWS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY9XAMPLE1EY": "AWS_KEY=[SECRET:aws]",
    "ANTHROPIC_API_KEY=sk-ant-api03-" + "a1B2c3D4e5" * 9 + "abcAA": "ANTHROPIC_API_KEY=[SECRET:anthropic]",
    "password_length = 16, max_tokens: 128, token_count = 1234, secret_santa = true":
        "password_length = 16, max_tokens: 128, token_count = 1234, secret_santa = true",
}


def test_what_a_new_user_pastes_is_masked_by_family() -> None:
    text = "\n".join(ISSUE_LINES) + "\n"
    proc = run_codex("mask", "--typed", input=text)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == list(ISSUE_LINES.values())


def test_list_rules_names_every_rule_and_yours(tmp_path: Path) -> None:
    from codex_cli.masking import RULES

    config = tmp_path / "codex.yaml"
    config.write_text("mask:\n  rules:\n    - {name: acme-key, regex: 'acme_[0-9a-f]{16}', family: acme}\n")
    proc = run_codex("mask", "--list-rules", "--config", str(config))
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["RULE", "FAMILY", "MATCHES"]
    listed = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert listed == {**{r.id: r.family for r in RULES}, "acme-key": "acme"}
    assert "(mask.rules)" in lines[-1]


def test_your_rules_and_allow_list_through_the_command(tmp_path: Path) -> None:
    config = tmp_path / "codex.yaml"
    config.write_text("mask:\n  rules:\n    - name: acme-key\n      regex: 'acme=([0-9a-f]{16})'\n"
                      "      secret_group: 1\n      keywords: [ACME]\n      family: acme\n"
                      "  allow: ['EXAMPLE$']\n")
    text = f"acme=0123456789abcdef\nkey AKIAIOSFODNN7EXAMPLE\n{GH}\n"
    proc = run_codex("mask", "--typed", "--config", str(config), input=text)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "acme=[SECRET:acme]\nkey AKIAIOSFODNN7EXAMPLE\n[SECRET:github]\n"


def test_a_bad_rule_regex_is_a_config_error_naming_its_key(tmp_path: Path) -> None:
    config = tmp_path / "codex.yaml"
    config.write_text("mask:\n  rules:\n    - {name: broken, regex: 'acme_(['}\n  allow: ['ok', '*bad']\n")
    proc = run_codex("mask", "--config", str(config), input="x\n")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("codex: error: config key 'mask.rules[0].regex' is not a valid regex (")
    assert "config key 'mask.allow[1]' is not a valid regex (nothing to repeat at position 0)" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_report_sarif_for_code_scanning(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.env").write_text(f"# config\nGITHUB_TOKEN={GH}\nDB_PASSWORD=Tr0ub4dor&3\n")
    out = tmp_path / "codex.sarif"
    proc = run_codex("mask", "--check", "--report", "sarif", "--report-file", str(out), "app.env", cwd=src)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "")
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "codex mask" and len({r["id"] for r in rules}) == len(rules)
    results = [(r["ruleId"], rules[r["ruleIndex"]]["id"], r["level"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]) for r in run["results"]]
    assert results == [
        ("github-token", "github-token", "error", "app.env", {"startLine": 2, "byteOffset": 22, "byteLength": 40}),
        ("credential-assignment", "credential-assignment", "error", "app.env",
         {"startLine": 3, "byteOffset": 75, "byteLength": 11}),
    ]
    assert GH not in out.read_text() and "Tr0ub4dor" not in out.read_text()


def test_report_file_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    proc = run_codex("mask", "--report", "json", "--report-file", str(tmp_path / "no" / "such" / "r.json"),
                     input="x\n")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"codex: error: cannot write the report to '{tmp_path / 'no' / 'such' / 'r.json'}'")
