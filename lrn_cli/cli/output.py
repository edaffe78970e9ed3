"""Where things go: data on stdout (Rich tables, JSON, CSV), notes and errors on stderr.

Colour only on a terminal (Rich decides; ``NO_COLOR`` is honoured).  A closed stdout
(``lrn stats x.npy --csv | head -1``) ends the command quietly with exit 0.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import click

from lrn_cli.cli import _silence_fd, _silence_stdout

_CONSOLE_CLASS = None


def _console_class():
    """A Rich Console whose closed-pipe handling fits a command-line tool (built on first use).

    Rich's own ``on_broken_pipe`` exits 1; a reader that went away (``| head``) is no error.
    """
    global _CONSOLE_CLASS
    if _CONSOLE_CLASS is None:
        from rich.console import Console

        class QuietPipeConsole(Console):
            def on_broken_pipe(self) -> None:
                self.quiet = True
                if self.stderr:
                    # nobody reads the messages any more: drop them, keep working
                    _silence_fd(sys.stderr)
                    return
                _silence_stdout()
                raise SystemExit(0)

        _CONSOLE_CLASS = QuietPipeConsole
    return _CONSOLE_CLASS


def _console(stderr: bool):
    stream = sys.stderr if stderr else sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    # a table piped to a file should not be squeezed to 80 columns; messages on stderr are
    # printed with soft_wrap (never broken into lines), see Ui.error
    width = None if interactive or os.environ.get("COLUMNS") else 160
    return _console_class()(file=stream, stderr=stderr, width=width, highlight=False,
                            soft_wrap=False)


class Ui:
    """The command's voice: errors always, notes unless quiet, data on stdout."""

    def __init__(self, quiet: bool = False, verbose: bool = False,
                 traceback: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.traceback = traceback
        self._err = None
        self._out = None

    def print_traceback(self, exc: BaseException) -> None:
        """``exc``'s traceback on stderr when ``--traceback`` was given (works after the
        ``except`` block too, unlike ``traceback.print_exc``)."""
        if self.traceback:
            import traceback

            traceback.print_exception(exc)

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

    def line(self, text: str, *, markup: bool = False) -> None:
        """One line on stderr, never wrapped (a log keeps one message per line).

        File names in it are shown as :func:`display_name` shows them (valid UTF-8, no
        control characters), whoever built the message.
        """
        text = display_name(text)
        self.err.print(text if markup else _escape(text), soft_wrap=True)

    def error(self, message: str) -> None:
        """One line on stderr, always shown."""
        self.line(f"[bold red]error:[/] {_escape(message)}", markup=True)

    def warn(self, message: str) -> None:
        """One line on stderr unless ``--quiet``."""
        if not self.quiet:
            self.line(f"[yellow]warning:[/] {_escape(message)}", markup=True)

    def note(self, message: str) -> None:
        """One line on stderr unless ``--quiet``."""
        if not self.quiet:
            self.line(f"[dim]note:[/] {_escape(message)}", markup=True)

    def info(self, message: str) -> None:
        """Status line on stderr unless ``--quiet``."""
        if not self.quiet:
            self.line(message)

    def print_table(self, table, *, to_stderr: bool = False) -> None:
        """Render a Rich table on stdout (or stderr when stdout carries binary data).

        No cell is ever cut: every column is at least as wide as its longest word (a number
        is one word), so a table too wide for the terminal is printed wider rather than
        cropped.  Only columns marked ``overflow="fold"`` (file names) may fold, and only to
        fit a chosen width (a terminal, ``COLUMNS``): in a pipe or a log they stay whole, on
        one line.
        """
        console = self.err if to_stderr else self.out
        # a width someone chose (a terminal's, COLUMNS) lets long names fold to fit it
        keep_cells_whole(table, fold=console.is_terminal or bool(os.environ.get("COLUMNS")))
        with broken_pipe_guard():
            console.print(table, crop=False, soft_wrap=False)

    def write_data(self, text: str) -> None:
        """Write machine-readable text to stdout."""
        with broken_pipe_guard():
            sys.stdout.write(text)
            sys.stdout.flush()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


#: Control characters shown by their C escape; the others as ``\xNN`` (C0, DEL) or
#: ``\u00NN`` (C1, which are characters, not bytes).
_C_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def display_name(name: str) -> str:
    """``name`` (a path, or a message holding one) as every output of ``lrn`` shows it.

    Always valid UTF-8 on one line, and never a terminal control sequence: a byte that is
    not UTF-8 (which ``os.fsdecode`` keeps as a lone surrogate U+DC80..U+DCFF) is shown as
    ``\\xNN``, as ``ls -b`` shows it; control characters as ``\\n``, ``\\t``, ``\\r``,
    ``\\xNN`` (C0 and DEL) or ``\\u00NN`` (C1); any other lone surrogate as ``\\uNNNN``.
    Everything else (any printable character, in any script) is kept as it is.  The exact
    name of a shown one is in manifests (``file_hex``, see :func:`name_hex`).
    """
    if name.isprintable():
        return name
    out = []
    for ch in name:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif 0xD800 <= cp <= 0xDFFF:
            out.append(f"\\u{cp:04x}")
        elif ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif cp < 0x20 or cp == 0x7F:
            out.append(f"\\x{cp:02x}")
        elif 0x80 <= cp < 0xA0:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return "".join(out)


def name_hex(name: str | None) -> str | None:
    """The exact bytes of a file name, in hex, when :func:`display_name` changes it; else None.

    ``bytes.fromhex(row["file_hex"])`` is the name to open (``os.fsdecode`` turns it back
    into the ``str`` Python would use).
    """
    if name is None or display_name(name) == name:
        return None
    try:
        raw = os.fsencode(name)
    except UnicodeError:  # a lone surrogate no file system decoding produces
        raw = name.encode("utf-8", "surrogatepass")
    return raw.hex()


def _no_surrogates(text: str) -> str:
    """``text`` with lone surrogates escaped as :func:`display_name` does (valid UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(display_name(ch) if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


class broken_pipe_guard:  # noqa: N801 - used as a context manager
    """Turn a closed stdout into a quiet exit 0."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc_type is not None and is_broken_pipe(exc):
            _silence_stdout()
            raise SystemExit(0)
        return False


def is_broken_pipe(exc: BaseException | None) -> bool:
    """A write to a reader that went away (``| head``): BrokenPipeError or OSError EPIPE."""
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError)
                                                 and exc.errno == errno.EPIPE)


def keep_cells_whole(table, *, fold: bool = False) -> None:
    """Give every column of a Rich ``table`` a ``min_width`` of its longest word.

    Rich shrinks columns that do not fit and then cuts cells with '…'; with these minimum
    widths it cannot go below a word, so numbers and names are never cut (the table may
    come out wider than the console: print it with ``crop=False``).  Columns with
    ``overflow="fold"`` are left free to fold when ``fold`` is true (only their header's
    words are kept whole).
    """
    from rich.cells import cell_len

    for column in table.columns:
        folds = fold and column.overflow == "fold"
        longest = 0
        for cell in (column.header, *([] if folds else column.cells)):
            text = _plain(cell)
            if text is None:
                continue
            parts = text.splitlines() if column.no_wrap else text.split()
            for part in parts:
                longest = max(longest, cell_len(part))
        if column.max_width is not None:
            longest = min(longest, column.max_width)
        if longest and (column.min_width is None or column.min_width < longest):
            column.min_width = longest


def _plain(cell: Any) -> str | None:
    """The text a table cell shows (markup resolved), or None for other renderables."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        from rich.errors import MarkupError

        try:
            return Text.from_markup(cell).plain
        except MarkupError:
            return cell
    return None


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
    if isinstance(obj, str):
        return _no_surrogates(obj)
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
    if isinstance(v, str):
        return _no_surrogates(v)
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
                     overwrite: bool, protect=()) -> None:
    """Write the statistics table to a .csv or .json file, atomically (never over an input)."""
    from lrn_cli.atomic import atomic_write

    if path.lower().endswith(".json"):
        data = json_text(document).encode()
    elif path.lower().endswith(".csv"):
        data = csv_text(rows).encode()
    else:
        raise click.BadParameter("must end in .csv or .json", param_hint="--stats-out")
    atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite, protect=protect)
