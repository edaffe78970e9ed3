"""atomic_write / check_writable: all-or-nothing outputs that never clobber anything."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lrn_cli.atomic import ProtectedFiles, atomic_write, check_writable, os_error_reason
from lrn_cli.errors import OutputError


def _write(data: bytes):
    def writer(handle) -> None:
        handle.write(data)

    return writer


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_writes_file_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"
    result = atomic_write(target, _write(b"hello"))
    assert result == target
    assert target.read_bytes() == b"hello"
    assert _leftovers(target.parent) == []


def test_new_file_gets_umask_permissions_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = atomic_write(tmp_path / "out.bin", _write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_temp_file_is_hidden_part_file_in_same_directory(tmp_path: Path) -> None:
    seen: list[str] = []

    def writer(handle) -> None:
        seen.extend(os.listdir(tmp_path))
        handle.write(b"x")

    atomic_write(tmp_path / "out.png", writer)
    assert len(seen) == 1
    assert seen[0].startswith(".out.png.") and seen[0].endswith(".part")
    assert os.listdir(tmp_path) == ["out.png"]


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [Boom("midway"), KeyboardInterrupt()])
def test_exception_midway_leaves_no_temp_and_no_target(tmp_path: Path, error) -> None:
    target = tmp_path / "out.bin"

    def writer(handle) -> None:
        handle.write(b"partial data")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, writer)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_exception_midway_keeps_existing_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"original")

    def writer(handle) -> None:
        handle.write(b"new")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(target, writer, overwrite=True)
    assert target.read_bytes() == b"original"
    assert _leftovers(tmp_path) == []


def test_os_error_from_writer_becomes_output_error(tmp_path: Path) -> None:
    def writer(handle) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="no space left on device"):
        atomic_write(tmp_path / "out.bin", writer)
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"original")
    called = []
    with pytest.raises(OutputError, match="already exists"):
        atomic_write(target, lambda handle: called.append(1))
    assert called == []  # refused before doing any work
    assert target.read_bytes() == b"original"


def test_no_clobber_when_target_appears_during_write(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"

    def writer(handle) -> None:
        target.write_bytes(b"someone else")  # a concurrent process wins the race
        handle.write(b"mine")

    with pytest.raises(OutputError, match="already exists"):
        atomic_write(target, writer)
    assert target.read_bytes() == b"someone else"
    assert _leftovers(tmp_path) == []


def test_overwrite_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"original")
    target.chmod(0o640)
    atomic_write(target, _write(b"new"), overwrite=True)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_protect_refuses_input_even_with_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "in.npy"
    source.write_bytes(b"input")
    with pytest.raises(OutputError, match="input"):
        atomic_write(source, _write(b"x"), overwrite=True, protect=[source])
    assert source.read_bytes() == b"input"


def test_protect_sees_through_links_and_relative_paths(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "in.npy"
    source.write_bytes(b"input")
    hard = tmp_path / "hard.npy"
    os.link(source, hard)
    soft = tmp_path / "soft.npy"
    soft.symlink_to(source)
    monkeypatch.chdir(tmp_path)
    for target in (hard, soft, Path("in.npy"), tmp_path / "sub" / ".." / "in.npy"):
        with pytest.raises(OutputError, match="input"):
            check_writable(target, overwrite=True, protect=[str(source)])
    assert source.read_bytes() == b"input"


def test_protected_files_built_once_catch_the_same_cases(tmp_path: Path) -> None:
    """A batch builds one ProtectedFiles for all inputs (and sends it, pickled, to its
    workers): links, relative spellings and a symlinked folder are still caught."""
    import pickle

    inputs = tmp_path / "in"
    inputs.mkdir()
    sources = [inputs / f"{i}.png" for i in range(50)]
    for path in sources:
        path.write_bytes(b"input")
    os.link(sources[7], tmp_path / "hard.png")
    (tmp_path / "alias").symlink_to(inputs, target_is_directory=True)
    protect = pickle.loads(pickle.dumps(ProtectedFiles(str(p) for p in sources)))
    for target in (tmp_path / "hard.png", tmp_path / "alias" / "3.png",
                   inputs / "x" / ".." / "9.png"):
        with pytest.raises(OutputError, match="is an input file"):
            check_writable(target, overwrite=True, protect=protect)
    assert protect.match(tmp_path / "alias" / "new.png") is None
    assert check_writable(tmp_path / "out" / "3.png", protect=protect)
    assert not ProtectedFiles() and protect


def test_protect_does_not_refuse_other_files(tmp_path: Path) -> None:
    source = tmp_path / "in.npy"
    source.write_bytes(b"input")
    out = atomic_write(tmp_path / "out.npy", _write(b"x"), protect=[source, tmp_path / "gone"])
    assert out.read_bytes() == b"x"


def test_check_writable_refuses_directory_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path, overwrite=True)
    assert check_writable(tmp_path / "new" / "f.png", overwrite=False) == tmp_path / "new" / "f.png"
    assert not (tmp_path / "new").exists()


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="not a directory"):
        atomic_write(tmp_path / "file" / "out.bin", _write(b"x"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            atomic_write(locked / "out.bin", _write(b"x"))
    finally:
        locked.chmod(0o700)


def test_os_error_reason_is_short() -> None:
    assert os_error_reason(FileNotFoundError(2, "No such file or directory", "x")) == (
        "no such file or directory"
    )
    assert os_error_reason(PermissionError(13, "Permission denied")) == "permission denied"


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_is_deferred_to_the_end_of_the_block() -> None:
    import signal

    from lrn_cli.atomic import defer_interrupts

    steps = []
    with pytest.raises(KeyboardInterrupt):
        with defer_interrupts():
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, in the middle
            steps.append("after the signal")
    assert steps == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferring_leaves_an_ignored_sigint_ignored() -> None:
    import signal

    from lrn_cli.atomic import defer_interrupts

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a batch worker
    try:
        with defer_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_publishing_comes_after_the_file_is_complete(tmp_path: Path,
                                                                  monkeypatch) -> None:
    import signal

    from lrn_cli import atomic

    link = os.link

    def link_then_ctrl_c(src, dst) -> None:
        link(src, dst)
        signal.raise_signal(signal.SIGINT)  # lands between the rename and the cleanup

    monkeypatch.setattr(atomic.os, "link", link_then_ctrl_c)
    target = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, _write(b"complete"))
    assert target.read_bytes() == b"complete"
    assert _leftovers(tmp_path) == []


def test_ctrl_c_before_the_rename_still_publishes_nothing_partial(tmp_path: Path,
                                                                  monkeypatch) -> None:
    from lrn_cli import atomic

    def interrupted_link(src, dst) -> None:
        raise KeyboardInterrupt  # raised by code, before the file got its name

    monkeypatch.setattr(atomic.os, "link", interrupted_link)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.bin", _write(b"x"))
    assert list(tmp_path.iterdir()) == []


def test_hold_interrupts_returns_the_published_file_then_raises(tmp_path: Path,
                                                                monkeypatch) -> None:
    from lrn_cli import atomic

    def interrupted_fsync(directory) -> None:
        raise KeyboardInterrupt  # Ctrl-C once the output has its name

    monkeypatch.setattr(atomic, "_fsync_directory", interrupted_fsync)
    recorded = []
    with pytest.raises(KeyboardInterrupt):
        with atomic.hold_interrupts():
            recorded.append(atomic_write(tmp_path / "a.bin", _write(b"a")))
            recorded.append("recorded")
    assert recorded == [tmp_path / "a.bin", "recorded"]
    assert (tmp_path / "a.bin").read_bytes() == b"a"
    # without a hold, the interrupt leaves atomic_write, but only after publishing
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "b.bin", _write(b"b"))
    assert (tmp_path / "b.bin").read_bytes() == b"b"
    assert _leftovers(tmp_path) == []
    # and nothing is left held for the next block
    with atomic.hold_interrupts():
        pass


def _tiny_disk_available(tmp_path: Path) -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
                           capture_output=True)
    return probe.returncode == 0


def test_full_disk_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    """A real full disk (a 64 KiB tmpfs in a private mount namespace), through the real CLI:
    NumPy's '80000 requested and 16352 written' becomes 'no space left on device'."""
    import subprocess
    import sys

    import numpy as np
    from conftest import clean_env

    disk = tmp_path / "disk"
    disk.mkdir()
    if not _tiny_disk_available(disk):
        pytest.skip("no unprivileged mount namespaces (unshare -rm) here")
    src = tmp_path / "big.npy"
    np.save(src, np.ones((1, 8, 100, 100), np.float32))
    script = (f"mount -t tmpfs -o size=64k tmpfs {disk} && "
              f"{sys.executable} -m lrn_cli apply {src} -o {disk}/out.npy -q; "
              f"echo rc=$?; ls -A {disk}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, env=clean_env(), timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {disk}/out.npy: no space left on device"]
    lines = done.stdout.split()
    assert lines == ["rc=1"]  # exit 1 and an empty disk: no partial file, no temp file


def test_short_write_is_named_when_the_disk_is_not_full(tmp_path: Path, monkeypatch) -> None:
    def short(handle) -> None:
        raise OSError("80000 requested and 16352 written")

    with pytest.raises(OutputError, match="short write .*probably full"):
        atomic_write(tmp_path / "out.npy", short)
    assert _leftovers(tmp_path) == []

    class Full:
        f_bavail = 0

    monkeypatch.setattr(os, "statvfs", lambda _path: Full())
    with pytest.raises(OutputError, match=r"out.npy: no space left on device$"):
        atomic_write(tmp_path / "out.npy", short)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out.npy").exists()
