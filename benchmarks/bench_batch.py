#!/usr/bin/env python
"""Benchmark ``lrn apply`` on a folder of images against a plain Pillow read-and-write floor.

A folder of ``--count`` RGB ``--size`` x ``--size`` PNG images (200 x 512 x 512 by default;
photo-like: smooth gradients, soft shapes, sensor noise) is processed three ways, each in a
fresh subprocess with the same number of worker processes (``--jobs``, default: all cores):

floor
    Pillow only: open, load, convert to RGB, save as PNG (default compression, as ``lrn``
    writes), in a ``spawn`` ProcessPoolExecutor, files handed out in chunks.
lrn apply (CLI)
    ``python -m lrn_cli apply DIR -o OUT -j N --quiet``, end to end: interpreter start-up,
    discovery, planning, the worker pool, LRN, statistics, atomic writes and the summary
    table (sent to /dev/null).
lrn run_job (API)
    ``lrn_cli.pipeline.run_job`` per file in the floor's pool structure: LRN, statistics and
    the atomic write without the CLI's planning and bookkeeping, to separate the two.

Each variant runs ``--repeat`` times (interleaved, so that a burst of load from other processes
hits all of them); the tables show the median wall time, files/s, and the CPU utilisation
``(user + sys CPU seconds of the process tree) / (wall x usable CPUs)`` from
``resource.getrusage(RUSAGE_CHILDREN)`` around each run.  The target (``lrn apply`` at most
1.15x the floor's time, Speed II) is reported as PASS/MISS, never asserted.

photo (Speed II)
    ``lrn apply photo.jpg -o out.png --mode within`` on one 12 MP RGB JPEG (4000 x 3000), at
    the default PNG compression and at ``--png-compression 1``: wall time and the process's
    peak RSS (``os.wait4``), against the peak RSS of ``lrn --version`` (the interpreter's
    own).  Target: peak RSS above ``lrn --version``'s at most 3.5x the float32 image
    (3.5 x 144 MB).  ``--no-photo`` skips it.

    PYTHONPATH=. python benchmarks/bench_batch.py                 # 200 images, 3 runs each
    PYTHONPATH=. python benchmarks/bench_batch.py --count 50 --repeat 1   # quick look
    PYTHONPATH=. python benchmarks/bench_batch.py --dir /tmp/lrn-bench    # keep/reuse images

See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _machine import log, usable_cpus

TARGET_RATIO = 1.15  # lrn apply / floor, wall time, same worker count (Speed II; was 1.3)
PHOTO_SIZE = (4000, 3000)  # 12 MP, width x height
RSS_TARGET = 3.5  # (peak RSS of apply - peak RSS of lrn --version) / float32 image bytes
UTIL_GOAL = 0.8  # "uses all the cores": CPU seconds / (wall x usable CPUs)
ASTRONAUT = Path(__file__).resolve().parent.parent / "samples" / "images" / "astronaut_rgb.png"


# ----------------------------------------------------------------------------------------
# the images


def _synthetic(index: int, size: int):
    """A photo-like RGB image: smooth light, soft-edged shapes, texture and sensor noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(1000 + index)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    planes = []
    for _ in range(3):
        a, b = rng.uniform(-80, 80, 2)
        fx, fy = rng.uniform(0.5, 3.0, 2)
        phase = rng.uniform(0, 2 * np.pi)
        plane = (rng.uniform(70, 180) + a * x + b * y
                 + 30 * np.sin(2 * np.pi * fx * x + phase) * np.cos(2 * np.pi * fy * y))
        planes.append(plane)
    base = Image.fromarray(np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8))
    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(size // 16, size // 3, 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(120, 256)),)
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=color)
        else:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=color)
    image = Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    pixels = np.asarray(image, dtype=np.float32)
    texture = rng.normal(0, 1, (size // 8, size // 8, 3)).astype(np.float32)
    texture = np.kron(texture, np.ones((8, 8, 1), np.float32))[:size, :size]
    pixels += 6 * texture + rng.normal(0, 3.0, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _astronaut(index: int, size: int):
    """A random crop of the astronaut sample, resized, maybe mirrored, with sensor noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(2000 + index)
    with Image.open(ASTRONAUT) as im:
        source = im.convert("RGB")
    side = int(rng.integers(min(source.size) // 3, min(source.size) + 1))
    x0 = int(rng.integers(0, source.width - side + 1))
    y0 = int(rng.integers(0, source.height - side + 1))
    crop = source.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    pixels = np.asarray(crop, dtype=np.float32) + rng.normal(0, 2.0, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _make_one(args: tuple[str, int, int, str]) -> int:
    folder, index, size, content = args
    image = (_astronaut if content == "astronaut" else _synthetic)(index, size)
    path = Path(folder) / f"img_{index:04d}.png"
    tmp = path.with_suffix(".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path.stat().st_size


def make_images(folder: Path, count: int, size: int, content: str, jobs: int) -> str:
    """Write the images (in parallel), or reuse them when ``folder`` already holds them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = [folder / f"img_{i:04d}.png" for i in range(count)]
    stamp = folder / "bench_batch.json"
    want = {"count": count, "size": size, "content": content}
    try:
        if json.loads(stamp.read_text()) == want and all(p.is_file() for p in names):
            with Image.open(names[0]) as im:
                if im.size == (size, size):
                    return "reused"
    except (OSError, ValueError):
        pass
    t0 = time.perf_counter()
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        args = [(str(folder), i, size, content) for i in range(count)]
        list(pool.map(_make_one, args, chunksize=max(1, count // (jobs * 4))))
    stamp.write_text(json.dumps(want))
    return f"generated in {time.perf_counter() - t0:.1f} s"


# ----------------------------------------------------------------------------------------
# what the subprocesses run


def _floor_one(paths: tuple[str, str]) -> None:
    from PIL import Image

    src, dst = paths
    with Image.open(src) as im:
        im.load()
        rgb = im.convert("RGB")
    rgb.save(dst, format="PNG")


_API_STATE: dict = {}


def _api_init(threads: int) -> None:
    from lrn_cli.core import set_threads
    from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions

    set_threads(threads)
    _API_STATE.update(settings=Settings(), ropts=ReadOptions(), wopts=WriteOptions())


def _api_one(paths: tuple[str, str]) -> str:
    from lrn_cli.pipeline import run_job

    src, dst = paths
    s = _API_STATE
    result = run_job(src, dst, s["settings"], s["ropts"], s["wopts"])
    if result.status != "ok":
        raise RuntimeError(result.error)
    return result.status


def run_internal(kind: str, src: str, out: str, jobs: int) -> None:
    """The floor (``kind == "floor"``) or the API variant, as a fresh process runs it."""
    import multiprocessing

    files = sorted(Path(src).glob("img_*.png"))
    Path(out).mkdir(parents=True, exist_ok=True)
    pairs = [(str(f), str(Path(out) / f.name)) for f in files]
    chunk = max(1, math.ceil(len(pairs) / (jobs * 8)))
    ctx = multiprocessing.get_context("spawn")
    if kind == "floor":
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
        fn = _floor_one
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)  # as lrn_cli.batch does
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_api_init,
                                   initargs=(threads,))
        fn = _api_one
    with pool:
        for _ in pool.map(fn, pairs, chunksize=chunk):
            pass


# ----------------------------------------------------------------------------------------
# measuring


@dataclass
class Run:
    wall: float
    cpu: float  # user + sys seconds of the whole process tree


@dataclass
class Variant:
    key: str
    label: str
    runs: list[Run] = field(default_factory=list)
    outputs_ok: bool | None = None

    @property
    def median_wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def min_wall(self) -> float:
        return min(r.wall for r in self.runs)

    def median_util(self, cpus: int) -> float:
        return statistics.median(r.cpu / (r.wall * cpus) for r in self.runs)

    @property
    def median_cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)


def timed(cmd: list[str], env: dict[str, str]) -> Run:
    """Run ``cmd`` to completion; wall time and the CPU time of it and all its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                         f"{proc.stderr.decode(errors='replace')[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu)


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``cmd``; its wall time and peak resident set in bytes.

    Through ``/usr/bin/time -f %M`` where it exists: Linux carries the parent's memory
    high-water mark into a child across fork and exec, so ``os.wait4`` on a child of this
    (large) process would report this process's peak; GNU time's child starts from time's
    small image.  Without GNU time, ``os.wait4`` (an upper bound).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists()
                                            else None)
        full = [gnu_time, "-f", "%M", "-o", rss_file.name, *cmd] if gnu_time else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{err.decode(errors='replace')[-3000:]}")
        kib = int(rss_file.read().split()[-1]) if gnu_time else usage.ru_maxrss
    return wall, kib * 1024


def make_photo(path: Path) -> None:
    """A 12 MP photo-like JPEG: the synthetic image's recipe at 4000 x 3000."""
    if path.exists():
        return
    import numpy as np
    from PIL import Image

    w, h = PHOTO_SIZE
    small = _synthetic(0, 1000)
    img = small.resize((w, h), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(7)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, (h, w, 3), dtype=np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)


def photo_runs(base: Path, env: dict[str, str], repeat: int) -> dict:
    """Wall time and peak RSS of ``lrn apply photo.jpg -o out.png --mode within``."""
    photo = base / "photo_12mp.jpg"
    make_photo(photo)
    w, h = PHOTO_SIZE
    image_bytes = w * h * 3 * 4
    lrn = [sys.executable, "-m", "lrn_cli"]
    out = base / "photo_out.png"
    apply = [*lrn, "apply", str(photo), "-o", str(out), "--mode", "within", "--overwrite",
             "--quiet"]
    peak_rss(apply, env)  # untimed: fills the Numba cache for the within kernels
    runs: dict[str, list] = {"version": [], "default": [], "level1": []}
    for _ in range(repeat):
        runs["version"].append(peak_rss([*lrn, "--version"], env))
        runs["default"].append(peak_rss(apply, env))
        runs["level1"].append(peak_rss([*apply, "--png-compression", "1"], env))
    log("  photo: " + ", ".join(
        f"{k} {statistics.median(r[0] for r in v):.2f} s "
        f"{statistics.median(r[1] for r in v) / 2**20:.0f} MiB" for k, v in runs.items()))
    return {"image_bytes": image_bytes, "runs": runs}


def photo_report(photo: dict) -> list[str]:
    """The photo table and its target."""
    runs, image_bytes = photo["runs"], photo["image_bytes"]
    base = statistics.median(r[1] for r in runs["version"])
    lines = ["", "## One 12 MP photo, `lrn apply photo.jpg -o out.png --mode within`", "",
             f"float32 image: {image_bytes / 1e6:.0f} MB; medians of {len(runs['version'])}"
             " runs; peak RSS as GNU `time -f %M` reports it.", "",
             "| command | wall s | peak RSS MiB | above `lrn --version` | of the float32 image |",
             "|---|---:|---:|---:|---:|"]
    worst = 0.0
    for key, label in (("version", "`lrn --version`"),
                       ("default", "`lrn apply ... --mode within` (PNG level 6)"),
                       ("level1", "`lrn apply ... --mode within --png-compression 1`")):
        wall = statistics.median(r[0] for r in runs[key])
        rss = statistics.median(r[1] for r in runs[key])
        if key == "version":
            lines.append(f"| {label} | {wall:.2f} | {rss / 2**20:.0f} | – | – |")
            continue
        ratio = (rss - base) / image_bytes
        worst = max(worst, ratio)
        lines.append(f"| {label} | {wall:.2f} | {rss / 2**20:.0f} | "
                     f"{(rss - base) / 2**20:.0f} MiB | {ratio:.2f}x |")
    lines += ["", "| target | measured | goal | result |", "|---|---:|---:|---|",
              f"| peak RSS above `lrn --version` / float32 image | {worst:.2f}x | "
              f"≤ {RSS_TARGET:g}x | {fmt_pass(worst <= RSS_TARGET)} |"]
    return lines


def check_outputs(out: Path, count: int) -> bool:
    files = sorted(out.glob("img_*.png"))
    if len(files) != count:
        return False
    from PIL import Image

    with Image.open(files[-1]) as im:  # spot check: complete and RGB
        im.load()
        return im.mode == "RGB"


def commands(kind: str, src: Path, out: Path, jobs: int) -> list[str]:
    if kind == "cli":
        return [sys.executable, "-m", "lrn_cli", "apply", str(src), "-o", str(out),
                "-j", str(jobs), "--quiet"]
    return [sys.executable, str(Path(__file__).resolve()), f"_{kind}", str(src), str(out),
            str(jobs)]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for dist in ("lrn-cli", "numpy", "numba", "pillow"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


def fmt_pass(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(variants: dict[str, Variant], meta: dict) -> str:
    """The Markdown tables: settings, one row per variant, the targets."""
    cpus = meta["cpus"]
    count = meta["count"]
    floor = variants["floor"]
    ver = meta["versions"]
    lines = ["## Batch: lrn apply vs a Pillow read-and-write floor", ""]
    lines += [
        "| setting | value |",
        "|---|---|",
        f"| images | {count} RGB {meta['size']}x{meta['size']} PNG ({meta['content']}), "
        f"{meta['kib_per_image']:.0f} KiB each on average; {meta['images']} |",
        f"| workers (`-j`) | {meta['jobs']} (usable CPUs: {cpus}) |",
        f"| runs per variant | {meta['repeat']} (interleaved; median shown) |",
        f"| load average (1 min) before / after | {meta['load'][0]:.2f} / "
        f"{meta['load'][1]:.2f} |",
        f"| versions | Python {ver['python']}, lrn-cli {ver['lrn-cli']}, NumPy {ver['numpy']}, "
        f"Numba {ver['numba']}, Pillow {ver['pillow']} |",
        "",
        "| variant | median s | min s | files/s | CPU s | CPU utilisation | wall vs floor "
        "| CPU s vs floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in variants.values():
        ok = "" if v.outputs_ok else " (outputs incomplete!)"
        lines.append(
            f"| {v.label}{ok} | {v.median_wall:.2f} | {v.min_wall:.2f} | "
            f"{count / v.median_wall:.1f} | {v.median_cpu:.1f} | "
            f"{100 * v.median_util(cpus):.0f}% | {v.median_wall / floor.median_wall:.2f}x | "
            f"{v.median_cpu / floor.median_cpu:.2f}x |"
        )
    cli = variants["cli"]
    ratio = cli.median_wall / floor.median_wall
    cpu_ratio = cli.median_cpu / floor.median_cpu
    util = cli.median_util(cpus)
    lines += [
        "",
        "| target | measured | goal | result |",
        "|---|---:|---:|---|",
        f"| `lrn apply` wall / floor wall (the issue's target) | {ratio:.2f}x | "
        f"≤ {TARGET_RATIO:.2f}x | {fmt_pass(ratio <= TARGET_RATIO)} |",
        f"| `lrn apply` CPU s / floor CPU s (same target, less sensitive to load) | "
        f"{cpu_ratio:.2f}x | ≤ {TARGET_RATIO:.2f}x | {fmt_pass(cpu_ratio <= TARGET_RATIO)} |",
        f"| `lrn apply` CPU utilisation ({cpus} CPUs) | {100 * util:.0f}% | "
        f"≥ {100 * UTIL_GOAL:.0f}% | {fmt_pass(util >= UTIL_GOAL)} |",
    ]
    if "api" in variants:
        api = variants["api"]
        lines += [
            "",
            f"`lrn apply` - `run_job` pool: {cli.median_wall - api.median_wall:+.2f} s wall, "
            f"{cli.median_cpu - api.median_cpu:+.1f} CPU s (CLI start-up, discovery, planning, "
            "per-file futures, summary table); `run_job` pool - floor: "
            f"{api.median_wall - floor.median_wall:+.2f} s wall, "
            f"{api.median_cpu - floor.median_cpu:+.1f} CPU s (LRN, statistics, float "
            "conversion and rescaling, atomic writes).",
        ]
    lines += ["", "Wall times include interpreter and worker start-up for every variant. "
              "Other processes share the machine: compare ratios from one run, not absolute "
              "times; a low CPU utilisation with a high load average means the cores were "
              "busy with someone else."]
    return "\n".join(lines) + "\n"


def from_json(path: Path) -> str:
    """Re-render the tables of a run saved with ``--json``."""
    doc = json.loads(path.read_text())
    variants = {}
    for key, v in doc["variants"].items():
        variants[key] = Variant(key, v["label"], [Run(**r) for r in v["runs"]],
                                v["outputs_ok"])
    text = report(variants, doc["meta"])
    if doc.get("photo"):
        text += "\n".join(photo_report(doc["photo"])) + "\n"
    return text


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_floor", "_api"):
        kind, src, out, jobs = argv
        run_internal(kind[1:], src, out, int(jobs))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="number of images (200)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (512)")
    parser.add_argument("--content", choices=["synthetic", "astronaut"], default="synthetic",
                        help="synthetic photo-like images, or crops of the astronaut sample")
    parser.add_argument("-j", "--jobs", type=int, default=usable_cpus(),
                        help="worker processes for every variant (default: usable CPUs)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (3)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="keep the images here and reuse them next time (default: a "
                        "temporary folder, deleted afterwards)")
    parser.add_argument("--no-api", action="store_true",
                        help="skip the run_job-in-a-pool variant")
    parser.add_argument("--no-photo", action="store_true",
                        help="skip the 12 MP photo (wall time and peak RSS of one apply)")
    parser.add_argument("--json", type=Path, default=None, help="also save the runs as JSON")
    parser.add_argument("--from-json", type=Path, default=None, metavar="FILE",
                        help="print the tables of a run saved with --json, run nothing")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        print(from_json(args.from_json))
        return
    cpus = usable_cpus()

    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lrn-bench-batch-")
        base = Path(tmp.name)
    else:
        base = args.dir
    try:
        src = base / f"images_{args.count}x{args.size}_{args.content}"
        log(f"images in {src} ...")
        images = make_images(src, args.count, args.size, args.content, args.jobs)
        sizes = sum(p.stat().st_size for p in src.glob("img_*.png"))
        log(f"  {images}")
        env = dict(os.environ)
        env.pop("LRN_JOBS", None)

        log("warming the Numba cache (one untimed lrn run on 4 images) ...")
        warm_src = base / "warm"
        shutil.rmtree(warm_src, ignore_errors=True)
        warm_src.mkdir()
        for f in sorted(src.glob("img_*.png"))[:4]:
            shutil.copy(f, warm_src / f.name)
        shutil.rmtree(base / "warm_out", ignore_errors=True)
        warm = timed(commands("cli", warm_src, base / "warm_out", args.jobs), env)
        cold = " (Numba probably compiled: cold cache)" if warm.wall > 15 else ""
        log(f"  {warm.wall:.1f} s{cold}")

        variants = {"floor": Variant("floor", "floor: Pillow open+load+convert, save PNG")}
        variants["cli"] = Variant("cli", f"`lrn apply DIR -o OUT -j {args.jobs} --quiet`")
        if not args.no_api:
            variants["api"] = Variant("api", "`run_job` in the floor's pool")
        loads = [os.getloadavg()[0]]
        for i in range(args.repeat):
            for v in variants.values():
                out = base / f"out_{v.key}"
                shutil.rmtree(out, ignore_errors=True)
                run = timed(commands(v.key, src, out, args.jobs), env)
                v.runs.append(run)
                v.outputs_ok = check_outputs(out, args.count) and v.outputs_ok is not False
                log(f"  run {i + 1}/{args.repeat} {v.key:5s} {run.wall:6.2f} s "
                    f"{args.count / run.wall:6.1f} files/s  CPU {run.cpu:6.1f} s "
                    f"({100 * run.cpu / (run.wall * cpus):.0f}%)")
                shutil.rmtree(out, ignore_errors=True)
        loads.append(os.getloadavg()[0])
        meta = {"count": args.count, "size": args.size, "content": args.content,
                "jobs": args.jobs, "repeat": args.repeat, "cpus": cpus, "images": images,
                "kib_per_image": sizes / args.count / 1024, "load": loads,
                "versions": versions()}
        photo = None
        if not args.no_photo:
            log("12 MP photo: lrn --version and lrn apply --mode within, peak RSS ...")
            photo = photo_runs(base, env, args.repeat)
        text = report(variants, meta)
        if photo is not None:
            text += "\n".join(photo_report(photo)) + "\n"
        print(text)
        if args.json is not None:
            doc = {"meta": meta, "photo": photo,
                   "variants": {k: {"label": v.label, "runs": [asdict(r) for r in v.runs],
                                    "outputs_ok": v.outputs_ok}
                                for k, v in variants.items()}}
            args.json.write_text(json.dumps(doc, indent=2))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
