"""Every command the README shows runs and exits as the README says."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("readme_tool", ROOT / "docs" / "readme_tool.py")
readme_tool = importlib.util.module_from_spec(_spec)
sys.modules["readme_tool"] = readme_tool  # dataclasses look their module up
_spec.loader.exec_module(readme_tool)


@pytest.fixture(scope="module")
def scratch():
    work = readme_tool.scratch()
    yield work
    shutil.rmtree(work, ignore_errors=True)


def test_readme_has_commands():
    assert len(readme_tool.console_commands()) >= 20


def test_every_readme_command_succeeds(scratch):
    """In order, in one folder (later commands read what earlier ones wrote)."""
    for cmd in readme_tool.console_commands():
        res = readme_tool.run(cmd, scratch)
        assert res.returncode == cmd.expect, (
            f"{cmd.text}\nexit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
        assert "Traceback" not in res.stderr, cmd.text


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    first, second = readme_tool.quick_start()
    assert "pip install ." in first and "lrn apply samples/" in first
    assert 'pip install ".[test]"' in second and "pytest" in second
    assert "ruff check . && mypy && " in second  # the type check is part of the test command
    assert second in (ROOT / ".ci" / "run").read_text()


def test_quick_start_main_job_runs(scratch):
    """The first command's job (after its install step: the package is installed here)."""
    first, _ = readme_tool.quick_start()
    job = first.split("&&")[-1].strip()
    assert job.startswith("lrn apply")
    assert " -o lrn-out" in job and "--range byte" in job
    job = job.replace(" -o lrn-out", " -o quick-out")
    res = readme_tool.run(readme_tool.Command(job, 0), scratch)
    assert res.returncode == 0, res.stderr
    assert "files" in res.stdout
    assert len(list((scratch / "quick-out").rglob("*.*"))) == 6


def _python_blocks() -> list[str]:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_readme_python_blocks_run():
    """Every ```python block of the README runs as written, from the repository root (its
    paths are the samples'), in a fresh interpreter, and its asserts hold."""
    import subprocess

    blocks = _python_blocks()
    assert blocks, "the README has no Python block"
    for block in blocks:
        res = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, f"{block}\nstderr:\n{res.stderr}"
