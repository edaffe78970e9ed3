"""Shared CLI behaviour: --version, --help, lazy imports, python -m, pipes, colour, exit codes.

Several tests run ``python -m lrn_cli`` in a subprocess, because what they check (imported
modules, a closed pipe, a terminal) only exists in a real process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import subprocess
import sys
import time
from importlib.metadata import version

import numpy as np
import pytest
from conftest import ARRAYS, clean_env, error_lines

from lrn_cli import __version__
from lrn_cli.cli import COMMANDS

# --------------------------------------------------------------------------- --version


def _expected_version_lines() -> list[str]:
    return [f"lrn {__version__}", f"Python {sys.version.split()[0]}",
            f"NumPy {version('numpy')}", f"Numba {version('numba')}",
            f"Pillow {version('pillow')}"]


def test_version_in_process(lrn):
    r = lrn("--version")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[:5] == _expected_version_lines()
    assert r.stderr == ""


def test_version_subprocess(run_lrn):
    p = run_lrn("--version")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines()[:5] == _expected_version_lines()
    assert p.stderr == b""


# --------------------------------------------------------------------------- lazy imports

_PROBE = """
import json, sys
from lrn_cli.cli import main
sys.argv = ["lrn", *json.loads(sys.argv[1])]
code = None
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"numba", "llvmlite", "PIL"})
sys.stdout.write("\\nPROBE " + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


def _probe(args: list[str]) -> dict:
    p = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True,
                       env=clean_env(), timeout=60, check=False)
    assert p.returncode == 0, p.stderr.decode()
    last = p.stdout.decode().rstrip().splitlines()[-1]
    assert last.startswith("PROBE "), p.stdout.decode()
    return json.loads(last[len("PROBE "):])


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-h"]]
                         + [[name, "--help"] for name in COMMANDS]
                         + [["conventions", "translate", "--help"]],
                         ids=lambda a: " ".join(a))
def test_help_and_version_import_neither_numba_nor_pillow(args):
    result = _probe(args)
    assert result["code"] in (0, None)
    assert result["heavy"] == []


def test_the_probe_can_see_numba_and_pillow(tmp_path):
    """The check above is meaningful: a real command does import them."""
    np.save(tmp_path / "x.npy", np.ones((1, 3, 2, 2), np.float32))
    result = _probe(["apply", str(tmp_path / "x.npy"), "-q", "--csv"])
    assert "numba" in result["heavy"]
    result = _probe(["stats", str(ARRAYS.parent / "images" / "camera_gray.png"), "--csv"])
    assert "PIL" in result["heavy"]


# --------------------------------------------------------------------------- --help


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_main_help(lrn):
    r = lrn("--help")
    assert r.exit_code == 0
    out = _flat(r.stdout)
    for name in ("apply", "stats", "compare", "conventions"):
        assert name in out
    assert "Exit codes: 0" in out and "2 usage error" in out
    assert "--version" in out


def test_apply_help_shows_every_default(lrn):
    r = lrn("apply", "--help")
    assert r.exit_code == 0
    out = _flat(r.stdout)
    for text in ("-n, --size INTEGER RANGE Window width n. [default: 5]",
                 "--alpha FLOAT Scale alpha. [default: 0.0001]",
                 "--beta FLOAT Exponent beta. [default: 0.75]",
                 "-k, --k FLOAT Bias k. [default: 2]",
                 "[default: across]",
                 "[default: default]",
                 "[default: unit]",
                 "[default: minmax]",
                 "[default: 8]",
                 "[default: NCHW for 4-D, CHW for 3-D",
                 "--depth-radius", "--convention", "--layout", "--channel-axis", "--dtype",
                 "--overwrite", "--json", "--csv", "--quiet", "--traceback", "--key",
                 "--range", "--rescale", "--global-rescale", "--bits", "--stats-out"):
        assert text in out, text
    for name in ("pytorch", "tensorflow", "caffe", "onnx", "alexnet"):
        assert name in out


def test_other_help_texts_show_defaults(lrn):
    out = _flat(lrn("stats", "--help").stdout)
    assert "[default: across]" in out and "[default: unit]" in out and "[default: 8" in out
    out = _flat(lrn("compare", "--help").stdout)
    assert "[default: 1e-05" in out and "[default: 1e-06" in out
    out = _flat(lrn("conventions", "--help").stdout)
    assert "translate" in out
    out = _flat(lrn("conventions", "translate", "--help").stdout)
    assert "[default: across]" in out and "--from" in out and "--to" in out


# --------------------------------------------------------------------------- python -m


def test_python_m_lrn_cli(run_lrn, tmp_path):
    p = run_lrn("--help")
    assert p.returncode == 0
    assert p.stdout.decode().startswith("Usage: lrn ")
    x = np.arange(24, dtype=np.float32).reshape(1, 6, 2, 2)
    np.save(tmp_path / "x.npy", x)
    p = run_lrn("apply", "x.npy", "-o", "y.npy", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout)
    assert doc["files"][0]["output"] == "y.npy"
    import lrn_cli

    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), lrn_cli.lrn(x))
    assert b"assumed layout NCHW" in p.stderr


def test_data_on_stdout_everything_else_on_stderr(run_lrn, tmp_path):
    x = np.random.default_rng(0).random((1, 5, 3, 3), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    p = run_lrn("apply", "x.npy", "missing.npy", "-o", "out", "--csv", cwd=tmp_path)
    assert p.returncode == 1
    rows = list(csv.reader(io.StringIO(p.stdout.decode())))
    assert rows[0][:5] == ["schema", "file", "array", "layout", "scope"]
    assert all(len(row) == len(rows[0]) for row in rows)
    err = p.stderr.decode()
    assert "note:" in err and "error: missing.npy" in err and "1 processed" in err
    p = run_lrn("apply", "x.npy", "-o", "-", cwd=tmp_path)
    assert p.returncode == 0
    np.load(io.BytesIO(p.stdout))  # nothing but the .npy bytes
    assert b"statistic" in p.stderr


# --------------------------------------------------------------------------- exit codes


def test_exit_codes(lrn, npy, acts):
    good = npy("good.npy", acts)
    assert lrn("apply", good).exit_code == 0
    assert lrn("apply", good, "missing.npy").exit_code == 1
    assert lrn("apply", good, "--bogus").exit_code == 2
    r = lrn("bogus")
    assert r.exit_code == 2 and "No such command 'bogus'" in r.stderr
    r = lrn()
    assert r.exit_code == 2 and "Usage: lrn" in r.output


# --------------------------------------------------------------------------- broken pipe


def _read_one_line_and_close(args, cwd, nbytes: int | None = None):
    proc = subprocess.Popen([sys.executable, "-m", "lrn_cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    first = proc.stdout.read(nbytes) if nbytes else proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=120)
    return first, code, err


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory):
    """An array with many channels: its CSV and tables are far bigger than a pipe buffer."""
    d = tmp_path_factory.mktemp("big")
    x = np.random.default_rng(0).random((1, 3000, 2, 2), dtype=np.float32)
    np.save(d / "big.npy", x)
    # ~700 table rows (> 64 KiB): printing the first table blocks until the reader has gone
    wide = x[:, :700]
    np.save(d / "wide.npy", wide)
    np.save(d / "wide2.npy", wide)
    # 1.5 MB of .npy: writing it to a pipe blocks until the reader has gone
    np.save(d / "huge.npy", np.ones((1, 96, 64, 64), np.float32))
    return d


def test_closed_pipe_after_one_csv_line_is_quiet(big_dir):
    first, code, err = _read_one_line_and_close(["stats", "big.npy", "--csv"], big_dir)
    assert first.startswith(b"schema,file,array,scope,mean,")
    assert code == 0, err
    assert "Traceback" not in err and "error" not in err.lower()


def test_closed_pipe_apply_json(big_dir):
    first, code, err = _read_one_line_and_close(["apply", "big.npy", "--json"], big_dir)
    assert first.strip() == b"{"
    assert code == 0, err
    assert "Traceback" not in err


def test_closed_pipe_apply_binary_stdout(big_dir):
    first, code, err = _read_one_line_and_close(["apply", "huge.npy", "-o", "-", "-q"],
                                                big_dir, nbytes=6)
    assert first == b"\x93NUMPY"
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["stats", "apply"])
def test_closed_pipe_during_tables_is_quiet(big_dir, command):
    args = [command, "wide.npy", "wide2.npy", "--show-channels", "700", "-q"]
    first, code, err = _read_one_line_and_close(args, big_dir)
    assert first.startswith(b"wide.npy (NCHW")
    assert "Traceback" not in err
    assert code == 0, err


# --------------------------------------------------------------------------- colour

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _colour_codes(text: str) -> set[str]:
    """SGR parameters that select a colour (not bold/dim/italic/reset)."""
    found = set()
    for params in _SGR.findall(text):
        parts = params.split(";")
        for i, p in enumerate(parts):
            if p in ("38", "48") or (p.isdigit() and (30 <= int(p) <= 37 or 40 <= int(p) <= 47
                                                      or 90 <= int(p) <= 97)):
                if i == 0 or parts[i - 1] not in ("38", "48", "5", "2"):
                    found.add(params)
    return found


def test_no_ansi_escapes_when_not_a_terminal(run_lrn, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((1, 4, 3, 3), np.float32))
    env = clean_env(TERM="xterm-256color")  # a colour-capable TERM, but pipes, not a terminal
    p = run_lrn("apply", "x.npy", "missing.npy", env=env, cwd=tmp_path)
    assert p.returncode == 1
    assert b"statistic" in p.stdout and b"error:" in p.stderr and b"note:" in p.stderr
    assert b"\x1b[" not in p.stdout and b"\x1b[" not in p.stderr
    p = run_lrn("conventions", "translate", "--from", "pytorch", "--to", "caffe", "-n", "4",
                env=env, cwd=tmp_path)
    assert p.returncode == 1 and b"error:" in p.stderr and b"\x1b[" not in p.stderr
    p = run_lrn("conventions", env=env, cwd=tmp_path)
    assert b"default" in p.stdout and b"\x1b[" not in p.stdout


def _run_in_terminal(args, env, cwd) -> str:
    """Run ``python -m lrn_cli ARGS`` with stdout and stderr on a pseudo-terminal."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lrn_cli", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        proc.wait(timeout=60)
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_colour_on_a_terminal_and_no_color_honoured(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((1, 3, 2, 2), np.float32))
    args = ["apply", "x.npy", "missing.npy"]
    coloured = _run_in_terminal(args, clean_env(TERM="xterm-256color"), tmp_path)
    assert "error:" in coloured and "statistic" in coloured
    assert _colour_codes(coloured), "a terminal should get colour"
    plain = _run_in_terminal(args, clean_env(TERM="xterm-256color", NO_COLOR="1"), tmp_path)
    assert "error:" in plain and "statistic" in plain
    assert _colour_codes(plain) == set()


# --------------------------------------------------------------------------- errors


def test_traceback_only_with_the_option_in_a_real_process(run_lrn, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((1, 3, 2, 2), np.float32))
    (tmp_path / "bad.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:-4])
    p = run_lrn("apply", "bad.npy", cwd=tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 1 and "Traceback" not in err
    assert error_lines(err) == [
        "error: bad.npy: truncated: header says 48 bytes of data, file has 44"]
    p = run_lrn("apply", "bad.npy", "--traceback", cwd=tmp_path)
    assert p.returncode == 1 and "Traceback (most recent call last)" in p.stderr.decode()
