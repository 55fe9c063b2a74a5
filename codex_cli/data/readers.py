"""Reading training files into records: .jsonl, .csv and .txt. Stdlib only.

A record is ``(line, prompt, text)``: ``prompt`` is None for plain text records, and
``text`` is then the whole text; for prompt/completion records ``text`` is the completion.
A chat record (JSONL only) is a ``Chat``: OpenAI-style ``messages``, rendered later by the chat template.
Errors name the file and line and never quote the record itself (it may hold secrets).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from codex_cli.data.chat import ROLES, Message
from codex_cli.errors import DataError


@dataclass(frozen=True)
class Chat:
    """A conversation: (role, content) pairs in order."""

    line: int
    messages: tuple[Message, ...]


Record = Union[tuple[int, Optional[str], str], Chat]
FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".txt": "txt"}
_CSV_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Fields:
    """Which JSON keys / CSV columns hold the text, the prompt and the completion."""

    text: str = "text"
    prompt: str = "prompt"
    completion: str = "completion"
    messages: str = "messages"


def detect_format(path: Path, requested: str, label: str) -> str:
    """The file's format: ``requested`` unless it is "auto", else from the extension."""
    if requested != "auto":
        return requested
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"data file '{label}' has an unknown extension '{path.suffix}'; use .jsonl, .csv or .txt, "
                        "or set data.format")
    return fmt


def read_bytes(path: Path, label: str, key: str) -> bytes:
    """The raw bytes of a data file, with errors that say which config key to fix."""
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"data file '{label}' not found; check {key}") from e
    except IsADirectoryError as e:
        raise DataError(f"data file '{label}' is a directory; point {key} at a .jsonl, .csv or .txt file") from e
    except OSError as e:
        raise DataError(f"data file '{label}' cannot be read ({type(e).__name__}); check its permissions") from e


def decode(raw: bytes, label: str) -> str:
    """UTF-8 text of a data file (a leading BOM is dropped); invalid bytes are reported by line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"data file '{label}' line {line}: not valid UTF-8; save the file as UTF-8") from e


def read_records(text: str, fmt: str, fields: Fields, label: str) -> list[Record]:
    """Parse decoded file text into records; a .txt file is one record."""
    if fmt == "jsonl":
        records = _jsonl(text, fields, label)
    elif fmt == "csv":
        records = _csv(text, fields, label)
    else:
        records = [(1, None, text)] if text.strip() else []
    if not records:
        raise DataError(f"data file '{label}' has no records; add some or point the config at another file")
    return records


def _jsonl(text: str, fields: Fields, label: str) -> list[Record]:
    records: list[Record] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"data file '{label}' line {number}: invalid JSON ({e.msg} at column {e.colno})") from e
        if not isinstance(obj, dict):
            raise DataError(f"data file '{label}' line {number}: expected a JSON object, got {_kind(obj)}")
        records.append(_record(obj, fields, label, number, "field"))
    return records


def _csv(text: str, fields: Fields, label: str) -> list[Record]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[Record] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            if header is None:
                header = row
                _check_columns(header, fields, label)
            elif row:
                if len(row) != len(header):
                    raise DataError(f"data file '{label}' line {start}: expected {len(header)} columns, "
                                    f"got {len(row)}")
                records.append(_record(dict(zip(header, row)), fields, label, start, "column"))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"data file '{label}' line {start}: invalid CSV ({e})") from e
    return records


def _check_columns(header: list[str], fields: Fields, label: str) -> None:
    if fields.text in header or (fields.prompt in header and fields.completion in header):
        return
    raise DataError(f"data file '{label}' has no column '{fields.text}' (or '{fields.prompt}' and "
                    f"'{fields.completion}'); its columns are: {', '.join(header)}; set data.text_field")


def _record(obj: dict[str, Any], fields: Fields, label: str, number: int, what: str) -> Record:
    where = f"data file '{label}' line {number}"
    if fields.text in obj:
        return number, None, _string(obj, fields.text, where, what)
    if fields.prompt in obj and fields.completion in obj:
        prompt = _string(obj, fields.prompt, where, what)
        return number, prompt, _string(obj, fields.completion, where, what)
    if what == "field" and fields.messages in obj:
        return Chat(number, _messages(obj[fields.messages], fields.messages, where))
    if what == "field":
        raise DataError(f"{where}: missing field '{fields.text}' (or '{fields.prompt}' and '{fields.completion}', or "
                        f"'{fields.messages}'); set data.text_field, data.prompt_field, data.completion_field or "
                        "data.messages_field")
    raise DataError(f"{where}: missing column '{fields.text}' (or '{fields.prompt}' and '{fields.completion}'); "
                    "set data.text_field, data.prompt_field or data.completion_field")


def _messages(value: Any, key: str, where: str) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{key}' must be a non-empty array of messages, got {_kind(value)}")
    messages = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise DataError(f"{where}: {key}[{number}] must be an object with a string 'content'")
        if item.get("role") not in ROLES:
            raise DataError(f"{where}: {key}[{number}] has no valid 'role'; use one of {', '.join(ROLES)}")
        messages.append((item["role"], item["content"]))
    return tuple(messages)


def _string(obj: dict[str, Any], key: str, where: str, what: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} '{key}' must be a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
