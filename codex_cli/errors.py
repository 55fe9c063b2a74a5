"""The one exception tree of codex. Every user-facing failure is a CodexError.

The CLI catches CodexError once, prints ``str(error)`` as one line on stderr and
exits with ``error.exit_code``. Anything else is a bug and keeps its traceback.
Messages must never contain secrets.
"""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of a third-party error, at most 200 characters: enough to name what went wrong."""
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."


class CodexError(Exception):
    """A failure the user can act on: one line saying what and how to fix it."""

    exit_code = 1


class UsageError(CodexError):
    """Bad command-line usage, or a command that is not available."""

    exit_code = 2


class ConfigError(CodexError):
    """A config file, key or value is wrong."""

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class DataError(CodexError):
    """Training data is missing, unreadable or malformed."""

    exit_code = 2


class ModelError(CodexError):
    """A model or tokenizer cannot be found or loaded."""

    exit_code = 2


class CheckpointError(CodexError):
    """A checkpoint is missing, corrupt, incompatible or cannot be written."""

    exit_code = 1


class ServeError(CodexError):
    """The server cannot start or cannot serve what it was asked to."""

    exit_code = 1


class DistributedError(CodexError):
    """A rank of a multi-process run failed, or the ranks cannot form or keep their process group."""

    exit_code = 1


class TrackingError(CodexError):
    """Experiment tracking is on but cannot start: MLflow is missing, or its store cannot be used."""

    exit_code = 2


class InputError(CodexError):
    """An input file cannot be read (for example by ``codex mask``)."""

    exit_code = 2
