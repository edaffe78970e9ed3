"""The wheel holds every module of the source tree (the tests import the tree, not the wheel).

``pyproject.toml`` finds the packages (``[tool.setuptools.packages.find]``), so a new
subpackage ships without a listing to forget; this test builds the wheel the ordinary way
(``pip wheel --no-build-isolation``, with the setuptools of the ``test`` extra: no download)
from a copy of the tree, and checks it against the files on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

import lrn_cli

PACKAGE = ROOT / "lrn_cli"


def _source_files() -> set[str]:
    """Every .py module and py.typed under lrn_cli/, as wheel paths (``lrn_cli/x.py``)."""
    files = {p for p in PACKAGE.rglob("*.py")} | {PACKAGE / "py.typed"}
    return {p.relative_to(ROOT).as_posix() for p in files if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    # a fresh copy: no build/ left over from an earlier build can add or hide a module
    shutil.copytree(PACKAGE, src / "lrn_cli",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps",
                        "--no-build-isolation", "-w", str(work / "dist"), "-q"],
                       cwd=src, capture_output=True, text=True, env=env, timeout=300,
                       check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    [built] = (work / "dist").glob("*.whl")
    return built


def test_wheel_holds_every_module_and_py_typed(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    shipped = {n for n in names if n.startswith("lrn_cli/")}
    expected = _source_files()
    assert len(expected) > 20 and "lrn_cli/cli/__init__.py" in expected
    assert expected - shipped == set(), "modules missing from the wheel"
    # and nothing else: no tests, samples or stale modules
    assert shipped - expected == set()
    assert all(n.startswith(("lrn_cli/", "lrn_cli-")) for n in names), sorted(names)


def test_wheel_metadata_version_and_entry_point(wheel):
    with zipfile.ZipFile(wheel) as zf:
        dist_info = {n.split("/")[0] for n in zf.namelist() if ".dist-info/" in n}
        [info] = dist_info
        metadata = zf.read(f"{info}/METADATA").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert f"\nVersion: {lrn_cli.__version__}\n" in metadata
    assert "lrn = lrn_cli.cli:main" in entry_points
