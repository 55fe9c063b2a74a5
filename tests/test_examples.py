"""Everything shipped in examples/: configs load, their data loads, and the codex-tiny recipe reproduces."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from codex_cli.config import load_config
from codex_cli.data import BUNDLED_DIR, load_datasets
from codex_cli.model import load_tokenizer

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CONFIGS = sorted(EXAMPLES.rglob("*.yaml"))


def _script(name: str) -> ModuleType:
    path = EXAMPLES / "codex-tiny" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"codex_tiny_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_examples_ship_configs() -> None:
    names = {p.relative_to(EXAMPLES).as_posix() for p in CONFIGS}
    assert {"codex-tiny/pretrain.yaml", "configs/lora-default.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(EXAMPLES).as_posix() for p in CONFIGS])
def test_every_example_config_loads(path: Path) -> None:
    config = load_config(path)
    assert config.seed == 1234


@pytest.mark.parametrize("path", [p for p in CONFIGS if "examples/data/" in p.read_text()],
                         ids=lambda p: p.stem)
def test_example_data_loads_with_its_config(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    config = load_config(path)
    tokenizer = load_tokenizer(replace(config.model, name="codex-tiny"))
    sets = load_datasets(replace(config.data, mask_secrets=False), tokenizer, seed=config.seed)
    assert sets.train and sets.eval and sets.skipped == 0


def test_bundled_dataset_is_what_the_generator_makes() -> None:
    train, evaluation = _script("make_finetune_data").generate(800, 100)
    for name, records in (("train.jsonl", train), ("eval.jsonl", evaluation)):
        shipped = [json.loads(line) for line in (BUNDLED_DIR / name).read_text(encoding="utf-8").splitlines()]
        assert shipped == records
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in evaluation}


def test_corpus_builder_is_deterministic_and_skips_generated_files(tmp_path: Path) -> None:
    build_corpus = _script("build_corpus")
    stdlib = tmp_path / "lib"
    stdlib.mkdir()
    for name in ("zipfile.py", "abc.py", "this.py", "_sysconfigdata__linux.py", "notes.txt"):
        (stdlib / name).write_text(f"# {name}\n\n\n")
    assert [p.name for p in build_corpus.corpus_files(stdlib)] == ["abc.py", "zipfile.py"]
    digest = build_corpus.build(stdlib, tmp_path / "corpus.txt")
    assert (tmp_path / "corpus.txt").read_text() == "# abc.py\n<|endoftext|>\n# zipfile.py\n<|endoftext|>\n"
    assert build_corpus.build(stdlib, tmp_path / "again.txt") == digest
