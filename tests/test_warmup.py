"""First run: the note, compiling once before the worker pool, and ``lrn_cli.warm_up``.

Every test that needs a cold cache runs in a subprocess with an empty ``NUMBA_CACHE_DIR`` of
its own (this process's kernels stay loaded whatever it does), so these tests measure
nothing about speed (that is ``benchmarks/bench_first_run.py``): they check what is printed,
what is compiled where, and that a warm start compiles nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ARRAYS, IMAGES, clean_env

from lrn_cli.errors import ParameterError

NOTE = "compiling kernels for this CPU (first run)"
CONV2 = ARRAYS / "conv2_relu_nchw.npy"


def lrn_cold(cache: Path, *args: str, jobs: str = "1", debug_cache: bool = False,
             ) -> subprocess.CompletedProcess:
    """``python -m lrn_cli ARGS`` with ``cache`` as Numba's cache (text in, text out)."""
    env = clean_env(NUMBA_CACHE_DIR=str(cache), LRN_JOBS=jobs,
                    NUMBA_DEBUG_CACHE="1" if debug_cache else None)
    return subprocess.run([sys.executable, "-m", "lrn_cli", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def python_cold(cache: Path, code: str) -> dict:
    """Run ``code`` in a fresh interpreter with ``cache``; it prints one JSON document."""
    env = clean_env(NUMBA_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def stamps(cache: Path) -> list[Path]:
    return sorted(cache.rglob("lrn-warm-*.stamp"))


def test_first_run_says_so_once_then_never_and_never_in_json(tmp_path):
    cache = tmp_path / "numba"
    first = lrn_cold(cache, "apply", str(CONV2), "-o", str(tmp_path / "a.npy"), "--json")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(NOTE) == 1
    note = next(line for line in first.stderr.splitlines() if NOTE in line)
    assert note.startswith("note: ") and note.endswith(" s")
    assert NOTE not in first.stdout
    json.loads(first.stdout)  # the data is untouched
    assert stamps(cache)

    # warm: no note, and nothing is compiled (Numba saves nothing to its cache)
    again = lrn_cold(cache, "apply", str(CONV2), "-o", str(tmp_path / "b.npy"),
                     debug_cache=True)
    assert again.returncode == 0, again.stderr
    assert NOTE not in again.stderr
    assert "data saved" not in again.stdout and "data loaded" in again.stdout

    # --quiet: no note, even when the stamp says cold
    for stamp in stamps(cache):
        stamp.unlink()
    quiet = lrn_cold(cache, "apply", str(CONV2), "-o", str(tmp_path / "c.npy"), "-q")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert stamps(cache)  # warmed up all the same
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "c.npy"))


def test_a_worker_pool_run_compiles_each_kernel_once(tmp_path):
    """Two arrays and two pictures with two workers and a cold cache: every kernel is
    compiled (saved to the cache) once, by the parent before the pool starts, not by each
    worker."""
    cache = tmp_path / "numba"
    inputs = [str(CONV2), str(ARRAYS / "conv1_relu_nchw.npy"), str(IMAGES / "camera_gray.png"),
              str(IMAGES / "astronaut_rgb.png")]
    r = lrn_cold(cache, "apply", *inputs, "-o", str(tmp_path / "out"), jobs="2",
                 debug_cache=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(NOTE) == 1
    saved = [line.split("data saved to ", 1)[1] for line in r.stdout.splitlines()
             if "data saved to " in line]
    assert any("moments" in s for s in saved) and any("across_rows" in s for s in saved)
    assert any("unit_codes" in s for s in saved)
    repeated = {s for s in saved if saved.count(s) > 1}
    assert not repeated, f"compiled more than once: {sorted(repeated)}"
    assert len(list((tmp_path / "out").rglob("*.*"))) == 4


WARM_UP = """
import json, numpy as np, lrn_cli
from lrn_cli import warmup
calls = []
report = lrn_cli.warm_up(layouts=("NCHW", "NHWC"), progress=lambda *a: calls.append(a))
x = np.random.default_rng(1).standard_normal((4, 96, 27, 27)).astype(np.float32)
before = warmup.compilations()
y, d = lrn_cli.lrn(x, return_divisor=True)
lrn_cli.lrn(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), channel_axis=-1,
            return_divisor=True)
from lrn_cli.stats import array_stats, divisor_stats
array_stats(x, 1), array_stats(y, 1), divisor_stats(d, 0.75)
print(json.dumps({"report": report.as_dict(), "calls": calls,
                  "after": warmup.compilations() - before}))
"""


def test_warm_up_compiles_what_real_calls_use_and_a_warm_start_compiles_nothing(tmp_path):
    cache = tmp_path / "numba"
    cold = python_cold(cache, WARM_UP)
    assert cold["report"]["compiled"] > 0
    assert cold["report"]["variants"] == ["across float32 NCHW", "across float32 NHWC"]
    assert cold["calls"] == [[0, 2, "across float32 NCHW"], [1, 2, "across float32 NHWC"],
                             [2, 2, ""]]
    assert cold["after"] == 0  # the real, larger arrays took the kernels warm_up compiled
    warm = python_cold(cache, WARM_UP)
    assert warm["report"]["compiled"] == 0
    assert warm["after"] == 0


def test_importing_lrn_cli_and_reading_warm_up_loads_no_numba():
    code = ("import sys, lrn_cli; f = lrn_cli.warm_up; "
            "print('numba' in sys.modules, 'warm_up' in lrn_cli.__all__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=clean_env()).stdout
    assert out.split() == ["False", "True"]


@pytest.mark.parametrize("kwargs, message", [
    ({"modes": ("sideways",)}, "unknown mode 'sideways'"),
    ({"dtypes": ("float16",)}, "unknown dtype 'float16'"),
    ({"layouts": ()}, "give at least one layout"),
    ({"beta": float("nan")}, "beta must be finite"),
])
def test_warm_up_refuses_unknown_variants(kwargs, message):
    from lrn_cli import warm_up

    with pytest.raises(ParameterError, match=message):
        warm_up(**kwargs)


def test_the_plan_of_a_run_follows_its_inputs(tmp_path):
    from lrn_cli.pipeline import ReadOptions, Settings
    from lrn_cli.warmup import Variant, plan_for_inputs

    np.save(tmp_path / "nhwc.npy", np.zeros((1, 4, 4, 3), np.float32))
    np.save(tmp_path / "wide.npy", np.zeros((1, 3, 4, 4), np.float64))
    (tmp_path / "broken.npy").write_bytes(b"not an array")
    sources = [str(tmp_path / n) for n in ("nhwc.npy", "wide.npy", "broken.npy")]
    plan = plan_for_inputs(sources + [str(IMAGES / "camera_gray.png"), "-"],
                           Settings(beta=0.5), ReadOptions(layout="NHWC"))
    assert plan.variants == (Variant("across", "float32", "NHWC"),
                             Variant("across", "float32", "image"),
                             Variant("across", "float64", "NHWC"))
    assert plan.beta == 0.5
    plan = plan_for_inputs(sources, Settings(mode="within"), ReadOptions(dtype="float32"))
    assert plan.variants == (Variant("within", "float32", "NCHW"),)
    assert plan_for_inputs(["-"], Settings(), ReadOptions()) is None


def test_warm_up_command_json_quiet_and_progress_bar(tmp_path):
    cache = tmp_path / "numba"
    first = lrn_cold(cache, "warm-up", "--layout", "NHWC", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert list(doc)[0] == "schema"
    from lrn_cli.schema import SCHEMA_VERSION

    assert doc["schema"] == SCHEMA_VERSION
    assert doc["variants"] == ["across float32 NHWC"] and doc["compiled"] > 0
    assert first.stderr.count(NOTE) == 1 and NOTE not in first.stdout

    again = lrn_cold(cache, "warm-up", "--layout", "nhwc", "--json")
    assert json.loads(again.stdout)["compiled"] == 0
    assert NOTE not in again.stderr

    quiet = lrn_cold(cache, "warm-up", "--layout", "NHWC", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    plain = lrn_cold(cache, "warm-up", "--layout", "NHWC")
    assert plain.stdout == ""
    assert "1 variant ready in" in plain.stderr and "0 kernels compiled" in plain.stderr

    env = clean_env(NUMBA_CACHE_DIR=str(cache), TTY_INTERACTIVE="1", TTY_COMPATIBLE="1")
    bar = subprocess.run([sys.executable, "-m", "lrn_cli", "warm-up", "--layout", "NHWC"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert bar.returncode == 0
    assert "warm-up" in bar.stderr and "1/1" in bar.stderr  # the bar, drawn on stderr


def test_warm_up_command_refuses_bad_parameters(lrn):
    r = lrn("warm-up", "--convention", "nonesuch")
    assert r.exit_code == 2
    assert "nonesuch" in r.stderr
    r = lrn("warm-up", "--dtype", "float16")
    assert r.exit_code == 2


HELPER = """
import json, numpy as np
from lrn_cli import warmup
plan = warmup.make_plan(layouts=("NCHW", "image"))
report = warmup.run_plan(plan, helper=True)
import io, tempfile
from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions, run_job
before = warmup.compilations()
with tempfile.TemporaryDirectory() as tmp:
    for i, path in enumerate(["samples/images/astronaut_rgb.png", "samples/images/camera_gray.png",
                              "samples/images/chelsea_rgba.png",
                              "samples/images/coffee_gray16.png"]):
        r = run_job(path, tmp + f"/{i}.png", Settings(), ReadOptions(), WriteOptions())
        assert r.status == "ok", r.error
print("\\nRESULT " + json.dumps({"compiled": report.compiled,
                                 "after": warmup.compilations() - before}))
"""


def test_the_helper_process_compiles_moments_and_picture_writing(tmp_path):
    """Forced on (it is skipped on a busy machine): the helper's saves to the cache come
    first-hand (Numba's debug lines on the shared stdout), the parent loads them, and real
    pictures then compile nothing."""
    from conftest import ROOT

    env = clean_env(NUMBA_CACHE_DIR=str(tmp_path / "numba"), NUMBA_DEBUG_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", HELPER], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    saved = [line for line in proc.stdout.splitlines() if "data saved to " in line]
    assert any("moments" in s for s in saved) and any("unit_codes" in s for s in saved)
    assert any("across_rows" in s for s in saved)
    assert len(saved) == len(set(saved))
    result = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
    assert result["after"] == 0
