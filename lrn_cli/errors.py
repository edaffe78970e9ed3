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


def one_line(exc: BaseException, source: str) -> str:
    """The one line an error while processing ``source`` is reported as (never a traceback).

    An :class:`LrnError` says what is wrong (naming ``source`` first unless it names a file
    already), a :class:`MemoryError` says "out of memory", anything else is a bug and says
    so with its type.

    Examples
    --------
    >>> one_line(ParameterError("size must be >= 1"), "a.npy")
    'a.npy: size must be >= 1'
    >>> one_line(InputError("b.png", "truncated"), "a.npy")
    'b.png: truncated'
    >>> one_line(KeyError("x"), "a.npy")
    "a.npy: internal error KeyError: 'x'"
    """
    if isinstance(exc, LrnError):
        return str(exc) if getattr(exc, "path", None) is not None else f"{source}: {exc}"
    if isinstance(exc, MemoryError):
        return f"{source}: out of memory"
    return f"{source}: internal error {type(exc).__name__}: {exc}"
