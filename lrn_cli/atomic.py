"""Crash-safe output files.

Every output is written to a hidden temporary file next to its destination, flushed to disk,
and only then renamed over the destination, so that a crash, a full disk or Ctrl-C never
leaves a half-written file under the real name. The same module refuses to overwrite an
existing file unless asked, and never overwrites an input, even when asked.

Ctrl-C is deferred while a finished file gets its name (the rename and the directory fsync):
an interrupt there is delivered just after, never in a state where the file is in place but
the caller is told it failed. A caller that records results (a batch) can open
`hold_interrupts` around "write one file, record it" so that such an interrupt surfaces only
once the file is recorded.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TypeAlias

from lrn_cli.errors import OutputError

__all__ = [
    "PathLike",
    "atomic_write",
    "check_writable",
    "defer_interrupts",
    "hold_interrupts",
    "os_error_reason",
]

PathLike: TypeAlias = str | os.PathLike[str]
"""A file-system path: a `str` or anything `os.fspath` accepts."""

_REASONS = {
    errno.ENOENT: "no such file or directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a parent of the path is not a directory",
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


def os_error_reason(exc: OSError) -> str:
    """Say in a few lower-case words why an OS call failed.

    Error messages name the file once (in `InputError`/`OutputError`), so the reason must not
    repeat it, which ``str(exc)`` does.

    Parameters
    ----------
    exc
        The error raised by the OS call.

    Returns
    -------
    str
        E.g. ``"permission denied"`` or ``"no such file or directory"``.
    """
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    if exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


_SHORT_WRITE = re.compile(r"^\d+ requested and \d+ written$")


def _write_error_reason(exc: OSError, directory: Path) -> str:
    """Why writing failed. NumPy reports a short write (what a full disk gives it) as
    ``OSError("80000 requested and 16352 written")`` with no errno: look at the file system
    (before the partial file is removed) to say what happened."""
    if exc.errno is None and _SHORT_WRITE.match(str(exc)):
        try:
            full = os.statvfs(directory).f_bavail == 0
        except OSError:
            full = False
        if full:
            return _REASONS[errno.ENOSPC]
        return f"short write ({exc}): the disk or a quota is probably full"
    return os_error_reason(exc)


class ProtectedFiles:
    """Input files an output must never be: looked up by inode (hard and symbolic links
    included) and by resolved path (for files that do not exist yet), in O(1) per output.

    Build it once for a batch (each input is looked up once) and pass it as ``protect``;
    plain iterables of paths are turned into one on the fly.  Picklable.
    """

    def __init__(self, paths: Iterable[PathLike] = ()) -> None:
        self._by_inode: dict[tuple[int, int], str] = {}
        self._by_path: dict[str, str] = {}
        for item in paths:
            name = os.fspath(item)
            path = Path(name)
            try:
                st = path.stat()
            except OSError:
                pass
            else:
                self._by_inode.setdefault((st.st_dev, st.st_ino), name)
            self._by_path.setdefault(str(path.resolve(strict=False)), name)

    @classmethod
    def of(cls, protect: ProtectedFiles | Iterable[PathLike]) -> ProtectedFiles:
        """``protect`` itself, or a new one built from an iterable of paths."""
        return protect if isinstance(protect, ProtectedFiles) else cls(protect)

    def __bool__(self) -> bool:
        return bool(self._by_path)

    def match(self, target: PathLike) -> str | None:
        """The protected input ``target`` names, or None."""
        if not self._by_path:
            return None
        path = Path(os.fspath(target))
        try:
            st = path.stat()
        except OSError:
            pass
        else:
            hit = self._by_inode.get((st.st_dev, st.st_ino))
            if hit is not None:
                return hit
        return self._by_path.get(str(path.resolve(strict=False)))


def check_writable(
    path: PathLike, *, overwrite: bool = False,
    protect: ProtectedFiles | Iterable[PathLike] = (),
) -> Path:
    """Refuse an output path exactly as `atomic_write` would, without writing anything.

    Lets a caller (a dry run, or a batch before its first expensive computation) fail early.

    Parameters
    ----------
    path
        The output file.
    overwrite
        Whether an existing file at `path` may be replaced.
    protect
        Input files (paths or a `ProtectedFiles`): `path` must not be any of them, even with
        `overwrite` (same file by inode, so hard and symbolic links are caught too).

    Returns
    -------
    Path
        `path` as a `Path`.

    Raises
    ------
    OutputError
        If `path` is an input, is a directory, exists (without `overwrite`), or its directory
        cannot be used.
    """
    target = Path(os.fspath(path))
    item = ProtectedFiles.of(protect).match(target)
    if item is not None:
        raise OutputError(target, f"is an input file ({item}); refusing to overwrite it")
    if target.is_dir():
        raise OutputError(target, "is a directory")
    if not overwrite and (target.exists() or target.is_symlink()):
        raise OutputError(target, "already exists; refusing to overwrite it")
    # The nearest existing ancestor must be a writable directory (missing ones get created).
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(target, f"{parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(target, f"directory {parent} is not writable")
    return target


def _umask() -> int:
    """The process umask, to give new files the usual permissions (mkstemp makes them 0600)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); silently skipped where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: PathLike,
    writer: Callable[[IO[bytes]], object],
    *,
    overwrite: bool = False,
    protect: ProtectedFiles | Iterable[PathLike] = (),
) -> Path:
    """Write a file all-or-nothing: the destination is either untouched or complete.

    `writer` writes to a temporary file ``.{name}.XXXX.part`` in the destination's directory
    (so the final rename never crosses file systems); the data is fsync'ed, then renamed onto
    `path`. On any exception, KeyboardInterrupt included, the temporary file is deleted and
    the exception propagates. Without `overwrite`, the final step is a hard link that fails if
    the destination appeared meanwhile, so an existing file is never clobbered.

    Parameters
    ----------
    path
        The destination. Missing parent directories are created.
    writer
        Called once with a binary file object open for writing; must not close it. Writers
        that choose a format from the file name (Pillow) must be given the format
        explicitly, since the temporary name ends in ``.part``.
    overwrite
        Whether an existing file at `path` may be replaced.
    protect
        Input files that must never be overwritten, even with `overwrite`.

    Returns
    -------
    Path
        The destination.

    Raises
    ------
    OutputError
        If `check_writable` refuses `path`, or an OS error (full disk, permissions, a
        writer's own `OSError`, such as Pillow's "cannot write mode") occurs while writing.
        Other exceptions from `writer` propagate unchanged.
    """
    target = check_writable(path, overwrite=overwrite, protect=protect)
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        reason = f"cannot create a file in {directory}: {os_error_reason(exc)}"
        raise OutputError(target, reason) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            mode = target.stat().st_mode & 0o7777 if overwrite else None
        except OSError:
            mode = None
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
    except BaseException as exc:
        failure = _write_error_reason(exc, directory) if isinstance(exc, OSError) else None
        _discard(tmp)
        if failure is not None:
            raise OutputError(target, failure) from exc
        raise
    # The file is complete: from here on Ctrl-C waits until it has its name (or was refused),
    # so an interrupt never separates "the output exists" from "the caller knows it does".
    with defer_interrupts(hold=True) as deferred:
        try:
            linked = _publish(tmp, target, overwrite=overwrite)
        except BaseException as exc:
            _discard(tmp)
            if isinstance(exc, OSError):
                raise OutputError(target, os_error_reason(exc)) from exc
            raise
        try:
            if linked:
                _discard(tmp)
            _fsync_directory(directory)
        except KeyboardInterrupt:
            deferred.interrupted()  # the output is in place: report it, then stop
    return target


def _discard(tmp: Path) -> None:
    """Remove a temporary file, ignoring any error (it may already be gone)."""
    try:
        tmp.unlink()
    except OSError:  # pragma: no cover - nothing better to do; keep the first error
        pass


def _publish(tmp: Path, target: Path, *, overwrite: bool) -> bool:
    """Give the finished temporary file its final name (no-clobber unless `overwrite`).

    Returns whether `tmp` was hard-linked (and still has to be removed) rather than renamed.
    """
    if overwrite:
        os.replace(tmp, target)
        return False
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(target, "already exists; refusing to overwrite it") from None
    except OSError:
        # No hard links on this file system (FAT, some network mounts): check, then rename.
        if target.exists() or target.is_symlink():
            raise OutputError(target, "already exists; refusing to overwrite it") from None
        os.replace(tmp, target)
        return False
    return True


# --------------------------------------------------------------------------- Ctrl-C


class _Holds(threading.local):
    """Per thread: how many `hold_interrupts` blocks are open, and the interrupt they hold."""

    depth = 0
    pending: Callable[[], None] | None = None


_holds = _Holds()


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


class defer_interrupts:  # noqa: N801 - used like a function: ``with defer_interrupts():``
    """Within the block, Ctrl-C (SIGINT) is recorded instead of raised; delivered on exit.

    Only the main thread can change signal handlers, and only a Python-level handler (such as
    the default one raising `KeyboardInterrupt`) is replaced: where SIGINT is ignored (batch
    workers) or left to the OS, nothing changes. On leaving the block, a recorded signal is
    handed to the previous handler (which raises `KeyboardInterrupt`) — or, with ``hold=True``
    inside an open `hold_interrupts` block, kept until that block ends. Code in the block may
    call `interrupted` to have a `KeyboardInterrupt` it caught delivered the same way.
    """

    def __init__(self, *, hold: bool = False) -> None:
        self._hold = hold
        self._previous: object = None
        self._installed = False
        self._pending: Callable[[], None] | None = None

    def __enter__(self) -> defer_interrupts:
        self._pending = None
        self._installed = False
        if threading.current_thread() is threading.main_thread():
            try:
                previous = signal.getsignal(signal.SIGINT)
                if callable(previous):
                    signal.signal(signal.SIGINT, self._record)
                    self._previous = previous
                    self._installed = True
            except (ValueError, OSError):  # pragma: no cover - e.g. an embedded interpreter
                pass
        return self

    def _record(self, signum: int, frame: object) -> None:
        handler = self._previous
        if self._pending is None and callable(handler):
            self._pending = lambda: handler(signum, frame)

    def interrupted(self) -> None:
        """Deliver a `KeyboardInterrupt` (caught inside the block) when the block ends."""
        if self._pending is None:
            self._pending = _raise_keyboard_interrupt

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed:
            self._installed = False
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if self._hold and _holds.depth > 0:
            if _holds.pending is None:
                _holds.pending = pending
            return
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            return  # already on its way out
        pending()


class hold_interrupts:  # noqa: N801 - used like a function: ``with hold_interrupts():``
    """Keep a Ctrl-C that lands while `atomic_write` publishes a file until the block ends.

    Wrap "produce one output, record it" in this block: an interrupt during the final rename
    no longer escapes `atomic_write` (which would lose a complete file from the caller's
    records); the file is returned normally and the `KeyboardInterrupt` is raised when the
    block ends. Interrupts elsewhere in the block are raised where they land, as usual.
    Blocks nest; the outermost one delivers.
    """

    def __enter__(self) -> hold_interrupts:
        _holds.depth += 1
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _holds.depth -= 1
        if _holds.depth > 0:
            return
        pending, _holds.pending = _holds.pending, None
        if pending is None:
            return
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            return  # the interrupt is already on its way out
        pending()
