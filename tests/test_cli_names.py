"""Odd file names in every output: not UTF-8, control characters, Rich markup.

``docs/schema.md`` ("File names"): a name is shown with each byte that is not UTF-8 as
``\\xNN`` (as ``ls -b`` does) and control characters escaped, in tables, CSV, JSON and
messages alike, so every output is valid UTF-8 (no lone surrogates in JSON either); a
manifest row's ``file_hex`` holds the exact bytes of such a name.  Names are text, never
Rich markup.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import WIDE, clean_env, invoke

RAW = b"caf\xe9 \xff\x1b[31mred.npy"  # Latin-1 e-acute, a stray byte, an ANSI escape
SHOWN = "caf\\xe9 \\xff\\x1b[31mred.npy"


@pytest.fixture
def odd(tmp_path: Path) -> Path:
    """A folder holding one array under the non-UTF-8 name ``RAW``."""
    x = np.random.default_rng(5).gamma(2.0, 20.0, (1, 4, 5, 5)).astype(np.float32)
    try:
        with open(os.path.join(os.fsencode(tmp_path), RAW), "wb") as fh:
            np.save(fh, x)
    except OSError:  # pragma: no cover - a file system that only takes UTF-8 names
        pytest.skip("this file system refuses names that are not UTF-8")
    return tmp_path


def run(args: list, cwd: Path, **env: str | None) -> subprocess.CompletedProcess:
    """``python -m lrn_cli ARGS`` with bytes arguments (the raw name), output as bytes."""
    return subprocess.run([sys.executable, "-m", "lrn_cli", *args], cwd=cwd,
                          capture_output=True, env=clean_env(**env), timeout=120, check=False)


#: stdout encodings a user may have: UTF-8 (strict errors), and what the C locale gives
#: Python (surrogateescape: lone surrogates became raw bytes on stdout)
ENCODINGS = [{"PYTHONIOENCODING": "utf-8"},
             {"PYTHONIOENCODING": "utf-8:surrogateescape"},
             {"PYTHONIOENCODING": None, "LC_ALL": "C"}]


def _utf8(data: bytes) -> str:
    return data.decode("utf-8")  # strict: raises on any invalid byte


def _strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


ARGS = [
    ["apply", RAW],
    ["apply", RAW, "--csv"],
    ["apply", RAW, "--json"],
    ["apply", ".", "--dry-run", "-o", "out", "--allow-input-tree"],
    ["stats", RAW],
    ["stats", RAW, "--csv"],
    ["stats", RAW, "--json"],
    ["compare", RAW, RAW],
    ["compare", RAW, RAW, "--json"],
    ["sweep", RAW, "--param", "beta", "0.5,1"],
    ["sweep", RAW, "--param", "beta", "0.5,1", "--csv"],
]
#: every output in the C locale (where raw bytes reached stdout); the other encodings
#: (where the same names made Python raise UnicodeEncodeError) for a table and a JSON
CASES = ([(args, ENCODINGS[2]) for args in ARGS]
         + [(args, env) for args in ARGS[:3:2] for env in ENCODINGS[:2]])


def _case_id(case) -> str:
    args, env = case
    return (" ".join(x if isinstance(x, str) else "RAW" for x in args) + " "
            + str(env.get("PYTHONIOENCODING") or env.get("LC_ALL")))


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_non_utf8_name_is_escaped_and_output_is_utf8(odd, case):
    args, env = case
    p = run(args, odd, **env)
    assert p.returncode == 0, p.stderr
    out, err = _utf8(p.stdout), _utf8(p.stderr)  # both valid UTF-8
    assert "\x1b" not in out + err  # the name's escape sequence never reaches a terminal
    if "--json" in args:
        doc = json.loads(out)
        for s in _strings(doc):
            s.encode("utf-8")  # no lone surrogate: "\udcff" escapes would decode to one
        assert SHOWN in list(_strings(doc))
    else:
        assert SHOWN in out
    if "--csv" in args:
        rows = list(csv.DictReader(io.StringIO(out)))
        assert {row["file"] for row in rows} == {SHOWN}


def test_error_naming_an_odd_file_is_one_utf8_line(odd):
    (odd / "x").mkdir()
    with open(os.path.join(os.fsencode(odd), b"x", b"bad\xff\n.npy"), "wb") as fh:
        fh.write(b"not an array")
    p = run(["stats", os.path.join(b"x", b"bad\xff\n.npy")], odd)
    assert p.returncode == 1
    [line] = _utf8(p.stderr).splitlines()
    assert line.startswith("error: x/bad\\xff\\n.npy: ")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_maps_an_escaped_name_back_to_the_file(odd, suffix):
    manifest = f"m{suffix}"
    p = run(["apply", RAW, "good.npy", "-o", "out", "--manifest", manifest], odd)
    assert p.returncode == 1  # good.npy does not exist: a failed row with a plain name
    text = _utf8((odd / manifest).read_bytes())
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        plain_hex = ""
    else:
        rows = [json.loads(line) for line in text.splitlines()]
        plain_hex = None
    by_file = {row["file"]: row for row in rows}
    assert set(by_file) == {SHOWN, "good.npy"}
    assert by_file["good.npy"]["file_hex"] == plain_hex  # shown exactly: nothing to map
    row = by_file[SHOWN]
    assert row["status"] == "ok"
    assert bytes.fromhex(row["file_hex"]) == RAW
    assert (odd / os.fsdecode(bytes.fromhex(row["file_hex"]))).is_file()
    # the output's name is derived from the input's, and shown the same way
    assert row["output"] == "out/" + SHOWN


def test_written_output_keeps_the_exact_name(odd):
    (odd / "out").mkdir()
    p = run(["apply", RAW, "-o", "out", "-q"], odd)
    assert p.returncode == 0, p.stderr
    assert os.listdir(os.path.join(os.fsencode(odd), b"out")) == [RAW]


# --------------------------------------------------------------------------- Rich markup


MARKUP = "[bold]x.npy"


@pytest.fixture
def marked(in_tmp: Path) -> Path:
    x = np.random.default_rng(6).gamma(2.0, 20.0, (1, 4, 5, 5)).astype(np.float32)
    np.save(in_tmp / MARKUP, x)
    return in_tmp


@pytest.mark.parametrize("args", [
    ["compare", MARKUP, MARKUP],
    ["apply", MARKUP],
    ["stats", MARKUP],
    ["sweep", MARKUP, "--param", "beta", "0.5,1"],
    ["apply", MARKUP, MARKUP, MARKUP, MARKUP],  # four files: the one-row-per-file table
])
def test_a_name_that_looks_like_markup_is_shown_as_it_is(marked, args):
    for env in (WIDE, {"COLUMNS": "400", "FORCE_COLOR": "1"}):
        r = invoke(args, env=env)
        assert r.exit_code == 0, r.stderr
        # shown with its brackets (as markup, "[bold]" would vanish and x.npy turn bold)
        assert MARKUP in r.stdout, r.stdout
