"""Compile the kernels a run will use before it needs them, and know when that is needed.

Numba compiles each kernel for this CPU the first time it is called and keeps the machine
code in its on-disk cache (``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the package or a
per-user directory).  A fresh install therefore pays a few seconds once; :func:`warm_up`
pays them up front, for the variants asked for, so that a service, a notebook or a worker
pool starts with every kernel loaded, and ``lrn apply`` uses it before starting its worker
processes (one compile in the parent instead of one in every worker).

Numba has no public way to ask whether a kernel is in its cache, so a stamp file of ours,
written beside Numba's cache once a variant set was compiled, answers "is this a first
run?" (:func:`is_warm`).  Its name is a hash of the lrn and Numba versions, the CPU, the
kernel sources and the variants: a wrong "warm" costs only the first-run note.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("across", "within")
DTYPES = ("float32", "float64")
#: ``NCHW``: channels before the spatial axes (any number of axes: (N, C, ...)); ``NHWC``:
#: channels last; ``image``: what ``lrn apply`` does with a picture (read, LRN, statistics,
#: rescale and write 8- and 16-bit PNGs, grey and colour).
LAYOUTS = ("NCHW", "NHWC", "image")

#: Rough compile seconds on a 2-core x86 machine (benchmarks/bench_first_run.py), for the
#: first-run note's estimate: per LRN variant, per dtype of statistics, for the image kernels.
_SECONDS_LRN = 1.5
_SECONDS_STATS = 2.5
_SECONDS_IMAGES = 0.8
_SECONDS_BACKWARD = 3.0


@dataclass(frozen=True, order=True)
class Variant:
    """One combination :func:`warm_up` compiles: a mode, a compute dtype and a layout."""

    mode: str
    dtype: str
    layout: str

    def label(self) -> str:
        """``across float32 NCHW``."""
        return f"{self.mode} {self.dtype} {self.layout}"


@dataclass(frozen=True)
class Plan:
    """What a warm-up compiles: the variants and the LRN parameters that select kernels
    (the window size and convention pick the window class, beta the closed form of the
    power), and whether the divisor, the statistics and the gradient are wanted."""

    variants: tuple[Variant, ...]
    size: int | None = None
    beta: float = 0.75
    convention: str = "default"
    divisor: bool = True
    statistics: bool = True
    backward: bool = False
    #: bit depths the image variants write (``lrn apply --bits``)
    image_bits: tuple[int, ...] = (8, 16)

    def estimate_seconds(self) -> float:
        """A rough compile time for a cold cache on a 2-core machine."""
        per_variant = _SECONDS_LRN + (_SECONDS_BACKWARD if self.backward else 0.0)
        stats_dtypes = {v.dtype for v in self.variants} if self.statistics else set()
        images = any(v.layout == "image" for v in self.variants)
        return (per_variant * len(self.variants) + _SECONDS_STATS * len(stats_dtypes)
                + (_SECONDS_IMAGES if images else 0.0))

    def kernels(self) -> tuple:
        """What selects the compiled kernels: per variant its window class (at most 4, 8 or
        32 taps, or more), the closed form of the power, and what else is computed.  Plans
        that differ only in parameters compiling nothing new (alpha, k, size 5 or 7, ...)
        share their stamp."""
        from lrn_cli._jit import beta_mode
        from lrn_cli.conventions import resolve

        classes = []
        for v in self.variants:
            size = 5 if self.size is None else self.size
            taps = resolve(self.convention, v.mode, size, 1e-4, self.beta, 2.0).taps
            window = next(f"<={n}" for n in (4, 8, 32, math.inf) if taps <= n)
            classes.append((v.mode, v.dtype, v.layout, window))
        return (tuple(classes), beta_mode(self.beta), self.divisor, self.statistics,
                self.backward, self.image_bits)

    def statistics_kernels(self) -> tuple:
        """What selects the statistics kernels: the dtypes and the gain's closed form."""
        gain = 1 if self.beta == 0.75 else 2 if self.beta == 0.5 else 0
        return tuple(sorted({v.dtype for v in self.variants})), gain

    def key(self, part: str = "all") -> str:
        """The stamp's name: a hash of the lrn and Numba versions, the CPU, the kernel
        sources and :meth:`kernels` (``part="statistics"``: :meth:`statistics_kernels`)."""
        from lrn_cli import __version__

        what = self.kernels() if part == "all" else self.statistics_kernels()
        parts = [f"lrn {__version__}", f"numba {_numba_version()}", _cpu(), part, repr(what),
                 *_source_stamps()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


@dataclass
class WarmUpReport:
    """What :func:`warm_up` did."""

    variants: tuple[Variant, ...]
    seconds: float
    #: Numba compilations it caused: 0 when everything came from the cache (or was
    #: already loaded in this process).
    compiled: int
    per_variant: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"variants": [v.label() for v in self.variants],
                "seconds": round(self.seconds, 3), "compiled": self.compiled,
                "per_variant": {k: round(s, 3) for k, s in self.per_variant.items()}}


def make_plan(modes: Iterable[str] = ("across",), dtypes: Iterable[str] = ("float32",),
              layouts: Iterable[str] = ("NCHW",), *, size: int | None = None,
              beta: float = 0.75, convention: str = "default", divisor: bool = True,
              statistics: bool = True, backward: bool = False) -> Plan:
    """Check the arguments of :func:`warm_up` and return its :class:`Plan`."""
    from lrn_cli.errors import ParameterError

    modes, dtypes, layouts = (_choices(v, name, allowed) for v, name, allowed in (
        (modes, "mode", MODES), (dtypes, "dtype", DTYPES), (layouts, "layout", LAYOUTS)))
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise ParameterError(f"beta must be a number, not {beta!r}") from None
    if not math.isfinite(beta):
        raise ParameterError(f"beta must be finite, not {beta}")
    variants = tuple(sorted({Variant(m, d, lay) for m in modes for d in dtypes
                             for lay in layouts}))
    return Plan(variants, size, beta, convention, divisor, statistics, backward)


def warm_up(modes: Iterable[str] = ("across",), dtypes: Iterable[str] = ("float32",),
            layouts: Iterable[str] = ("NCHW",), *, size: int | None = None,
            beta: float = 0.75, convention: str = "default", divisor: bool = True,
            statistics: bool = True, backward: bool = False,
            progress: Callable[[int, int, str], Any] | None = None) -> WarmUpReport:
    """Compile (or load from Numba's cache) the kernels these variants use.

    Each variant runs :func:`lrn_cli.lrn` (and what else is asked for) on a tiny array,
    which compiles exactly the kernels an array of that mode, dtype and layout takes; later
    calls of any size then start at once.  With a warm cache this only loads them.

    Parameters
    ----------
    modes : iterable of {"across", "within"}
    dtypes : iterable of {"float32", "float64"}
        The dtype LRN computes in: float16, integer and bool input is computed in float32.
    layouts : iterable of {"NCHW", "NHWC", "image"}
        Channels before the spatial axes, channels last, or the whole ``lrn apply`` path of
        a picture (read, LRN, statistics, rescale, write).
    size, beta, convention
        LRN parameters that select kernels: the window class (at most 4, at most 8 or more
        taps) and the closed form of ``D ** -beta`` (0.75, 0.5, 1, ...).  Other parameters
        (alpha, k) compile nothing new.
    divisor
        Also the divisor, as ``lrn(..., return_divisor=True)`` and ``lrn apply`` compute
        it; ``False`` warms ``lrn(x)``.
    statistics
        Also :func:`lrn_cli.stats.array_stats` and :func:`lrn_cli.stats.divisor_stats`.
    backward
        Also :func:`lrn_cli.lrn_backward`.
    progress : callable, optional
        Called as ``progress(done, total, label)`` before each variant (``done`` variants
        finished) and once at the end with ``done == total``.

    Returns
    -------
    WarmUpReport
        The variants, the seconds taken and how many Numba compilations that caused.

    Raises
    ------
    ParameterError
        For an unknown mode, dtype or layout, or parameters :func:`lrn_cli.lrn` refuses.
    """
    plan = make_plan(modes, dtypes, layouts, size=size, beta=beta, convention=convention,
                     divisor=divisor, statistics=statistics, backward=backward)
    return run_plan(plan, progress)


def run_plan(plan: Plan, progress: Callable[[int, int, str], Any] | None = None, *,
             helper: bool | None = None) -> WarmUpReport:
    """:func:`warm_up` for a ready :class:`Plan`; writes the plan's stamp.

    ``helper``: compile the moments kernel and the picture-writing kernels in a second
    process meanwhile (they do not depend on the LRN kernels; on an idle 2-core machine a
    first ``lrn apply`` of one array took 3.3 s with it, 4.5 s without).  By default
    only when the cache is cold (no stamp) and a core is idle (:func:`_spare_cpu`); the
    kernels it compiled are then loaded from the cache here.  If it fails, they are
    compiled here instead.
    """
    start = time.perf_counter()
    before = compilations()
    if helper is None:
        helper = plan.statistics and _spare_cpu() and not is_warm(plan, "statistics")
    proc = _start_helper(plan) if helper and plan.statistics else None
    per_variant: dict[str, float] = {}
    total = len(plan.variants)
    # the arrays' LRN kernels while the helper compiles the moments and the picture writing,
    # then the statistics (loaded from the cache), then the pictures (their run takes the
    # statistics too)
    order = sorted(plan.variants, key=lambda v: v.layout == "image")
    try:
        for done, variant in enumerate(order):
            if proc is not None and variant.layout == "image":
                # pictures take the LRN kernels of channels-first arrays: compile them here
                # while the helper compiles the kernels that write pictures
                for later in order[done:]:
                    _warm_variant(plan, Variant(later.mode, later.dtype, "NCHW"),
                                  statistics=False)
                _join_helper(proc, plan, per_variant)
                proc = None
            if progress is not None:
                progress(done, total, variant.label())
            t0 = time.perf_counter()
            _warm_variant(plan, variant, statistics=proc is None)
            per_variant[variant.label()] = time.perf_counter() - t0
        if proc is not None:
            _join_helper(proc, plan, per_variant)
            proc = None
    finally:
        if proc is not None:  # interrupted: do not leave it compiling
            proc.kill()
            proc.wait()
    if progress is not None:
        progress(total, total, "")
    mark_warm(plan)
    return WarmUpReport(plan.variants, time.perf_counter() - start,
                        compilations() - before, per_variant)


def _start_helper(plan: Plan):
    """A process compiling the moments kernel (the largest statistics kernel) and the
    picture-writing kernels of ``plan`` into the same cache, while this one compiles LRN."""
    import subprocess
    import sys

    # the same lrn_cli as this process, whatever the current directory holds: sys.path[0]
    # (the current directory for -c) becomes the folder this package was imported from
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    work = {"beta": plan.beta, "dtypes": sorted({v.dtype for v in plan.variants}),
            "pictures": sorted({(v.mode, v.dtype) for v in plan.variants
                                if v.layout == "image"}), "bits": list(plan.image_bits)}
    code = ("import sys; sys.path[0] = sys.argv.pop(1); "
            "from lrn_cli.warmup import _helper; _helper(sys.argv[1])")
    try:
        # stdout shared: it prints nothing, unless NUMBA_DEBUG_CACHE asks Numba to
        return subprocess.Popen([sys.executable, "-c", code, package_parent, json.dumps(work)],
                                env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _join_helper(proc, plan: Plan, per_variant: dict[str, float]) -> None:
    """Compile the other statistics kernels here while the helper compiles the moments
    (the largest), wait for it, then warm all of them: loaded from the cache, or compiled
    here if the helper failed."""
    t0 = time.perf_counter()
    dtypes = sorted({v.dtype for v in plan.variants})
    for dtype in dtypes:
        _warm_statistics(plan.beta, dtype, moments=False)
    proc.wait()
    for dtype in dtypes:
        _warm_statistics(plan.beta, dtype)
    per_variant["statistics"] = time.perf_counter() - t0


def _helper(work: str) -> None:
    """The helper process's work (JSON from :func:`_start_helper`): the moments kernel of
    each dtype, then the picture-writing kernels of the image variants."""
    spec = json.loads(work)
    for dtype in spec["dtypes"]:
        _warm_statistics(spec["beta"], dtype, others=False)
    for mode, dtype in spec["pictures"]:
        _warm_picture_writes(mode, dtype, spec["bits"])


def _spare_cpu() -> bool:
    """Whether a second process would get a core of its own: 2 usable CPUs or more, and a
    load average (last minute) leaving one idle.  On a busy machine the helper only competes
    with this process (measured with 3 runnable processes on 2 cores: 11.1 s with it, 8.3 s
    without)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return cpus >= 2 and load <= cpus - 1


# ----------------------------------------------------------------------------------------
# the variants: tiny inputs that take the same kernels as real ones


def _sample(variant: Variant):
    """A small array of ``variant`` and its channel axis.

    Big enough to take the kernels real arrays take: 20 pixels per channel row (the
    contiguous across kernel wants at least 16), 8 channels, 2 samples.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((2, 8, 4, 5))).astype(variant.dtype)
    if variant.layout == "NHWC":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), -1
    return x, 1


def _warm_statistics(beta: float, dtype: str, *, moments: bool = True,
                     others: bool = True) -> None:
    """The statistics kernels of ``dtype`` arrays: the moments (one kernel, every layout),
    and the others (the divisor's figures); both (the default) the way ``array_stats`` and
    ``divisor_stats`` call them."""
    from lrn_cli.stats import array_stats, divisor_stats

    x, axis = _sample(Variant("across", dtype, "NCHW"))
    if moments:
        array_stats(x, axis)
    if others:
        divisor_stats(x + 1, beta)


def _warm_variant(plan: Plan, variant: Variant, *, statistics: bool = True) -> None:
    """``statistics``: also those of this variant's arrays (else warmed separately)."""
    if variant.layout == "image":
        _warm_images(plan, variant)
        return
    from lrn_cli.core import lrn, lrn_backward

    x, axis = _sample(variant)
    kwargs = {"size": plan.size, "beta": plan.beta, "mode": variant.mode,
              "convention": plan.convention, "channel_axis": axis}
    if plan.divisor:
        y, d = lrn(x, **kwargs, return_divisor=True)
    else:
        y, d = lrn(x, **kwargs), None
    if plan.statistics and statistics:
        from lrn_cli.stats import array_stats, divisor_stats

        array_stats(x, axis)
        array_stats(y, axis)
        if d is not None:
            divisor_stats(d, plan.beta)
    if plan.backward:
        lrn_backward(x, y, **kwargs)


def _pictures():
    """Tiny PNGs of the kinds ``lrn apply`` meets: grey, colour, colour with alpha, 16-bit
    grey, as ``(PIL mode, bytes)``."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for pil_mode, shape in (("L", (20, 21)), ("RGB", (20, 21, 3)), ("RGBA", (20, 21, 4)),
                            ("I;16", (20, 21))):
        top = 65535 if pil_mode == "I;16" else 255
        values = rng.integers(0, top + 1, shape).astype(np.uint16 if top > 255 else np.uint8)
        buf = io.BytesIO()
        Image.fromarray(values).save(buf, format="PNG")
        yield pil_mode, buf.getvalue()


def _warm_images(plan: Plan, variant: Variant) -> None:
    """``lrn apply`` on tiny pictures (:func:`_pictures`), written as PNGs of the plan's bit
    depths into a temporary folder."""
    import tempfile

    from lrn_cli.errors import LrnError
    from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions, run_job

    settings = Settings(size=5 if plan.size is None else plan.size, beta=plan.beta,
                        mode=variant.mode, convention=plan.convention)
    ropts = ReadOptions(dtype=variant.dtype)
    with tempfile.TemporaryDirectory(prefix="lrn-warm-up-") as tmp:
        for n, (pil_mode, data) in enumerate(_pictures()):
            for bits in plan.image_bits:
                out = os.path.join(tmp, f"{n}-{bits}.png")
                result = run_job(f"warm-up.{pil_mode}.png", out, settings, ropts,
                                 WriteOptions(bits=bits), data=data)
                if result.status != "ok":
                    raise LrnError(f"warm-up of the image kernels failed: {result.error}")


def _warm_picture_writes(mode: str, dtype: str, bits: Iterable[int]) -> None:
    """The kernels that turn an LRN output back into a picture (rescale, quantize), without
    LRN or statistics: :func:`_warm_images`'s pictures read, their pixels halved in arrays laid
    out as ``lrn`` returns them, and saved (the statistics helper runs this meanwhile)."""
    import tempfile

    import numpy as np

    from lrn_cli.pipeline import ItemResult, ReadOptions, WriteOptions, load, save

    with tempfile.TemporaryDirectory(prefix="lrn-warm-up-") as tmp:
        for n, (pil_mode, data) in enumerate(_pictures()):
            loaded = load(f"warm-up.{pil_mode}.png", ReadOptions(dtype=dtype), mode, data)
            item = loaded.items[0]
            y = np.empty_like(item.array)  # lrn's output keeps its input's memory layout
            np.multiply(item.array, 0.5, out=y)
            for depth in bits:
                save(loaded, [ItemResult(item.key, item.layout, item.channel_axis, y, None,
                                         None, None)],
                     os.path.join(tmp, f"{n}-{depth}.png"), WriteOptions(bits=depth))


#: ``lrn apply`` reads the headers of at most this many ``.npy`` inputs to plan its
#: warm-up; arrays beyond them of another dtype or layout compile where they run.
_HEADERS_READ = 64


def plan_for_inputs(sources: Iterable[str], settings, ropts, wopts=None) -> Plan | None:
    """The warm-up ``lrn apply`` needs for these inputs (None when there is nothing to plan).

    Images by their suffix; ``.npy`` files by their header (dtype and number of axes, with
    the layout the read options give them); ``.npz`` members as float32 channels-first (their
    headers sit inside the archive); standard input is not planned.
    """
    from lrn_cli.images import IMAGE_SUFFIXES

    variants: set[Variant] = set()
    headers = 0
    for source in sources:
        suffix = os.path.splitext(str(source))[1].lower()
        if source == "-":
            continue
        if suffix in IMAGE_SUFFIXES:
            variants.add(Variant(settings.mode, ropts.dtype or "float32", "image"))
        elif suffix == ".npz":
            variants.add(Variant(settings.mode, ropts.dtype or "float32", "NCHW"))
        elif suffix == ".npy" and headers < _HEADERS_READ:
            headers += 1
            variant = _npy_variant(source, settings.mode, ropts)
            if variant is not None:
                variants.add(variant)
    if not variants:
        return None
    bits = (8, 16) if wopts is None else (wopts.bits,)
    return Plan(tuple(sorted(variants)), settings.size, float(settings.beta),
                settings.convention, image_bits=bits)


def _npy_variant(path: str, mode: str, ropts) -> Variant | None:
    """The variant of one ``.npy`` file from its header (None when it cannot be read)."""
    import numpy as np

    from lrn_cli.errors import LrnError
    from lrn_cli.layouts import resolve_layout

    try:
        with open(path, "rb") as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
        _, axis, _ = resolve_layout(len(shape), mode, ropts.layout, ropts.channel_axis,
                                    channel_axis_given=ropts.channel_axis_given)
    except (OSError, ValueError, LrnError):
        return None
    if ropts.dtype is not None:
        compute = ropts.dtype
    else:
        compute = "float64" if dtype.kind == "f" and dtype.itemsize == 8 else "float32"
    last = axis is not None and len(shape) >= 3 and axis == len(shape) - 1
    return Variant(mode, compute, "NHWC" if last and mode == "across" else "NCHW")


# ----------------------------------------------------------------------------------------
# is the cache warm? (the stamp)


#: The modules of lrn_cli holding Numba kernels (their dispatchers and variants).
_KERNEL_MODULES = ("_kernel_parts", "_kernels_across", "_kernels_backward", "_kernels_within",
                   "_stats_kernels", "_image_kernels")


def compilations() -> int:
    """How many kernels Numba compiled in this process so far (loads from its cache are not
    counted): the kernel modules' dispatchers and the variants built so far."""
    import sys

    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return 0
    from lrn_cli._jit import Variants

    total = 0
    for name in _KERNEL_MODULES:
        module = sys.modules.get(f"lrn_cli.{name}")
        for obj in vars(module).values() if module is not None else ():
            for disp in obj.dispatchers() if isinstance(obj, Variants) else (obj,):
                if isinstance(disp, Dispatcher):
                    total += sum(disp.stats.cache_misses.values())
    return total


def stamp_path(plan: Plan, part: str = "all") -> Path | None:
    """Where the stamp of ``plan`` lives, or None when nothing is compiled
    (``NUMBA_DISABLE_JIT``) or the plan's parameters are invalid (its run will say so).

    Beside Numba's cache of the kernels, found the way Numba looks for it, but without
    importing Numba (a warm ``lrn apply`` with a worker pool never imports it in the parent):
    ``NUMBA_CACHE_DIR`` if set, else the package's ``__pycache__`` if writable, else the
    per-user cache folder.  ``part``: see :meth:`Plan.key`.
    """
    from lrn_cli.errors import LrnError

    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return None
    try:
        name = f"lrn-warm-{plan.key(part)}.stamp"
    except LrnError:
        return None
    return _cache_dir() / name


def _cache_dir() -> Path:
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given:
        return Path(given)
    here = Path(__file__).resolve().parent
    pycache = here / "__pycache__"
    if os.access(pycache if pycache.is_dir() else here, os.W_OK):
        return pycache
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numba" / "lrn_cli"


def is_warm(plan: Plan, part: str = "all") -> bool:
    """True when ``plan`` was compiled into this cache before (or nothing compiles)."""
    path = stamp_path(plan, part)
    return path is None or path.is_file()


def mark_warm(plan: Plan) -> None:
    """Write ``plan``'s stamps (best effort: a read-only cache just keeps the note)."""
    for part in ("all", "statistics") if plan.statistics else ("all",):
        path = stamp_path(plan, part)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(f"{plan!r}\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass


def first_run_note(plan: Plan) -> str | None:
    """The note to print before compiling ``plan``, or None when its cache is warm."""
    if is_warm(plan):
        return None
    seconds = max(1, round(plan.estimate_seconds()))
    return f"compiling kernels for this CPU (first run), ~{seconds} s"


def _choices(values: Iterable[str] | str, name: str, allowed: tuple[str, ...]) -> list[str]:
    from lrn_cli.errors import ParameterError

    chosen = [values] if isinstance(values, str) else list(values)
    if not chosen:
        raise ParameterError(f"give at least one {name} ({', '.join(allowed)})")
    for value in chosen:
        if value not in allowed:
            raise ParameterError(f"unknown {name} {value!r}; expected one of "
                                 f"{', '.join(allowed)}")
    return chosen


def _numba_version() -> str:
    """Numba's version from its metadata (importing Numba costs ~0.2 s)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("numba")
    except PackageNotFoundError:  # pragma: no cover - numba is a dependency
        return "unknown"


def _cpu() -> str:
    """The CPU (model and feature flags: Numba's cache is keyed on them too)."""
    import platform

    model = flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key = line.split(":", 1)[0].strip()
                if key == "model name" and not model:
                    model = line.split(":", 1)[1].strip()
                elif key in ("flags", "Features") and not flags:
                    flags = line.split(":", 1)[1].strip()
                if model and flags:
                    break
    except OSError:
        pass
    return " ".join((platform.machine(), model or platform.processor(), flags))


def _source_stamps() -> list[str]:
    """Size and mtime of the kernel sources (Numba's cache is invalidated when they change)."""
    here = Path(__file__).resolve().parent
    stamps = []
    for name in [f"{m}.py" for m in _KERNEL_MODULES] + ["_jit.py"]:
        try:
            st = (here / name).stat()
            stamps.append(f"{name} {st.st_size} {st.st_mtime_ns}")
        except OSError:
            stamps.append(f"{name} missing")
    return stamps
