"""Exceptions the library raises, so that callers (and the CLI) can tell user errors from bugs."""

from __future__ import annotations


class LrnError(Exception):
    """Base class of every error `lrn_cli` raises on purpose."""


class ParameterError(LrnError, ValueError):
    """A parameter (size, alpha, beta, k, convention, layout, dtype) is invalid."""


class InputError(LrnError):
    """An input file cannot be used: unreadable, truncated, wrong format, wrong layout, etc.

    Parameters
    ----------
    path
        The file concerned (shown first in the message).
    reason
        One line saying what is wrong with it.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputError(LrnError):
    """An output cannot be written (exists, would overwrite an input, unwritable directory)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
