"""Crash-safe output files.

Every output is written to a hidden temporary file next to its destination, flushed to disk,
and only then renamed over the destination, so that a crash, a full disk or Ctrl-C never
leaves a half-written file under the real name. The same module refuses to overwrite an
existing file unless asked, and never overwrites an input, even when asked.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TypeAlias

from lrn_cli.errors import OutputError

__all__ = ["PathLike", "atomic_write", "check_writable", "os_error_reason"]

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


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (hard links and symbolic links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        # At least one does not exist (yet): compare where they would resolve to.
        return a.resolve(strict=False) == b.resolve(strict=False)


def check_writable(
    path: PathLike, *, overwrite: bool = False, protect: Iterable[PathLike] = ()
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
        Input files: `path` must not be any of them, even with `overwrite` (same file by
        inode, so hard and symbolic links are caught too).

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
    for item in protect:
        if _same_file(target, Path(os.fspath(item))):
            raise OutputError(
                target, f"is an input file ({os.fspath(item)}); refusing to overwrite it"
            )
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
    writer: Callable[[IO[bytes]], None],
    *,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
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
        _publish(tmp, target, overwrite=overwrite)
    except BaseException as exc:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # pragma: no cover - nothing better to do; keep the first error
            pass
        if isinstance(exc, OSError):
            raise OutputError(target, os_error_reason(exc)) from exc
        raise
    _fsync_directory(directory)
    return target


def _publish(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move the finished temporary file to its final name (no-clobber unless `overwrite`)."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(target, "already exists; refusing to overwrite it") from None
    except OSError:
        # No hard links on this file system (FAT, some network mounts): check, then rename.
        if target.exists() or target.is_symlink():
            raise OutputError(target, "already exists; refusing to overwrite it") from None
        os.replace(tmp, target)
    else:
        tmp.unlink()
