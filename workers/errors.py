"""Failures a stage knows how to name."""

from __future__ import annotations


class StageError(Exception):
    """A failure a stage knows how to name; the job fails with this `code` and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message
