"""Where things go: data on stdout (Rich tables, JSON, CSV), notes and errors on stderr.

Colour only on a terminal (Rich decides; ``NO_COLOR`` is honoured).  A closed stdout
(``lrn stats x.npy --csv | head -1``) ends the command quietly with exit 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from lrn_cli.cli import _silence_stdout


def _console(stderr: bool):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    # a table piped to a file should not be squeezed to 80 columns
    width = None if interactive or os.environ.get("COLUMNS") else 160
    return Console(file=stream, stderr=stderr, width=width, highlight=False, soft_wrap=False)


class Ui:
    """The command's voice: errors always, notes unless quiet, data on stdout."""

    def __init__(self, quiet: bool = False, verbose: bool = False,
                 traceback: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.traceback = traceback
        self._err = None
        self._out = None

    @property
    def err(self):
        """Rich console on stderr."""
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    @property
    def out(self):
        """Rich console on stdout."""
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    def error(self, message: str) -> None:
        """One line on stderr, always shown."""
        self.err.print(f"[bold red]error:[/] {_escape(message)}")

    def warn(self, message: str) -> None:
        """One line on stderr unless ``--quiet``."""
        if not self.quiet:
            self.err.print(f"[yellow]warning:[/] {_escape(message)}")

    def note(self, message: str) -> None:
        """One line on stderr unless ``--quiet``."""
        if not self.quiet:
            self.err.print(f"[dim]note:[/] {_escape(message)}")

    def info(self, message: str) -> None:
        """Status line on stderr unless ``--quiet``."""
        if not self.quiet:
            self.err.print(_escape(message))

    def print_table(self, table, *, to_stderr: bool = False) -> None:
        """Render a Rich table on stdout (or stderr when stdout carries binary data)."""
        with broken_pipe_guard():
            (self.err if to_stderr else self.out).print(table)

    def write_data(self, text: str) -> None:
        """Write machine-readable text to stdout."""
        with broken_pipe_guard():
            sys.stdout.write(text)
            sys.stdout.flush()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class broken_pipe_guard:  # noqa: N801 - used as a context manager
    """Turn a closed stdout into a quiet exit 0."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, BrokenPipeError):
            _silence_stdout()
            raise SystemExit(0)
        return False


def fmt(value: Any) -> str:
    """A number for a table: 4 significant digits, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "nan"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:.4g}"


def json_text(document: Any) -> str:
    """JSON with NaN/Inf as null."""
    return json.dumps(_clean(document), indent=2, allow_nan=False) + "\n"


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return _clean(obj.item())
    return obj


def csv_text(rows: Sequence[dict[str, Any]], columns: Iterable[str] | None = None) -> str:
    """CSV with a header; empty cells for missing values."""
    if columns is None:
        columns = []
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else _csv_value(v)) for k, v in row.items()})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    if isinstance(v, (list, tuple)):
        return "x".join(str(i) for i in v)
    return v


def check_formats(ctx: click.Context, **flags: bool) -> str | None:
    """Return the one machine format asked for (``json``/``csv``), or None; refuse two."""
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise click.UsageError(f"use just one of {', '.join('--' + c for c in chosen)}", ctx)
    return chosen[0] if chosen else None


def write_stats_file(path: str, rows: list[dict[str, Any]], document: Any,
                     overwrite: bool) -> None:
    """Write the statistics table to a .csv or .json file, atomically."""
    from lrn_cli.atomic import atomic_write

    if path.lower().endswith(".json"):
        data = json_text(document).encode()
    elif path.lower().endswith(".csv"):
        data = csv_text(rows).encode()
    else:
        raise click.BadParameter("must end in .csv or .json", param_hint="--stats-out")
    atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite)
