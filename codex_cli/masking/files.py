"""Mask files and stdin to a binary output: what ``codex mask`` runs.

Every input is opened before anything is written, so an unreadable file fails the command with
one line naming it and no output at all.
"""

from __future__ import annotations

import shutil
import sys
from typing import BinaryIO, Callable, NamedTuple, Optional, Sequence

from codex_cli.errors import InputError
from codex_cli.masking.custom import Policy
from codex_cli.masking.stream import ByteMasker, Finding

CHUNK_SIZE = 1 << 20
STDIN_NAME = "-"


class FileFinding(NamedTuple):
    """A finding together with the input it came from (``-`` for stdin)."""

    file: str
    finding: Finding


def open_inputs(paths: Sequence[str], stdin: Optional[BinaryIO] = None) -> list[tuple[str, BinaryIO]]:
    """Open every input (``-`` or none: stdin); an unreadable one raises InputError naming it."""
    opened: list[tuple[str, BinaryIO]] = []
    try:
        for path in paths or [STDIN_NAME]:
            if path == STDIN_NAME:
                opened.append((STDIN_NAME, stdin if stdin is not None else sys.stdin.buffer))
                continue
            try:
                opened.append((path, open(path, "rb")))
            except OSError as e:
                raise InputError(f"cannot read '{path}': {e.strerror or type(e).__name__}; "
                                 "pass a readable file, or '-' for stdin") from e
    except BaseException:
        _close(opened)
        raise
    return opened


def mask_files(inputs: Sequence[tuple[str, BinaryIO]], output: Optional[BinaryIO], replacement: str, typed: bool,
               on_finding: Optional[Callable[[FileFinding], None]] = None, disabled: bool = False,
               policy: Optional[Policy] = None) -> int:
    """Mask each opened input in turn into ``output`` (None: discard); return the number of secrets."""
    total = 0
    try:
        for name, stream in inputs:
            if disabled:
                if output is not None:
                    shutil.copyfileobj(stream, output, CHUNK_SIZE)
                continue
            total += _mask_stream(name, stream, output, replacement, typed, on_finding, policy)
    finally:
        _close(inputs)
    return total


def _mask_stream(name: str, stream: BinaryIO, output: Optional[BinaryIO], replacement: str, typed: bool,
                 on_finding: Optional[Callable[[FileFinding], None]], policy: Optional[Policy]) -> int:
    report = None if on_finding is None else (lambda f: on_finding(FileFinding(name, f)))
    masker = ByteMasker(replacement, typed, on_finding=report, policy=policy)
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(CHUNK_SIZE)
        except OSError as e:
            raise InputError(f"cannot read '{name}': {e.strerror or type(e).__name__}") from e
        pieces = masker.feed_pieces(chunk) if chunk else masker.flush_pieces()
        if output is not None and pieces:
            for piece in pieces:
                output.write(piece)
            output.flush()
        if not chunk:
            return masker.count


def _close(inputs: Sequence[tuple[str, BinaryIO]]) -> None:
    for name, stream in inputs:
        if name != STDIN_NAME:
            stream.close()
