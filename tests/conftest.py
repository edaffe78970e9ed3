"""Shared fixtures and helpers for the tests of the ``lrn`` command (tests/test_cli_*.py).

Nothing here is autouse.  One thing applies to every test: importing this module puts the
lrn_cli the tests import first on ``PYTHONPATH`` (see below), so subprocesses run it too.

* ``lrn``: run the real Click command in-process (``CliRunner``), with a clean environment
  (no colour or width overrides from the caller's shell, one worker process), and re-raise
  anything that is not a normal exit so that a crash never passes as "exit code 1".
* ``run_lrn``: run ``python -m lrn_cli`` in a subprocess with the same clean environment.
* ``npy``: save an array under ``tmp_path`` and return its path as a string.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent

# Subprocesses (the CLI, the README's commands, the batch's workers) import the lrn_cli this
# process imports.  With a non-editable install (CI) they would otherwise take the installed
# copy, whose Numba cache is a second one: every kernel they use was compiled twice (a CI
# run of session 11 left 79 kernels' cache index files in both).  The installed copy's
# contents are checked by test_packaging; its `lrn` script still runs (importing this one).


def pythonpath_with(first: str) -> str:
    """``PYTHONPATH`` with ``first`` ahead of what this process's environment holds."""
    return os.pathsep.join(p for p in (first, os.environ.get("PYTHONPATH", "")) if p)


_SPEC = importlib.util.find_spec("lrn_cli")
if _SPEC is not None and _SPEC.origin is not None:
    os.environ["PYTHONPATH"] = pythonpath_with(str(Path(_SPEC.origin).resolve().parent.parent))

SAMPLES = ROOT / "samples"
IMAGES = SAMPLES / "images"
ARRAYS = SAMPLES / "arrays"

#: Environment variables that change what the CLI prints; unset for every CLI test run.
_NOISY_ENV = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM", "TTY_COMPATIBLE",
              "TTY_INTERACTIVE", "CLICOLOR", "CLICOLOR_FORCE", "PY_COLORS")


def clean_env(**extra: str | None) -> dict[str, str]:
    """``os.environ`` without colour/width overrides, with one worker, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _NOISY_ENV}
    env["LRN_JOBS"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def invoke(args: list[str], *, input: bytes | str | None = None,
           env: dict[str, str | None] | None = None) -> Result:
    """Run ``lrn ARGS`` in-process; return the Click result (stdout/stderr separate)."""
    from lrn_cli.cli import cli

    run_env: dict[str, str | None] = {name: None for name in _NOISY_ENV}
    run_env["LRN_JOBS"] = "1"
    run_env.update(env or {})
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, env=run_env,
                                prog_name="lrn", catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"lrn {' '.join(map(str, args))} crashed\nstderr:\n{result.stderr}"
        ) from result.exception
    return result


#: The ``lrn`` script installed next to this Python (tests that need it skip without it).
LRN_EXE = Path(sys.executable).with_name("lrn")
#: No colour and no wrapping of long paths, for tests that read whole tables.
WIDE = {"COLUMNS": "400", "NO_COLOR": "1"}


def run_wide(*args: object, input: bytes | str | None = None) -> Result:
    """``lrn ARGS`` in-process (see :func:`invoke`), 400 columns wide, without colour."""
    return invoke([str(a) for a in args], input=input, env=WIDE)


def stdout_of(result: Result) -> str:
    try:
        return result.stdout
    except ValueError:  # Click 8.1 mixes stderr into output
        return result.output


def stderr_of(result: Result) -> str:
    try:
        return result.stderr
    except ValueError:  # Click 8.1 mixes stderr into output
        return result.output


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in ``tmp_path``: short relative names keep messages well under any line width."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def lrn(in_tmp: Path) -> Callable[..., Result]:
    """``lrn(*args, input=None, env=None)`` runs the CLI in-process (see :func:`invoke`).

    The current directory is ``tmp_path`` (see ``in_tmp``).
    """

    def run(*args, input=None, env=None) -> Result:
        return invoke(list(args), input=input, env=env)

    return run


def run_lrn_subprocess(*args: str, env: dict[str, str] | None = None, input: bytes | None = None,
                       cwd: str | os.PathLike | None = None,
                       timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m lrn_cli ARGS`` with a clean environment; bytes in, bytes out."""
    return subprocess.run([sys.executable, "-m", "lrn_cli", *map(str, args)],
                          capture_output=True, input=input, env=env or clean_env(), cwd=cwd,
                          timeout=timeout, check=False)


@pytest.fixture
def run_lrn() -> Callable[..., subprocess.CompletedProcess]:
    """``run_lrn(*args, env=None, input=None, cwd=None)`` runs ``python -m lrn_cli``."""
    return run_lrn_subprocess


@pytest.fixture
def npy(in_tmp: Path) -> Callable[..., str]:
    """``npy(name, array)`` saves ``array`` as ``tmp_path/name``; returns ``name`` (relative
    to the current directory, which is ``tmp_path``)."""

    def save(name: str, array: np.ndarray) -> str:
        path = in_tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array, allow_pickle=False)
        return name

    return save


@pytest.fixture
def acts() -> np.ndarray:
    """A small float32 NCHW activation tensor with enough energy for LRN to matter."""
    rng = np.random.default_rng(1234)
    x = rng.gamma(2.0, 20.0, size=(2, 7, 5, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.4] = 0.0  # ReLU-like zeros
    return x


def error_lines(stderr: str) -> list[str]:
    """The ``error:`` lines of a command's stderr."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]
