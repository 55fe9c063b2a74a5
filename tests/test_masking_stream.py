"""Streaming: chunk boundaries, token-by-token text, raw bytes, constant memory, the file reader."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from test_masking_rules import POSITIVES

from codex_cli.masking import StreamMasker, mask_bytes, mask_text
from codex_cli.masking import files as mask_files_module
from codex_cli.masking.files import mask_files, open_inputs
from codex_cli.masking.prefilter import cached_python_finder
from codex_cli.masking.rules import REACH
from codex_cli.masking.stream import ByteMasker

SAMPLES = [text for _, text, _ in POSITIVES]


@pytest.mark.parametrize("index", [0, 5, 10, 14, 19, 22, 23, 27, 28], ids=lambda i: POSITIVES[i][0] + f"-{i}")
def test_every_split_point_gives_the_same_output(index: int) -> None:
    data = SAMPLES[index].encode()
    expected = mask_bytes(data)[0]
    for cut in range(len(data) + 1):
        masker = ByteMasker()
        assert masker.feed(data[:cut]) + masker.feed(data[cut:]) + masker.flush() == expected, cut


def test_stream_masker_never_emits_what_it_later_masks() -> None:
    text = "\n".join(SAMPLES) + "\ntail without newline"
    final = mask_text(text)[0]
    masker = StreamMasker()
    emitted = ""
    for char in text:  # one character per feed, the way a server streams tokens
        emitted += masker.feed(char)
        assert final.startswith(emitted)
    assert emitted + masker.flush() == final
    assert masker.count == final.count("[SECRET]")


def test_stream_masker_emits_ordinary_text_promptly() -> None:
    masker = StreamMasker()
    text = "Hello there, this is a long and ordinary sentence with nothing sensitive in it. "
    emitted = masker.feed(text)
    assert emitted == text  # it ends in a space: nothing there can be part of a secret, so nothing is held back
    emitted += masker.feed("and then the wor")
    assert emitted == text + "and then the "  # the last word may grow into a key: only it is held back
    emitted += masker.feed("d" * 100)
    assert len(emitted) >= len(text) + len("and then the word") + 99 - cached_python_finder().tail  # never more
    final = text + "and then the wor" + "d" * 100 + " The key is [SECRET] and more\n"
    for part in (" The key is sk-proj-abc", "DEF1234567890ghijklmnopqrstuvwxyz", " and more"):
        emitted += masker.feed(part)
        assert final.startswith(emitted) and "sk-" not in emitted
    assert emitted + masker.feed("\n") + masker.flush() == final


def test_stream_masker_keeps_multibyte_characters_whole() -> None:
    masker = StreamMasker()
    text = "秘密 ghp_" + "a1B2" * 9 + " 🙂 \udcff done"
    out = "".join(masker.feed(ch) for ch in text) + masker.flush()
    assert out == "秘密 [SECRET] 🙂 \udcff done"


def test_bytes_pass_through_exactly() -> None:
    data = b"\x00\xff\xfe bin\r\nAKIAIOSFODNN7EXAMPLE\r\n\x80\x81 caf\xc3\xa9 \xed\xa0\x80 no newline at end"
    assert mask_bytes(data) == (data.replace(b"AKIAIOSFODNN7EXAMPLE", b"[SECRET]"), 1)
    assert mask_bytes(b"") == (b"", 0)
    assert mask_bytes(b"\n\n") == (b"\n\n", 0)


@pytest.mark.parametrize("head", [b"", b"sk-", b"-----BEGIN RSA PRIVATE KEY-----\n", b"aws_secret_access_key = "],
                         ids=["plain", "endless-token", "endless-key-block", "endless-value"])
def test_memory_stays_constant_on_endless_lines(head: bytes) -> None:
    chunk = (b"A1b2" if head != b"-----BEGIN RSA PRIVATE KEY-----\n" else b"QUJD\n") * (1 << 18)  # 1 MiB
    masker = ByteMasker()
    tracemalloc.start()
    try:
        masker.feed(head)
        for _ in range(24):
            masker.feed(chunk)
        masker.flush()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(chunk) + 2 * REACH
    assert masker.count == (0 if head == b"" else 1)


def test_file_reader_masks_secrets_straddling_read_chunks(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = ("\n".join(SAMPLES) * 3).encode()
    path = tmp_path / "in.txt"
    path.write_bytes(data)
    expected, count = mask_bytes(data)
    for size in (1, 7, 64, 4096):
        monkeypatch.setattr(mask_files_module, "CHUNK_SIZE", size)
        out = io.BytesIO()
        assert mask_files(open_inputs([str(path)]), out, "[SECRET]", False) == count
        assert out.getvalue() == expected


def test_findings_report_positions_but_never_secrets(tmp_path) -> None:
    path = tmp_path / "creds.env"
    path.write_bytes(b"# creds\nA=1\n  token: ghp_" + b"x1Y2" * 9 + b"\naws_secret_access_key = " + b"k" * 40 + b"\n")
    found = []
    mask_files(open_inputs([str(path)]), None, "[SECRET]", False, found.append)
    assert [(f.file, f.finding.rule, f.finding.family, f.finding.line, f.finding.column, f.finding.length)
            for f in found] == [(str(path), "github-token", "github", 3, 10, 40),
                                (str(path), "aws-secret-access-key", "aws", 4, 25, 40)]
    assert not any(b"x1Y2" in repr(f).encode() or b"kkkk" in repr(f).encode() for f in found)
