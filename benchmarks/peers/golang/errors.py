"""The one exception of the Go evaluator: a construct (or regex) it cannot evaluate, with its source line."""

from __future__ import annotations


class GoError(Exception):
    """A Go construct (or regex) that the evaluator cannot evaluate."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.line = line
