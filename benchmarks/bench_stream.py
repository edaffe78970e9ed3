"""Streaming a large ``.npy`` through ``lrn apply``: wall time and true peak RSS per method.

Creates a ~2 GB float32 ``.npy`` (``--gb``; written in chunks, deterministic content), then runs,
each in its own fresh process:

a. ``lrn apply big.npy -o out.npy --stream --quiet``     (slab by slab, bounded memory)
a'. ``lrn apply big.npy --stream --quiet``              (the same without writing: no disk I/O)
b. ``lrn apply big.npy -o out.npy --no-stream --quiet``  (loads the whole array)
c. a plain ``np.load(mmap_mode="r")`` + ``open_memmap`` loop calling ``lrn(out=...)`` per slab,
   to show that memory maps do not keep the resident set bounded (mapped pages count).

The peak RSS of each child is its own ``ru_maxrss``, read with ``os.wait4`` on that very
process (not ``RUSAGE_CHILDREN`` of the benchmark, which would be the maximum over every child
so far).  A fourth row, ``lrn apply`` on a 1 KB file, shows the start-up cost and the resident
set of an idle ``lrn`` (Python, NumPy, Numba, the kernels) that every row includes.

The outputs of (a), (b) and (c) are hashed and must be identical.  Everything goes into a fresh
temporary folder, deleted at the end unless ``--keep``.  Tables go to stdout, progress to stderr.

    PYTHONPATH=. python benchmarks/bench_stream.py            # 2 GB
    PYTHONPATH=. python benchmarks/bench_stream.py --gb 0.5 --dir /scratch
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _machine import cpu_model, log
from numpy.lib import format as npy_format

SAMPLE_SHAPE = (96, 55, 55)  # AlexNet conv1 activations, one sample: 1.16 MB of float32
CHUNK_SAMPLES = 64
SEED = 20240611
GB = 1e9
MB = 1e6

_MMAP_LOOP = textwrap.dedent("""
    import sys
    import numpy as np
    from numpy.lib.format import open_memmap
    from lrn_cli import lrn

    src, dst, slab = sys.argv[1], sys.argv[2], int(sys.argv[3])
    x = np.load(src, mmap_mode="r")
    y = open_memmap(dst, mode="w+", dtype=x.dtype, shape=x.shape)
    rows = max(1, slab // max(1, x[:1].nbytes))
    for start in range(0, x.shape[0], rows):
        lrn(x[start:start + rows], 5, 1e-4, 0.75, 2.0, out=y[start:start + rows])
    y.flush()
    del y
""")


@dataclass
class Row:
    method: str
    command: str
    wall: float | None = None
    cpu: float | None = None  # user + system seconds of the child
    rss: float | None = None  # bytes
    nbytes: int = 0  # input bytes processed
    digest: str | None = None
    note: str = ""


# --------------------------------------------------------------------------- setup


def mem_available() -> int | None:
    """``MemAvailable`` in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (OSError, AttributeError):
        return "n/a"


def write_big_npy(path: Path, samples: int) -> int:
    """Write a (samples, 96, 55, 55) float32 .npy chunk by chunk; return its size in bytes.

    Content: ReLU of standard normals times 20, from a generator seeded with (SEED, chunk), so
    the file is the same on every run and never exists as one array in memory.
    """
    shape = (samples, *SAMPLE_SHAPE)
    with open(path, "wb") as fh:
        npy_format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for chunk, start in enumerate(range(0, samples, CHUNK_SAMPLES)):
            n = min(CHUNK_SAMPLES, samples - start)
            rng = np.random.default_rng([SEED, chunk])
            block = rng.standard_normal((n, *SAMPLE_SHAPE), dtype=np.float32)
            np.maximum(block, 0, out=block)
            block *= np.float32(20)
            fh.write(block.tobytes())
    return os.path.getsize(path)


def digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(16 * 2**20):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- measuring


def run_measured(cmd: list[str], env: dict[str, str],
                 log_path: Path) -> tuple[float, float, int, int]:
    """Run ``cmd``; return (wall s, CPU s, peak RSS of that process in bytes, exit code).

    ``os.wait4`` returns the resource usage of exactly the child it reaps, so ``ru_maxrss``
    is that child's own high-water mark (KiB on Linux, bytes on macOS).
    """
    with open(log_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * scale, proc.returncode


def measure(row: Row, cmd: list[str], env: dict[str, str], out: Path | None,
            work: Path) -> None:
    log(f"running {row.method} ...")
    log_path = work / "child.log"
    wall, cpu, rss, code = run_measured(cmd, env, log_path)
    if code != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        row.note = f"failed (exit {code}): " + " | ".join(tail)
        log(f"  {row.note}")
        return
    row.wall, row.cpu, row.rss = wall, cpu, rss
    if out is not None:
        row.digest = digest(out)
        out.unlink()
    log(f"  {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss / MB:.0f} MB")


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def report(rows: list[Row], big_bytes: int, shape: tuple[int, ...], args) -> str:
    import numba

    import lrn_cli

    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        + (f"{mem_available() / GB:.1f} GB available RAM; " if mem_available() else "")
        + f"Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Numba {numba.__version__}, lrn_cli {lrn_cli.__version__}",
        "",
        f"Load average before the run: {args.load_before}; after: {load_average()} "
        "(wall times on a busy machine are upper bounds; peak RSS does not depend on load)",
        "",
        f"Input: float32 {shape} = {big_bytes / GB:.2f} GB (across, n=5, alpha=1e-4, "
        "beta=0.75, k=2; warm page cache)",
        "",
        "| method | wall s | CPU s | peak RSS MB | GB/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r.nbytes / r.wall / GB if r.wall and r.nbytes else None
        method = r.method + (f" ({r.note})" if r.note else "")
        lines.append(f"| {method} | {fmt(r.wall, '.2f')} | {fmt(r.cpu, '.2f')} | "
                     f"{fmt(r.rss and r.rss / MB, '.0f')} | {fmt(rate, '.2f')} |")
    digests = {r.method: r.digest for r in rows if r.digest}
    if len(digests) >= 2:
        same = len(set(digests.values())) == 1
        lines += ["", "Outputs identical (blake2b): " + ("yes" if same else
                                                          f"NO: {digests}")]
    lines += ["", "Commands:", ""]
    lines += [f"* {r.method}: `{r.command}`" for r in rows]
    lines += ["", "Reproduce: `"
              + shlex.join(["PYTHONPATH=.", "python", "benchmarks/bench_stream.py", *args.argv])
              + "`"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=2.0,
                        help="input size in GB (10^9 bytes; default 2)")
    parser.add_argument("--dir", default=None,
                        help="where to create the temporary folder (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--slab-mb", type=float, default=64.0,
                        help="slab of the memory-map loop (c), MiB (default 64, like --stream)")
    parser.add_argument("--skip-stats-only", action="store_true", help="skip (a')")
    parser.add_argument("--skip-no-stream", action="store_true", help="skip (b)")
    parser.add_argument("--skip-mmap", action="store_true", help="skip (c)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.gb <= 0:
        parser.error("--gb must be positive")

    args.load_before = load_average()
    per_sample = int(np.prod(SAMPLE_SHAPE)) * 4
    samples = max(1, round(args.gb * GB / per_sample))
    shape = (samples, *SAMPLE_SHAPE)
    size = samples * per_sample
    base_dir = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    free = shutil.disk_usage(base_dir).free
    need = int(2.05 * size) + 64 * 2**20  # input + one output at a time
    if free < need:
        log(f"error: {base_dir} has {free / GB:.1f} GB free; this benchmark needs about "
            f"{need / GB:.1f} GB (input + output). Use --dir elsewhere or a smaller --gb.")
        return 1

    work = Path(tempfile.mkdtemp(prefix="lrn-bench-stream-", dir=base_dir))
    env = dict(os.environ, LRN_JOBS="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    lrn = [sys.executable, "-m", "lrn_cli"]
    rows: list[Row] = []
    try:
        big = work / "big.npy"
        out = work / "out.npy"
        log(f"writing {big} ({size / GB:.2f} GB, shape {shape}) ...")
        t0 = time.perf_counter()
        big_bytes = write_big_npy(big, samples)
        log(f"  {time.perf_counter() - t0:.1f} s")

        tiny = work / "tiny.npy"
        np.save(tiny, np.ones((1, 4, 8, 8), np.float32))
        log("warming the kernel cache ...")
        subprocess.run([*lrn, "apply", str(tiny), "-o", str(work / "warm.npy"), "--quiet"],
                       env=env, stdout=subprocess.DEVNULL, check=True)
        (work / "warm.npy").unlink()

        show = "lrn apply {src} -o out.npy {flag} --quiet"
        row = Row("start-up: `lrn apply` on a 1 KB file", show.format(src="tiny.npy",
                                                                      flag="--no-stream"))
        measure(row, [*lrn, "apply", str(tiny), "-o", str(out), "--no-stream", "--quiet"],
                env, out, work)
        row.digest = None
        rows.append(row)

        row = Row("(a) `--stream` (slab by slab)", show.format(src="big.npy", flag="--stream"),
                  nbytes=big_bytes)
        measure(row, [*lrn, "apply", str(big), "-o", str(out), "--stream", "--quiet"],
                env, out, work)
        rows.append(row)

        row = Row("(a') `--stream` without `-o` (statistics only, nothing written)",
                  "lrn apply big.npy --stream --quiet", nbytes=big_bytes)
        if args.skip_stats_only:
            row.note = "skipped"
        else:
            measure(row, [*lrn, "apply", str(big), "--stream", "--quiet"], env, None, work)
        rows.append(row)

        row = Row("(b) `--no-stream` (load whole)", show.format(src="big.npy",
                                                                flag="--no-stream"),
                  nbytes=big_bytes)
        avail = mem_available()
        if args.skip_no_stream:
            row.note = "skipped"
        elif avail is not None and avail < 3.5 * size:
            row.note = (f"skipped: needs ~{3.5 * size / GB:.1f} GB RAM, "
                        f"{avail / GB:.1f} GB available")
        else:
            measure(row, [*lrn, "apply", str(big), "-o", str(out), "--no-stream", "--quiet"],
                    env, out, work)
        rows.append(row)

        slab = int(args.slab_mb * 2**20)
        row = Row("(c) `np.load(mmap_mode='r')` + `open_memmap` loop",
                  f"python -c <memmap loop> big.npy out.npy {slab}  (no statistics)",
                  nbytes=big_bytes)
        if args.skip_mmap:
            row.note = "skipped"
        else:
            measure(row, [sys.executable, "-c", _MMAP_LOOP, str(big), str(out), str(slab)],
                    env, out, work)
        rows.append(row)

        print(report(rows, big_bytes, shape, args))
        failed = any(r.note.startswith("failed") for r in rows)
        digests = {r.digest for r in rows if r.digest}
        return 1 if failed or len(digests) > 1 else 0
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
