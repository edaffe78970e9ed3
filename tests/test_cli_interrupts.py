"""Ctrl-C while an output of a one-file run gets its name (single file, stdin, --panel):
the output that is on disk is in the report and the manifest, and the run exits 130."""

from __future__ import annotations

import csv
import io
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke


def _interrupt_on_publish(monkeypatch: pytest.MonkeyPatch, which: int) -> list:
    """Raise Ctrl-C just after the ``which``-th output got its name (as a real SIGINT
    delivered there would, once the atomic writer lets it through)."""
    from lrn_cli import atomic

    calls: list = []
    fsync_directory = atomic._fsync_directory

    def interrupted(directory) -> None:
        calls.append(directory)
        fsync_directory(directory)
        if len(calls) == which:
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_fsync_directory", interrupted)
    return calls


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).random((1, 6, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path


def _assert_recorded(r, dump: Path, name: str) -> None:
    assert r.exit_code == 130, r.stderr
    assert (dump / name).exists()
    rows = _rows(dump / "m.csv")
    assert len(rows) == 1 and rows[0]["status"] == "ok", rows
    assert name in rows[0].values(), rows
    assert "interrupted: 1 processed" in r.stderr


def test_single_file(dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupt_on_publish(monkeypatch, 1)
    r = invoke(["apply", "x.npy", "-o", "y.npy", "--manifest", "m.csv", "--layout", "NCHW"])
    _assert_recorded(r, dump, "y.npy")


def test_stdin(dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupt_on_publish(monkeypatch, 1)
    r = invoke(["apply", "-", "-o", "y.npy", "--manifest", "m.csv", "--layout", "NCHW"],
               input=(dump / "x.npy").read_bytes())
    _assert_recorded(r, dump, "y.npy")


def test_panel(dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _interrupt_on_publish(monkeypatch, 2)  # the output, then the panel
    r = invoke(["apply", "x.npy", "-o", "y.npy", "--panel", "p.png", "--manifest", "m.csv",
                "--layout", "NCHW"])
    assert len(calls) >= 2
    _assert_recorded(r, dump, "y.npy")
    assert (dump / "p.png").exists()


def test_stdout_output_is_recorded(dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lrn_cli.cli import run

    write = run.ApplyRun._write_stdout_npy

    def interrupted(array) -> None:
        write(array)
        signal.raise_signal(signal.SIGINT)  # a real Ctrl-C just after the array went out

    monkeypatch.setattr(run.ApplyRun, "_write_stdout_npy", staticmethod(interrupted))
    r = invoke(["apply", "x.npy", "-o", "-", "--manifest", "m.csv", "--layout", "NCHW"])
    assert r.exit_code == 130, r.stderr
    assert np.load(io.BytesIO(r.stdout_bytes), allow_pickle=False).shape == (1, 6, 5, 5)
    rows = _rows(dump / "m.csv")
    assert len(rows) == 1 and rows[0]["status"] == "ok", rows
