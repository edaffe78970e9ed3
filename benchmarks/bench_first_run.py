#!/usr/bin/env python
"""Benchmark a fresh install's first run: Numba compiling the kernels, against the warm run.

The package is installed afresh (``pip install --no-deps`` of a copy of this checkout) into a
new virtual environment in a temporary folder, which sees this environment's dependencies
(NumPy, Numba, ...) through a ``.pth`` file, so nothing is downloaded.  Each command then runs
in new processes with an empty ``NUMBA_CACHE_DIR`` of its own: the first run compiles, the
following ``--repeat`` runs load Numba's cache.  The commands are the README's quick start
(six files, images included, a worker pool of all cores) and one activation dump:

    lrn apply samples/arrays/conv1_relu_nchw.npy samples/arrays/conv2_relu_nchw.npy
        samples/images --range byte -o OUT
    lrn apply samples/arrays/conv1_relu_nchw.npy -o OUT.npy

The target (issue 11): the first run at most 8x the median warm run, for each command.  It is
reported as PASS/MISS, never asserted.  A second table times each kernel's compilation in
the first run of the second command (in-process, ``-j 1``, fresh cache, the warm-up's
statistics helper process disabled so that every kernel compiles where it can be timed):
the inclusive seconds of every top-level Numba function and how many helpers it compiled.

    python benchmarks/bench_first_run.py                 # both commands, 3 warm runs each
    python benchmarks/bench_first_run.py --repeat 5
    python benchmarks/bench_first_run.py --repo /tmp/old-checkout   # another checkout

Progress goes to stderr, the Markdown tables to stdout.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, log, usable_cpus

TARGET_RATIO = 8.0
HERE = Path(__file__).resolve().parent
COMMANDS = {
    "quick start": ["apply", "samples/arrays/conv1_relu_nchw.npy",
                    "samples/arrays/conv2_relu_nchw.npy", "samples/images", "--range", "byte",
                    "-o", "{out}"],
    "conv1 .npy": ["apply", "samples/arrays/conv1_relu_nchw.npy", "-o", "{out}.npy"],
}
NOTE = "compiling kernels for this CPU (first run)"

# Runs lrn's CLI in-process and records every Numba compilation (Dispatcher.compile: a
# cache load or a compile), nested calls included, as JSON.
PROFILER = r"""
import json, sys, threading, time
out, argv = sys.argv[1], sys.argv[2:]
from numba.core import dispatcher
records, local = [], threading.local()  # kernels may first run (compile) in pool threads
original, compile_ir = dispatcher.Dispatcher.compile, dispatcher._FunctionCompiler.compile
def compiling(self, *args, **kwargs):  # only where Numba really compiles (a cache miss)
    stack = getattr(local, "stack", None)
    if stack:
        stack[-1][1] = True
    return compile_ir(self, *args, **kwargs)
def compile(self, sig):  # a cache load or a compile, and the save to the cache
    stack = local.__dict__.setdefault("stack", [])
    start = time.perf_counter()
    stack.append([0.0, False])
    try:
        return original(self, sig)
    finally:
        took = time.perf_counter() - start
        inner, compiled = stack.pop()
        if stack:
            stack[-1][0] += took
        if compiled:
            f = self.py_func
            records.append({"name": f.__module__ + "." + f.__qualname__, "depth": len(stack),
                            "seconds": took, "own": took - inner, "sig": str(sig)})
dispatcher.Dispatcher.compile = compile
dispatcher._FunctionCompiler.compile = compiling
try:  # every kernel compiled here, none in the warm-up's statistics helper process
    import lrn_cli.warmup
    lrn_cli.warmup._start_helper = lambda plan: None
except ImportError:  # a checkout from before the warm-up
    pass
start = time.perf_counter()
from lrn_cli.cli import main
try:
    main(argv)
except SystemExit:
    pass
json.dump({"records": records, "total": time.perf_counter() - start}, open(out, "w"))
"""


def install(repo: Path, tmp: Path) -> Path:
    """A new venv in ``tmp`` with a fresh copy of ``repo`` installed; returns its python."""
    src = tmp / "src"
    shutil.copytree(repo / "lrn_cli", src / "lrn_cli",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, src / name)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], check=True, capture_output=True, text=True)
    # this environment's packages (NumPy, Numba, pip, ...) after the venv's own: a plain
    # path, so its .pth files (an editable install of lrn) are not run
    Path(site.stdout.strip(), "_host.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", str(src)], check=True,
                   cwd=tmp)
    where = subprocess.run([str(python), "-c", "import lrn_cli; print(lrn_cli.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp).stdout.strip()
    if not where.startswith(str(venv)):
        raise SystemExit(f"the fresh install is not the one imported: {where}")
    return python


def run(python: Path, args: list[str], cache: Path, repo: Path) -> tuple[float, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("PYTHONPATH", None)
    lrn = python.with_name("lrn")
    start = time.perf_counter()
    proc = subprocess.run([str(lrn), *args], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lrn {' '.join(args)} failed:\n{proc.stderr}")
    return took, proc.stderr


def time_command(python: Path, argv: list[str], tmp: Path, repo: Path, repeat: int) -> dict:
    cache = tmp / f"cache-{len(list(tmp.glob('cache-*')))}"
    cache.mkdir()
    runs, notes = [], []
    for i in range(1 + repeat):
        args = [a.format(out=str(tmp / f"out-{cache.name}-{i}")) for a in argv]
        took, err = run(python, args, cache, repo)
        runs.append(took)
        notes.append(NOTE in err)
        log(f"  run {i + 1}: {took:.2f} s" + ("  (first-run note)" if notes[-1] else ""))
    warm = statistics.median(runs[1:])
    return {"first": runs[0], "warm": warm, "ratio": runs[0] / warm, "runs": runs,
            "note_first": notes[0], "note_later": any(notes[1:])}


def profile(python: Path, argv: list[str], tmp: Path, repo: Path) -> dict:
    script = tmp / "profile_child.py"
    script.write_text(PROFILER)
    cache = tmp / "cache-profile"
    cache.mkdir()
    out = tmp / "profile.json"
    args = [a.format(out=str(tmp / "out-profile")) for a in argv] + ["-j", "1", "-q"]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), str(script), str(out), *args], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def kernel_table(prof: dict) -> list[str]:
    """Top-level kernels: inclusive compile seconds and helpers compiled with them."""
    rows: dict[str, list] = {}
    current = None
    for rec in reversed(prof["records"]):  # a caller finishes after its helpers
        if rec["depth"] == 0:
            current = rows.setdefault(rec["name"], [0.0, 0, 0])
            current[0] += rec["seconds"]
            current[1] += 1
        elif current is not None:
            current[2] += 1
    lines = ["| kernel (top level) | variants | helpers compiled | compile s |",
             "|---|---|---|---|"]
    for name, (sec, n, helpers) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| `{name.removeprefix('lrn_cli.')}` | {n} | {helpers} | {sec:.2f} |")
    total = sum(r["own"] for r in prof["records"])
    lines.append(f"| **all** ({len(prof['records'])} compilations) | | | **{total:.2f}** |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per command (3)")
    parser.add_argument("--repo", type=Path, default=HERE.parent,
                        help="the checkout to install (default: this one)")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the per-kernel compile times")
    parser.add_argument("--json", type=Path, default=None, help="also save the figures")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    results: dict = {"machine": {"cpu": cpu_model(), "cpus": usable_cpus(),
                                 "load": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="lrn-first-run-") as name:
        tmp = Path(name)
        log(f"installing {repo} into a new venv in {tmp} ...")
        python = install(repo, tmp)
        for label, command in COMMANDS.items():
            log(f"{label}: lrn {' '.join(command)}")
            results[label] = time_command(python, command, tmp, repo, args.repeat)
        if not args.no_profile:
            log("per-kernel compile times (conv1 .npy, -j 1, in-process) ...")
            results["profile"] = profile(python, COMMANDS["conv1 .npy"], tmp, repo)
    results["machine"]["load_after"] = os.getloadavg()
    print(f"Machine: {results['machine']['cpu']}, {results['machine']['cpus']} CPUs, load "
          f"average {results['machine']['load'][0]:.2f} before and "
          f"{results['machine']['load_after'][0]:.2f} after.\n")
    print("| command | first run s | warm run s (median) | ratio | target <= 8x | "
          "note on first run | note later |")
    print("|---|---|---|---|---|---|---|")
    for label in COMMANDS:
        r = results[label]
        verdict = "PASS" if r["ratio"] <= TARGET_RATIO else "MISS"
        print(f"| {label} | {r['first']:.2f} | {r['warm']:.2f} | {r['ratio']:.1f}x | {verdict} | "
              f"{'yes' if r['note_first'] else 'no'} | {'yes' if r['note_later'] else 'no'} |")
    if "profile" in results:
        print(f"\nCompilations in the first run of `lrn {' '.join(COMMANDS['conv1 .npy'])}` "
              f"(`-j 1`, {results['profile']['total']:.2f} s in-process):\n")
        print("\n".join(kernel_table(results["profile"])))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
