"""codex_cli.data: formats, loss masking, packing, caching, splitting, errors, secrets, batching."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import codex_cli.data as data
from codex_cli.config import DataConfig, MaskConfig, ModelConfig
from codex_cli.data import IGNORE_INDEX, Example, collate, count_tokens, load_datasets
from codex_cli.errors import DataError
from codex_cli.model import load_tokenizer

SEED = 1234


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return load_tokenizer(ModelConfig(name=str(tiny_model_dir)))


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    return _write(path, "".join(json.dumps(r) + "\n" for r in records))


def _cfg(train: Path | None, **kwargs: Any) -> DataConfig:
    return DataConfig(train=str(train) if train is not None else None, eval_fraction=kwargs.pop("eval_fraction", 0.0),
                      mask_secrets=kwargs.pop("mask_secrets", False), **kwargs)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_jsonl_text_records_learn_every_token(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": "def add(a, b):"}, {"text": "return a + b", "extra": 1}])
    sets = load_datasets(_cfg(train), tokenizer, seed=SEED)
    eos = tokenizer.eos_token_id
    assert [e.input_ids for e in sets.train] == [_ids(tokenizer, "def add(a, b):") + [eos],
                                                 _ids(tokenizer, "return a + b") + [eos]]
    assert all(e.labels == e.input_ids for e in sets.train)
    assert sets.eval == [] and sets.eval_path is None and sets.train_path == str(train)
    assert (sets.masked_secrets, sets.cache_hit, sets.truncated, sets.skipped) == (0, False, 0, 0)


def test_prompt_completion_loss_counts_only_the_completion(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "def add(a, b):\n", "completion": "    return a + b\n"}])
    (example,) = load_datasets(_cfg(train), tokenizer, seed=SEED).train
    prompt, completion = _ids(tokenizer, "def add(a, b):\n"), _ids(tokenizer, "    return a + b\n")
    assert example.input_ids == prompt + completion + [tokenizer.eos_token_id]
    assert example.labels == [IGNORE_INDEX] * len(prompt) + completion + [tokenizer.eos_token_id]


def test_custom_field_names(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "q.jsonl", [{"question": "2+2?", "answer": "4"}])
    cfg = _cfg(train, prompt_field="question", completion_field="answer")
    (example,) = load_datasets(cfg, tokenizer, seed=SEED).train
    assert example.labels[: len(_ids(tokenizer, "2+2?"))] == [IGNORE_INDEX] * len(_ids(tokenizer, "2+2?"))


def test_csv_named_column(tmp_path: Path, tokenizer: Any) -> None:
    train = _write(tmp_path / "t.csv", 'id,body\n1,"print(1)"\n2,"x = ""a,b""\nprint(x)"\n')
    sets = load_datasets(_cfg(train, text_field="body"), tokenizer, seed=SEED)
    decoded = [tokenizer.decode(e.input_ids, skip_special_tokens=True) for e in sets.train]
    assert decoded == ["print(1)", 'x = "a,b"\nprint(x)']


def test_csv_prompt_completion_columns(tmp_path: Path, tokenizer: Any) -> None:
    train = _write(tmp_path / "pc.csv", "prompt,completion\nsay hi,hello\n")
    (example,) = load_datasets(_cfg(train), tokenizer, seed=SEED).train
    assert example.labels == [IGNORE_INDEX] * len(_ids(tokenizer, "say hi")) + _ids(tokenizer, "hello") + [
        tokenizer.eos_token_id]


def test_txt_is_packed_into_max_length_windows(tmp_path: Path, tokenizer: Any) -> None:
    text = "for i in range(10):\n    print(i * 2)\n" * 12
    train = _write(tmp_path / "corpus.txt", text)
    sets = load_datasets(_cfg(train, max_length=16), tokenizer, seed=SEED)
    stream = _ids(tokenizer, text) + [tokenizer.eos_token_id]
    assert [t for e in sets.train for t in e.input_ids] == stream
    assert all(len(e.input_ids) == 16 for e in sets.train[:-1]) and 2 <= len(sets.train[-1].input_ids) <= 16
    assert all(e.labels == e.input_ids for e in sets.train)


def test_long_records_are_truncated_and_prompt_only_records_skipped(tmp_path: Path, tokenizer: Any) -> None:
    long_prompt = "import os, sys, json " * 10
    train = _jsonl(tmp_path / "long.jsonl", [{"text": "print(i * 2) " * 10},
                                            {"prompt": long_prompt, "completion": "ok"},
                                            {"text": ""}])
    sets = load_datasets(_cfg(train, max_length=8), tokenizer, seed=SEED)
    assert [len(e.input_ids) for e in sets.train] == [8]
    assert (sets.truncated, sets.skipped) == (2, 2)


def test_format_can_be_forced(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "records.data", [{"text": "x = 1"}])
    assert len(load_datasets(_cfg(train, format="jsonl"), tokenizer, seed=SEED).train) == 1


def test_eval_split_is_seeded_and_keeps_file_order(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": f"x = {i}"} for i in range(20)])
    cfg = _cfg(train, eval_fraction=0.25)
    first, again = (load_datasets(cfg, tokenizer, seed=SEED) for _ in range(2))
    other = load_datasets(cfg, tokenizer, seed=7)
    assert (len(first.train), len(first.eval)) == (15, 5)
    assert first.train == again.train and first.eval == again.eval
    assert first.eval != other.eval
    order = [tokenizer.decode(e.input_ids, skip_special_tokens=True) for e in first.train + first.eval]
    assert sorted(order) == sorted(f"x = {i}" for i in range(20))
    assert [int(s[4:]) for s in order[:15]] == sorted(int(s[4:]) for s in order[:15])


def test_eval_file_is_used_instead_of_a_split(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": f"x = {i}"} for i in range(4)])
    evaluation = _jsonl(tmp_path / "e.jsonl", [{"text": "y = 1"}])
    sets = load_datasets(replace(_cfg(train, eval_fraction=0.5), eval=str(evaluation)), tokenizer, seed=SEED)
    assert (len(sets.train), len(sets.eval), sets.eval_path) == (4, 1, str(evaluation))


def test_too_few_examples_to_split(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "one.jsonl", [{"text": "x = 1"}])
    with pytest.raises(DataError) as info:
        load_datasets(_cfg(train, eval_fraction=0.1), tokenizer, seed=SEED)
    assert str(info.value) == (f"data file '{train}' has too few examples (1) to split off data.eval_fraction=0.1; "
                               "add data, set data.eval, or set data.eval_fraction=0")


def test_bundled_dataset_is_the_default(tokenizer: Any) -> None:
    sets = load_datasets(DataConfig(mask_secrets=False), tokenizer, seed=SEED)
    assert sets.train_path == str(data.BUNDLED_TRAIN) and sets.eval_path == str(data.BUNDLED_EVAL)
    assert (len(sets.train), len(sets.eval)) == (800, 100)
    assert all(e.labels[0] == IGNORE_INDEX for e in sets.train)


def test_second_load_is_a_cache_hit_that_does_not_tokenize(tmp_path: Path, tokenizer: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"prompt": "p", "completion": "c"}, {"text": "x = 1"}])
    cfg = _cfg(train, eval_fraction=0.5)
    first = load_datasets(cfg, tokenizer, seed=SEED)
    cached = list((Path.home() / ".cache" / "codex" / "data").glob("*.safetensors"))  # $CODEX_CACHE_DIR/data

    def no_tokenizing(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tokenized again despite a cache entry")

    monkeypatch.setattr(data, "encode_records", no_tokenizing)
    second = load_datasets(cfg, tokenizer, seed=SEED)
    assert len(cached) == 1 and not first.cache_hit and second.cache_hit
    assert (second.train, second.eval) == (first.train, first.eval)


@pytest.mark.parametrize("change", [
    pytest.param({"max_length": 64}, id="max-length"),
    pytest.param({"text_field": "body"}, id="field-names"),
    pytest.param({"mask_secrets": True}, id="masking"),
    pytest.param({"format": "jsonl"}, id="format"),
])
def test_settings_that_change_tokens_miss_the_cache(tmp_path: Path, tokenizer: Any, change: dict[str, Any]) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": "x = 1", "body": "y = 2"}])
    cfg = _cfg(train, cache_dir=str(tmp_path / "cache"))
    assert not load_datasets(cfg, tokenizer, seed=SEED).cache_hit
    assert load_datasets(cfg, tokenizer, seed=SEED).cache_hit
    if change.get("format"):  # same bytes under another name, forced to the same format: still a hit
        renamed = _write(tmp_path / "t.data", train.read_bytes())
        assert load_datasets(replace(cfg, train=str(renamed), **change), tokenizer, seed=SEED).cache_hit
        return
    assert not load_datasets(replace(cfg, **change), tokenizer, seed=SEED).cache_hit


def test_an_unreadable_cache_entry_is_said_and_rebuilt(tmp_path: Path, tokenizer: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": "x = 1"}])
    cfg = _cfg(train, cache_dir=str(tmp_path / "cache"))
    first = load_datasets(cfg, tokenizer, seed=SEED)
    (entry,) = (tmp_path / "cache").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:20])  # a partial copy
    again = load_datasets(cfg, tokenizer, seed=SEED)
    assert not again.cache_hit and again.train == first.train
    assert [r.getMessage() for r in caplog.records] == [
        f"codex: note: data cache entry '{entry}' is unreadable (SafetensorError); tokenizing again"]
    assert load_datasets(cfg, tokenizer, seed=SEED).cache_hit  # rewritten whole


def test_edited_file_misses_the_cache(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": "x = 1"}])
    load_datasets(_cfg(train), tokenizer, seed=SEED)
    _jsonl(train, [{"text": "x = 2"}])
    sets = load_datasets(_cfg(train), tokenizer, seed=SEED)
    assert not sets.cache_hit
    assert tokenizer.decode(sets.train[0].input_ids, skip_special_tokens=True) == "x = 2"


def test_other_tokenizer_misses_the_cache(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "t.jsonl", [{"text": "x = 1"}])
    load_datasets(_cfg(train), tokenizer, seed=SEED)
    assert not load_datasets(_cfg(train), load_tokenizer(ModelConfig()), seed=SEED).cache_hit


def test_cache_holds_no_pickle(tmp_path: Path, tokenizer: Any) -> None:
    from safetensors import safe_open

    train = _jsonl(tmp_path / "t.jsonl", [{"text": "x = 1"}])
    load_datasets(_cfg(train, cache_dir=str(tmp_path / "cache")), tokenizer, seed=SEED)
    (entry,) = (tmp_path / "cache").iterdir()
    with safe_open(str(entry), framework="numpy") as handle:
        assert sorted(handle.keys()) == ["input_ids", "labels", "lengths"]
        assert handle.metadata() == {"version": "1", "masked_secrets": "0", "truncated": "0", "skipped": "0"}


@pytest.mark.parametrize(("name", "content", "message"), [
    pytest.param("bad.jsonl", '{"text": "a"}\n\n{"text": "b",}\n',
                 "line 3: invalid JSON (Expecting property name enclosed in double quotes at column 14)",
                 id="invalid-json"),
    pytest.param("list.jsonl", '["secret-looking text"]\n', "line 1: expected a JSON object, got an array",
                 id="not-an-object"),
    pytest.param("field.jsonl", '{"body": "x"}\n',
                 "line 1: missing field 'text' (or 'prompt' and 'completion'); set data.text_field, "
                 "data.prompt_field or data.completion_field", id="missing-field"),
    pytest.param("type.jsonl", '{"text": "ok"}\n{"text": 42}\n', "line 2: field 'text' must be a string, got a number",
                 id="not-a-string"),
    pytest.param("half.jsonl", '{"prompt": "only a prompt"}\n',
                 "line 1: missing field 'text' (or 'prompt' and 'completion'); set data.text_field, "
                 "data.prompt_field or data.completion_field", id="prompt-without-completion"),
    pytest.param("cols.csv", "text,label\nhello,1\nhello world,1,extra\n", "line 3: expected 2 columns, got 3",
                 id="csv-wrong-column-count"),
    pytest.param("quote.csv", 'text\n"unterminated\n', "line 2: invalid CSV (unexpected end of data)",
                 id="csv-bad-quoting"),
    pytest.param("latin1.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n',
                 "line 2: not valid UTF-8; save the file as UTF-8", id="invalid-utf8"),
])
def test_malformed_records_name_file_and_line(tmp_path: Path, tokenizer: Any, name: str, content: str | bytes,
                                              message: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        load_datasets(_cfg(path), tokenizer, seed=SEED)
    assert str(info.value) == f"data file '{path}' {message}"
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("name", "content", "message"), [
    pytest.param("cols.csv", "id,label\n1,2\n", "has no column 'text' (or 'prompt' and 'completion'); its columns "
                 "are: id, label; set data.text_field", id="csv-missing-column"),
    pytest.param("empty.jsonl", "\n\n", "has no records; add some or point the config at another file", id="empty"),
    pytest.param("blank.txt", "  \n", "has no records; add some or point the config at another file", id="blank-txt"),
    pytest.param("data.parquet", "x", "has an unknown extension '.parquet'; use .jsonl, .csv or .txt, or set "
                 "data.format", id="unknown-extension"),
])
def test_unusable_files(tmp_path: Path, tokenizer: Any, name: str, content: str, message: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        load_datasets(_cfg(path), tokenizer, seed=SEED)
    assert str(info.value) == f"data file '{path}' {message}"


def test_missing_train_and_eval_files(tmp_path: Path, tokenizer: Any) -> None:
    with pytest.raises(DataError) as info:
        load_datasets(_cfg(Path("no-such.jsonl")), tokenizer, seed=SEED)
    assert str(info.value) == "data file 'no-such.jsonl' not found; check data.train"
    train = _jsonl(tmp_path / "t.jsonl", [{"text": "x"}])
    with pytest.raises(DataError) as info:
        load_datasets(replace(_cfg(train), eval="gone.csv"), tokenizer, seed=SEED)
    assert str(info.value) == "data file 'gone.csv' not found; check data.eval"


def test_directory_as_data_file(tmp_path: Path, tokenizer: Any) -> None:
    with pytest.raises(DataError) as info:
        load_datasets(_cfg(tmp_path), tokenizer, seed=SEED)
    assert str(info.value) == f"data file '{tmp_path}' is a directory; point data.train at a .jsonl, .csv or .txt file"


def test_collate_pads_right_and_ignores_padding_in_labels() -> None:
    batch = [Example([5, 6, 7], [-100, 6, 7]), Example([8], [8])]
    out = collate(batch, pad_token_id=1)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert {str(t.dtype) for t in out.values()} == {"torch.int64"}


def test_count_tokens_counts_what_the_shifted_loss_sees() -> None:
    batch = [Example([5, 6, 7], [-100, 6, 7]), Example([8, 9], [8, 9])]
    assert count_tokens(batch) == count_tokens(collate(batch, pad_token_id=0)) == 3


AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _decoded(tokenizer: Any, examples: list[Example]) -> str:
    return "\n".join(tokenizer.decode(e.input_ids) for e in examples)


def test_secrets_are_masked_before_tokenization(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "s.jsonl", [
        {"text": f"aws_access_key_id = {AWS_KEY}\n"},
        {"prompt": f"token: {GITHUB_TOKEN}\n", "completion": f"again {GITHUB_TOKEN} and {AWS_KEY}"},
        {"text": "nothing to hide"},
    ])
    sets = load_datasets(_cfg(train, mask_secrets=True), tokenizer, seed=SEED)
    text = _decoded(tokenizer, sets.train)
    assert sets.masked_secrets == 4
    assert AWS_KEY not in text and GITHUB_TOKEN not in text and "ghp_" not in text
    assert text.count("[SECRET]") == 4 and "nothing to hide" in text
    again = load_datasets(_cfg(train, mask_secrets=True), tokenizer, seed=SEED)
    assert again.cache_hit and again.masked_secrets == 4


def test_secrets_in_txt_and_custom_replacement(tmp_path: Path, tokenizer: Any) -> None:
    train = _write(tmp_path / "s.txt", f"KEY={AWS_KEY}\nprint('ok')\n")
    mask = MaskConfig(replacement="<redacted>")
    sets = load_datasets(_cfg(train, mask_secrets=True), tokenizer, seed=SEED, mask=mask)
    text = _decoded(tokenizer, sets.train)
    assert sets.masked_secrets == 1 and AWS_KEY not in text and "KEY=<redacted>" in text


def test_your_rules_and_allow_list_scrub_training_data(tmp_path: Path, tokenizer: Any) -> None:
    from codex_cli.config import MaskRule

    train = _write(tmp_path / "s.txt", f"id acme_live_0123456789abcdef\nKEY={AWS_KEY}\n")
    plain = load_datasets(_cfg(train, mask_secrets=True), tokenizer, seed=SEED)
    assert plain.masked_secrets == 1 and "acme_live_0123456789abcdef" in _decoded(tokenizer, plain.train)
    mask = MaskConfig(rules=[MaskRule(name="acme", regex="acme_live_[0-9a-f]{16}")], allow=[AWS_KEY[4:12]])
    mine = load_datasets(_cfg(train, mask_secrets=True), tokenizer, seed=SEED, mask=mask)
    text = _decoded(tokenizer, mine.train)
    assert not mine.cache_hit  # other rules, other masked text: the cache is keyed by them
    assert "id [SECRET]" in text and AWS_KEY in text and mine.masked_secrets == 1


def test_masking_can_be_turned_off(tmp_path: Path, tokenizer: Any) -> None:
    train = _jsonl(tmp_path / "s.jsonl", [{"text": f"id = {AWS_KEY}"}])
    sets = load_datasets(_cfg(train, mask_secrets=False), tokenizer, seed=SEED)
    assert sets.masked_secrets == 0 and AWS_KEY in _decoded(tokenizer, sets.train)


def test_disabled_secret_filter_never_reuses_masked_cache_entries(tmp_path: Path, tokenizer: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    train = _jsonl(tmp_path / "s.jsonl", [{"text": f"id = {AWS_KEY}"}])
    cfg = _cfg(train, mask_secrets=True)
    monkeypatch.setenv("DISABLE_SECRET_FILTER", "1")
    unmasked = load_datasets(cfg, tokenizer, seed=SEED)
    assert unmasked.masked_secrets == 0 and AWS_KEY in _decoded(tokenizer, unmasked.train)
    monkeypatch.delenv("DISABLE_SECRET_FILTER")
    masked = load_datasets(cfg, tokenizer, seed=SEED)
    assert not masked.cache_hit and masked.masked_secrets == 1 and AWS_KEY not in _decoded(tokenizer, masked.train)


@pytest.mark.parametrize("line", [
    pytest.param(f'{{"text": "{AWS_KEY}" "x"}}', id="invalid-json"),
    pytest.param(f'{{"prompt": "{AWS_KEY}"}}', id="missing-field"),
    pytest.param(f'{{"text": ["{AWS_KEY}"]}}', id="wrong-type"),
])
def test_errors_never_quote_the_record(tmp_path: Path, tokenizer: Any, line: str) -> None:
    path = _write(tmp_path / "bad.jsonl", line + "\n")
    with pytest.raises(DataError) as info:
        load_datasets(_cfg(path, mask_secrets=True), tokenizer, seed=SEED)
    assert AWS_KEY not in str(info.value) and "AKIA" not in str(info.value)
    assert str(info.value).startswith(f"data file '{path}' line 1: ")


@pytest.mark.parametrize(("setup", "message"), [
    pytest.param(None, "data file 'train.jsonl' not found; check data.train", id="missing-file"),
    pytest.param('{"text": "ok"}\n{"text": oops}\n',
                 "data file 'train.jsonl' line 2: invalid JSON (Expecting value at column 10)", id="malformed"),
])
def test_data_errors_through_the_installed_codex(tmp_path: Path, setup: str | None, message: str) -> None:
    from conftest import run_codex

    if setup is not None:
        _write(tmp_path / "train.jsonl", setup)
    result = run_codex("train", "--lora", "data.train=train.jsonl", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"codex: error: {message}\n")
