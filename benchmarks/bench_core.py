#!/usr/bin/env python
"""Benchmark ``lrn_cli`` against the memory ceiling and its peers, side by side in one run.

Conditions (the issue's): float32, size 5, alpha 1e-4, beta 0.75, k 2.  Every timing is
the median (and the min) of ``--repeat`` calls after a warm-up; ratios are taken between
medians of the same run.  The result is printed as Markdown tables, ready to paste.

    PYTHONPATH=. python benchmarks/bench_core.py            # full run
    PYTHONPATH=. python benchmarks/bench_core.py --quick    # 5 repeats
    PYTHONPATH=. python benchmarks/bench_core.py --only across,startup --json out.json

Peers (torch, tensorflow, onnxruntime + onnx) are optional: a missing one is skipped with
a note.  Targets are reported as PASS/MISS, never asserted.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from typing import Any

import numpy as np
from _machine import CacheFlusher, ThreadWaker, cpu_model, log, usable_cpus

SIZE, ALPHA, BETA, K = 5, 1e-4, 0.75, 2.0
ACROSS_SHAPES = {"conv1": (32, 96, 55, 55), "conv2": (32, 256, 27, 27)}
WITHIN_SHAPE = ("conv1", ACROSS_SHAPES["conv1"])
WITHIN_SIZES = (3, 5, 11, 21)
IMAGE_SHAPE = (3000, 4000, 3)  # a 12 MP RGB photo as lrn apply holds it (HWC float32)
SECTIONS = ("across", "within", "backward", "stats", "startup")
CHECK_RTOL = 1e-4

# targets from the issue: (section, shape, key, "<=" or ">=", goal)
ACROSS_TARGETS = {
    "conv1": {"copyto": 1.5, "tf": 8.0, "torch": 40.0},
    "conv2": {"copyto": 1.5, "tf": 6.0, "torch": 20.0},
}
# Speed II: the rows it added, each against a yardstick measured in the same run
NHWC_TARGET = {"conv1": 1.25}  # lrn(x_nhwc, out=) / lrn(x, out=)
DIVISOR_TARGET = {"conv1": 1.5}  # lrn(x, out=, divisor_out=) / lrn(x, out=)
WITHIN_COPYTO_TARGET = 2.5  # lrn(mode="within", out=), size 5 / np.copyto
WITHIN_GROWTH_TARGET = 1.15  # size 21 / size 3
WITHIN_TORCH_TARGET = 4.0  # torch / lrn at size 5
BACKWARD_TARGETS = {  # torch autograd backward / lrn_backward(out=); lrn_backward(out=) / copyto
    "conv1": {"torch": 25.0, "copyto": 3.0},
    "conv2": {"torch": 15.0, "copyto": 3.0},
}
STATS_TARGET = 2.0  # the three statistics apply computes / the lrn(return_divisor=True) call
IMAGE_STATS_TARGET = 2.0  # array_stats of a 12 MP HWC image / np.copyto


# ----------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    times_ms: list[float] = field(repr=False)


def measure(fn: Callable[[], Any], repeat: int, warmup: int = 2,
            setup: Callable[[], Any] | None = None) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times, each timed on its own.

    ``setup`` (untimed) runs before every call.  The garbage collector is off while timing.
    """
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    times = []
    try:
        for _ in range(repeat):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        if enabled:
            gc.enable()
    time.sleep(0.05)  # let spinning thread pools (OpenMP, Eigen, ORT) go idle
    return Timing(statistics.median(times), min(times), times)


def _busy_wait(seconds: float) -> None:
    """Wait on this thread without sleeping: a sleeping vCPU can be slow to come back (see
    :class:`_machine.ThreadWaker`), and ``lrn apply`` never sleeps between its calls."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure_rounds(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int = 2,
                   setups: dict[str, Callable[[], Any]] | None = None, pause: float = 0.0,
                   wakers: dict[str, Callable[[], Any]] | None = None) -> dict[str, Timing]:
    """:func:`measure` of several calls in interleaved rounds (each round calls every one
    once, in order): the two sides of a ratio then see the same machine state (a noisy
    neighbour, the allocator's state, a thread pool still spinning), so the ratio of their
    medians moves less than the calls measured one block after another.

    ``pause`` seconds after each call (this thread busy, not asleep) let the call's thread
    pools go idle (where calls on
    different pools alternate: an OpenMP worker still spinning after an LRN call slows the
    statistics' own threads by 3-4 ms on conv1); ``wakers[key]`` (untimed) then wakes the
    pool the next call uses (:class:`_machine.ThreadWaker`: a sleeping worker can take
    milliseconds to wake on a VM).  Calls on one pool run back to back (no pause), as
    ``np.copyto`` and the across rows do."""
    setups = setups or {}
    wakers = wakers or {}
    for _ in range(warmup):
        for key, fn in fns.items():
            if key in setups:
                setups[key]()
            fn()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    times: dict[str, list[float]] = {key: [] for key in fns}
    try:
        for _ in range(repeat):
            for key, fn in fns.items():
                if key in setups:
                    setups[key]()
                if pause:
                    _busy_wait(pause)
                if key in wakers:
                    wakers[key]()
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
    finally:
        if enabled:
            gc.enable()
    time.sleep(0.05)
    return {key: Timing(statistics.median(t), min(t), t) for key, t in times.items()}


def rel_err(got, ref) -> float:
    """Largest ``|got - ref| / |ref|``, with ``|ref|`` floored at 1e-3 of ``max|ref|``."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3 * scale)))


# ----------------------------------------------------------------------------------------
# machine and peers


def physical_cores() -> int | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    cores = set()
    for block in text.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        if "core id" in fields:
            cores.add((fields.get("physical id"), fields["core id"]))
    return len(cores) or None


def dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


class Peers:
    """The frameworks, imported on first use with ``threads`` intra-op threads each."""

    def __init__(self, threads: int, notes: list[str]):
        self.threads = threads
        self.notes = notes
        self._mods: dict[str, Any] = {}
        self.config: dict[str, str] = {}

    def _missing(self, name: str, what: str) -> None:
        self._mods[name] = None
        self.notes.append(f"{what} not installed: skipped")
        log(f"  {what} not installed: skipped")

    def torch(self):
        if "torch" not in self._mods:
            if importlib.util.find_spec("torch") is None:
                self._missing("torch", "torch")
            else:
                log("  importing torch ...")
                import torch

                torch.set_num_threads(self.threads)
                self.config["torch"] = f"{torch.get_num_threads()} threads"
                self._mods["torch"] = torch
        return self._mods["torch"]

    def tf(self):
        if "tf" not in self._mods:
            if importlib.util.find_spec("tensorflow") is None:
                self._missing("tf", "tensorflow")
            else:
                log("  importing tensorflow ...")
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                import tensorflow as tf

                try:
                    tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                except RuntimeError as exc:  # already initialised
                    self.notes.append(f"tensorflow threads not set: {exc}")
                n = tf.config.threading.get_intra_op_parallelism_threads()
                self.config["tensorflow"] = f"{n} intra-op threads, eager"
                self._mods["tf"] = tf
        return self._mods["tf"]

    def ort(self):
        if "ort" not in self._mods:
            if importlib.util.find_spec("onnxruntime") is None:
                self._missing("ort", "onnxruntime")
            elif importlib.util.find_spec("onnx") is None:
                self._missing("ort", "onnx (needed to build the onnxruntime model)")
            else:
                import onnx
                import onnxruntime

                self.config["onnxruntime"] = f"{self.threads} intra-op threads, CPU provider"
                self._mods["ort"] = (onnx, onnxruntime)
        return self._mods["ort"]

    def ort_session(self, shape):
        mods = self.ort()
        if mods is None:
            return None
        onnx, ort = mods
        from onnx import TensorProto, helper

        node = helper.make_node("LRN", ["X"], ["Y"], size=SIZE, alpha=ALPHA, beta=BETA, bias=K)
        graph = helper.make_graph(
            [node], "lrn",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(shape))],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8  # onnx writes a newer IR than some onnxruntime builds accept
        onnx.checker.check_model(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------------------
# sections


class Bench:
    def __init__(self, args, threads: int):
        self.args = args
        self.repeat = args.repeat
        self.threads = threads
        self.notes: list[str] = []
        self.checks: list[str] = []
        self.peers = Peers(threads, self.notes)
        self.results: dict[str, Any] = {}
        self.targets: list[dict[str, Any]] = []
        self.rng = np.random.default_rng(0)
        self._flusher: CacheFlusher | None = None
        self._waker: ThreadWaker | None = None

    # helpers

    def data(self, shape) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32)

    def check(self, what: str, got, ref) -> None:
        err = rel_err(got, ref)
        line = f"{what}: max rel err {err:.1e}"
        if err > CHECK_RTOL:
            line = f"WARNING {line} > {CHECK_RTOL:g}: not the same computation"
            log(f"  {line}")
        self.checks.append(line)

    def target(self, section: str, name: str, shape: str, measured: float | None,
               op: str, goal: float) -> None:
        if measured is None:
            status = "n/a"
        elif op == "<=":
            status = "PASS" if measured <= goal else "MISS"
        else:
            status = "PASS" if measured >= goal else "MISS"
        self.targets.append(dict(section=section, target=name, shape=shape,
                                 goal=f"{'≤' if op == '<=' else '≥'} {goal:g}x",
                                 measured=measured, status=status))

    def flusher(self) -> CacheFlusher:
        if self._flusher is None:
            self._flusher = CacheFlusher()
        return self._flusher

    def time(self, label: str, fn, **kw) -> Timing:
        t = measure(fn, self.repeat, **kw)
        log(f"    {label:<34} median {t.median_ms:9.2f} ms   min {t.min_ms:9.2f} ms")
        return t

    def time_rounds(self, calls: dict[str, tuple[str, Callable[[], Any]]],
                    setups: dict[str, Callable[[], Any]] | None = None,
                    pools: dict[str, str] | None = None) -> dict[str, Timing]:
        """Time ``{key: (label, fn)}`` in interleaved rounds (:func:`measure_rounds`).

        ``pools`` (``{key: "numba" | "stats"}``): the calls alternate between Numba's
        OpenMP pool and the statistics' threads, so each call follows a pause and a wake of
        its own pool; without it, every call is on Numba's pool and runs back to back."""
        wakers = None
        if pools:
            if self._waker is None:
                self._waker = ThreadWaker()
            wakers = {key: getattr(self._waker, pool) for key, pool in pools.items()}
        got = measure_rounds({key: fn for key, (_, fn) in calls.items()}, self.repeat,
                             setups=setups, pause=0.02 if pools else 0.0, wakers=wakers)
        for key, (label, _) in calls.items():
            t = got[key]
            log(f"    {label:<34} median {t.median_ms:9.2f} ms   min {t.min_ms:9.2f} ms")
        return got

    # across

    def across(self) -> None:
        from lrn_cli import lrn

        res = self.results["across"] = {}
        for name, shape in ACROSS_SHAPES.items():
            log(f"  across {name} {'x'.join(map(str, shape))}")
            res[name] = self._across_shape(lrn, name, shape)

    def _across_shape(self, lrn, name, shape) -> dict[str, Timing]:
        x = self.data(shape)
        out = np.empty_like(x)
        ref = lrn(x, SIZE, ALPHA, BETA, K)
        rows: dict[str, Timing] = {}
        rows["copyto"] = self.time("np.copyto(out, x)", partial(np.copyto, out, x))
        floor = _arithmetic_floor()
        a, k = np.float32(ALPHA / SIZE), np.float32(K)
        rows["floor"] = self.time("elementwise x·D^-0.75 (no window)",
                                  partial(floor, x.reshape(-1), out.reshape(-1), a, k))
        rows["lrn_out"] = self.time("lrn(x, out=out)", partial(lrn, x, SIZE, ALPHA, BETA, K,
                                                               out=out))
        rows["lrn"] = self.time("lrn(x)", partial(lrn, x, SIZE, ALPHA, BETA, K))
        # the same two calls with the caches flushed before each: conv2 (24 MB) fits a
        # 32 MB last-level cache, and np.copyto then runs partly from it
        flush = self.flusher()
        rows["copyto_cold"] = self.time("np.copyto, caches flushed",
                                        partial(np.copyto, out, x), setup=flush)
        rows["lrn_out_cold"] = self.time("lrn(out=), caches flushed",
                                         partial(lrn, x, SIZE, ALPHA, BETA, K, out=out),
                                         setup=flush)
        dout = np.empty_like(x)
        rows["lrn_div_out"] = self.time("lrn(x, out=, divisor_out=)",
                                        partial(lrn, x, SIZE, ALPHA, BETA, K, out=out,
                                                divisor_out=dout))
        rows["lrn_div"] = self.time("lrn(x, return_divisor=True)",
                                    partial(lrn, x, SIZE, ALPHA, BETA, K, return_divisor=True))
        if not np.array_equal(out, ref):
            self.notes.append(f"across {name}: y of the divisor call differs from lrn(x)")
        del dout
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        out_nhwc = np.empty_like(x_nhwc)
        rows["lrn_nhwc"] = self.time("lrn(x_nhwc, channel_axis=-1, out=)",
                                     partial(lrn, x_nhwc, SIZE, ALPHA, BETA, K, channel_axis=-1,
                                             out=out_nhwc))
        if not np.array_equal(out_nhwc, ref.transpose(0, 2, 3, 1)):
            self.notes.append(f"across {name}: NHWC result differs from NCHW (not bit-identical)")
        del x_nhwc, out_nhwc

        torch = self.peers.torch()
        if torch is not None:
            import torch.nn.functional as F

            xt = torch.from_numpy(x)

            def torch_lrn():
                with torch.no_grad():
                    return F.local_response_norm(xt, SIZE, alpha=ALPHA, beta=BETA, k=K)

            self.check(f"across {name}: torch vs lrn", torch_lrn().numpy(), ref)
            rows["torch"] = self.time("torch F.local_response_norm", torch_lrn)

        tf = self.peers.tf()
        if tf is not None:
            xn = tf.constant(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))

            def tf_lrn():
                # TF's alpha multiplies the plain sum: pass alpha/n for the same result
                return tf.nn.local_response_normalization(
                    xn, depth_radius=SIZE // 2, bias=K, alpha=ALPHA / SIZE, beta=BETA
                ).numpy()

            self.check(f"across {name}: tensorflow vs lrn", tf_lrn(), ref.transpose(0, 2, 3, 1))
            rows["tf"] = self.time("tf.nn.local_response_normalization", tf_lrn)
            del xn

        sess = self.peers.ort_session(shape)
        if sess is not None:
            feed = {"X": x}

            def ort_lrn():
                return sess.run(None, feed)[0]

            self.check(f"across {name}: onnxruntime vs lrn", ort_lrn(), ref)
            rows["ort"] = self.time("onnxruntime LRN", ort_lrn)

        # the targets are "into a preallocated output": peers against lrn(out=)
        base = rows["lrn_out"].median_ms
        self.target("across", "lrn(out=) / np.copyto, caches flushed (memory ceiling)", name,
                    rows["lrn_out_cold"].median_ms / rows["copyto_cold"].median_ms,
                    "<=", ACROSS_TARGETS[name]["copyto"])
        self.target("across", "lrn(out=) / np.copyto, back to back (cache-warm)", name,
                    rows["lrn_out"].median_ms / rows["copyto"].median_ms,
                    "<=", ACROSS_TARGETS[name]["copyto"])
        for key, label in (("tf", "TF / lrn(out=)"), ("torch", "torch / lrn(out=)")):
            got = rows[key].median_ms / base if key in rows else None
            self.target("across", label, name, got, ">=", ACROSS_TARGETS[name][key])
        if name in NHWC_TARGET:
            self.target("across", "channels-last lrn(out=) / NCHW lrn(out=)", name,
                        rows["lrn_nhwc"].median_ms / base, "<=", NHWC_TARGET[name])
        if name in DIVISOR_TARGET:
            self.target("across", "lrn(out=, divisor_out=) / lrn(out=)", name,
                        rows["lrn_div_out"].median_ms / base, "<=", DIVISOR_TARGET[name])
        return rows

    # within

    def within(self) -> None:
        from lrn_cli import lrn

        name, shape = WITHIN_SHAPE
        log(f"  within {name} {'x'.join(map(str, shape))}")
        x = self.data(shape)
        out = np.empty_like(x)
        torch = self.peers.torch()
        if torch is not None:
            import torch.nn.functional as F

            xt = torch.from_numpy(x)
        res = self.results["within"] = {}
        outs = {n: np.empty_like(x) for n in WITHIN_SIZES}
        calls = {str(n): (f"size {n}: lrn(mode='within', out=)",
                          partial(lrn, x, n, ALPHA, BETA, K, mode="within", out=outs[n]))
                 for n in WITHIN_SIZES}
        # the sizes in interleaved rounds (one pool: back to back), np.copyto back to back
        copyto = self.time("np.copyto(out, x)", partial(np.copyto, out, x))
        got = self.time_rounds(calls)
        for n in WITHIN_SIZES:
            rows = res[str(n)] = {"lrn_out": got[str(n)]}
            if torch is not None:
                tfn = _torch_within(torch, F, xt, n)
                self.check(f"within size {n}: torch avg_pool2d vs lrn", tfn().numpy(), outs[n])
                rows["torch"] = self.time(f"size {n}: torch avg_pool2d", tfn)
        del outs
        res["copyto"] = {"copyto": copyto}
        t3, t21 = res["3"]["lrn_out"].median_ms, res["21"]["lrn_out"].median_ms
        self.target("within", "lrn(out=), size 5 / np.copyto", name,
                    res["5"]["lrn_out"].median_ms / copyto.median_ms, "<=", WITHIN_COPYTO_TARGET)
        self.target("within", "lrn size 21 / size 3", name, t21 / t3, "<=", WITHIN_GROWTH_TARGET)
        five = res["5"]
        got = five["torch"].median_ms / five["lrn_out"].median_ms if "torch" in five else None
        self.target("within", "torch / lrn, size 5", name, got, ">=", WITHIN_TORCH_TARGET)

    # backward

    def backward(self) -> None:
        from lrn_cli import lrn_backward

        res = self.results["backward"] = {}
        for name, shape in ACROSS_SHAPES.items():
            log(f"  backward {name} {'x'.join(map(str, shape))}")
            res[name] = self._backward_shape(lrn_backward, name, shape)

    def _backward_shape(self, lrn_backward, name, shape) -> dict[str, Timing]:
        x = self.data(shape)
        g = self.data(shape)
        rows: dict[str, Timing] = {}
        ref = lrn_backward(x, g, SIZE, ALPHA, BETA, K)
        out = np.empty_like(x)
        # the floor and the gradient in interleaved rounds (np.copyto back to back, as
        # everywhere)
        floor = _backward_floor()
        a = ALPHA / SIZE
        rows["copyto"] = self.time("np.copyto(out, x)", partial(np.copyto, out, x))
        rows.update(self.time_rounds({
            "floor": ("elementwise backward (no window)",
                      partial(floor, x.reshape(-1), g.reshape(-1), out.reshape(-1), a,
                              float(K), 2.0 * BETA * a)),
            "lrn_out": ("lrn_backward(x, g, out=out)",
                        partial(lrn_backward, x, g, SIZE, ALPHA, BETA, K, out=out)),
        }))
        rows["lrn"] = self.time("lrn_backward(x, g)", partial(lrn_backward, x, g, SIZE, ALPHA,
                                                             BETA, K))
        x_nhwc, g_nhwc = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, g))
        out_nhwc = np.empty_like(x_nhwc)
        rows["lrn_nhwc"] = self.time("lrn_backward(x_nhwc, g_nhwc, out=)",
                                     partial(lrn_backward, x_nhwc, g_nhwc, SIZE, ALPHA, BETA, K,
                                             channel_axis=-1, out=out_nhwc))
        self.check(f"backward {name}: channels-last vs channels-first",
                   out_nhwc, ref.transpose(0, 2, 3, 1))
        del x_nhwc, g_nhwc, out_nhwc
        torch = self.peers.torch()
        if torch is not None:
            import torch.nn.functional as F

            xt = torch.from_numpy(x.copy()).requires_grad_(True)
            gt = torch.from_numpy(g)
            y = F.local_response_norm(xt, SIZE, alpha=ALPHA, beta=BETA, k=K)

            def zero_grad():
                xt.grad = None

            def torch_backward():
                y.backward(gt, retain_graph=True)

            zero_grad()
            torch_backward()
            self.check(f"backward {name}: torch autograd vs lrn_backward", xt.grad.numpy(), ref)
            rows["torch"] = self.time("torch autograd backward", torch_backward,
                                      setup=zero_grad)
            del y
        got = rows["torch"].median_ms / rows["lrn_out"].median_ms if "torch" in rows else None
        self.target("backward", "torch backward / lrn_backward(out=)", name, got, ">=",
                    BACKWARD_TARGETS[name]["torch"])
        self.target("backward", "lrn_backward(out=) / np.copyto", name,
                    rows["lrn_out"].median_ms / rows["copyto"].median_ms, "<=",
                    BACKWARD_TARGETS[name]["copyto"])
        return rows

    # statistics

    def stats(self) -> None:
        """The statistics ``lrn apply`` computes, against the LRN call they follow, and the
        statistics of a 12 MP photo against ``np.copyto``."""
        from lrn_cli import lrn
        from lrn_cli.pipeline import Item, Loaded, Settings, normalize
        from lrn_cli.stats import array_stats, divisor_stats

        res = self.results["stats"] = {}
        name, shape = "conv1", ACROSS_SHAPES["conv1"]
        log(f"  stats {name} {'x'.join(map(str, shape))}")
        x = self.data(shape)
        y, d = lrn(x, SIZE, ALPHA, BETA, K, return_divisor=True)
        rows = res[name] = {}
        y_out, d_out = np.empty_like(x), np.empty_like(x)

        def three():
            array_stats(x, 1)
            array_stats(y, 1)
            divisor_stats(d, BETA)

        # interleaved rounds: the allocating call's page faults depend on the allocator's
        # state (3.6 against 9.0 ms in one process), so its ratio is taken beside the
        # statistics, and the non-allocating call (the kernel's work alone) is shown too
        rows.update(self.time_rounds({
            "lrn_div": ("lrn(x, return_divisor=True)",
                        partial(lrn, x, SIZE, ALPHA, BETA, K, return_divisor=True)),
            "lrn_div_out": ("lrn(x, out=, divisor_out=)",
                            partial(lrn, x, SIZE, ALPHA, BETA, K, out=y_out, divisor_out=d_out)),
            "x": ("array_stats(x, 1)", partial(array_stats, x, 1)),
            "y": ("array_stats(y, 1)", partial(array_stats, y, 1)),
            "d": ("divisor_stats(d, beta)", partial(divisor_stats, d, BETA)),
            "three": ("the three together", three),
        }, pools={"lrn_div": "numba", "lrn_div_out": "numba", "x": "stats", "y": "stats",
                  "d": "stats", "three": "stats"}))
        del y_out, d_out
        loaded = Loaded("bench.npy", "npy", [Item("", x, "NCHW", 1, False)])
        settings = Settings(size=SIZE, alpha=ALPHA, beta=BETA, k=K)
        rows["normalize"] = self.time("pipeline.normalize (LRN + statistics)",
                                      partial(normalize, loaded, settings))
        self.target("stats", "input + output + divisor statistics / lrn(return_divisor=True)",
                    name, rows["three"].median_ms / rows["lrn_div"].median_ms, "<=",
                    STATS_TARGET)
        log(f"  stats image {'x'.join(map(str, IMAGE_SHAPE))} (HWC)")
        img = self.rng.random(IMAGE_SHAPE, dtype=np.float32)
        out = np.empty_like(img)
        rows = res["image"] = {}
        # what lrn apply passes: planes behind the (H, W, C) view (images._as_float)
        planar = np.empty(IMAGE_SHAPE[2:] + IMAGE_SHAPE[:2], np.float32).transpose(1, 2, 0)
        np.copyto(planar, img)
        rows["copyto"] = self.time("np.copyto(out, image)", partial(np.copyto, out, img))
        rows.update(self.time_rounds({
            "stats": ("array_stats(image, 2)", partial(array_stats, img, 2)),
            "stats_planar": ("array_stats(planar image, 2)", partial(array_stats, planar, 2)),
        }))
        self.target("stats", "array_stats(12 MP HWC image) / np.copyto", "12 MP",
                    rows["stats"].median_ms / rows["copyto"].median_ms, "<=",
                    IMAGE_STATS_TARGET)
        self.target("stats", "array_stats(12 MP planar-behind-HWC) / np.copyto", "12 MP",
                    rows["stats_planar"].median_ms / rows["copyto"].median_ms, "<=",
                    IMAGE_STATS_TARGET)

    # startup

    def startup(self) -> None:
        res = self.results["startup"] = {}
        runs = max(3, min(self.repeat, 7))
        log(f"  startup: fresh processes, {runs} runs each")
        imp = [_subprocess(IMPORT_SNIPPET) for _ in range(runs)]
        res["import_lrn_cli"] = _summary([r["import_ms"] for r in imp])
        res["numba_imported_by_import"] = any(r["numba"] for r in imp)
        res["numpy_imported_by_import"] = any(r["numpy"] for r in imp)
        numba_imp = [_subprocess(NUMBA_SNIPPET) for _ in range(runs)]
        res["import_numba"] = _summary([r["import_ms"] for r in numba_imp])

        warm = _subprocess(FIRST_CALL_SNIPPET)  # fills the cache when it is cold
        res["warming_process"] = warm
        if warm["misses"]:
            self.notes.append(
                f"the cache was cold: the warming process compiled {', '.join(warm['compiled'])}"
                f" ({warm['first_ms'] / 1e3:.1f} s)"
            )
        first = [_subprocess(FIRST_CALL_SNIPPET) for _ in range(runs)]
        res["first_call"] = _summary([r["first_ms"] for r in first])
        res["second_call"] = _summary([r["second_ms"] for r in first])
        res["cache_hits"] = [r["hits"] for r in first]
        res["cache_misses"] = [r["misses"] for r in first]
        res["across_forward_stats"] = first[-1]["across_forward"]
        res["compiled"] = sorted({n for r in first for n in r["compiled"]})
        # a call that loaded nothing from the cache did not run the kernels it counts
        res["compiled_nothing"] = all(r["misses"] == 0 and r["hits"] > 0 for r in first)
        res["threading_layer"] = first[-1]["threading_layer"]
        for key, label in (("import_lrn_cli", "import lrn_cli"), ("import_numba", "import numba"),
                           ("first_call", "first lrn() call (warm cache)"),
                           ("second_call", "second lrn() call")):
            log(f"    {label:<34} median {res[key]['median_ms']:9.2f} ms")
        log(f"    numba imported by `import lrn_cli`: {res['numba_imported_by_import']}; "
            f"compiled nothing: {res['compiled_nothing']}")


@cache  # one compiled kernel for both shapes
def _arithmetic_floor():
    """``y = x * (k + a x²)^-0.75`` elementwise in Numba-parallel chunks: the power LRN
    takes per value (two square roots and a division, correctly rounded) with no window at
    all.  What LRN costs beyond copying, even before reading any neighbour."""
    from numba import njit, prange

    @njit(parallel=True, error_model="numpy")
    def floor(x, y, a, k):
        n = x.shape[0]
        per = (n + 255) // 256
        for b in prange(256):
            lo = b * per
            hi = min(n, lo + per)
            xs = x[lo:hi]
            ys = y[lo:hi]
            for i in range(hi - lo):
                q = np.sqrt(k + a * (xs[i] * xs[i]))
                ys[i] = xs[i] / (q * np.sqrt(q))

    return floor


@cache  # one compiled kernel for both shapes
def _backward_floor():
    """``dx = g D^-b - 2 b a' x (g x D^(-b-1))`` with ``D = k + a' x²`` elementwise in
    Numba-parallel chunks (beta 0.75, float32 input, the library's refined float64 powers):
    the backward's arithmetic and memory traffic (x and g read, dx written) per value with
    no window at all.  What the gradient costs beyond copying before any neighbour is read."""
    from numba import njit, prange

    from lrn_cli._kernels_backward import _refined

    @njit(parallel=True, error_model="numpy")
    def floor(x, g, dx, a, k, c2):
        n = x.shape[0]
        per = (n + 255) // 256
        for b in prange(256):
            lo = b * per
            hi = min(n, lo + per)
            xs = x[lo:hi]
            gs = g[lo:hi]
            out = dx[lo:hi]
            for i in range(hi - lo):
                v = np.float64(xs[i])
                w = np.float64(gs[i])
                gain, over = _refined(k + a * (v * v), True)
                out[i] = w * gain - c2 * v * (w * v * over)

    return floor


def _torch_within(torch, F, xt, n):
    # Our default within convention (odd n): D = k + alpha/n² · (box sum of x² over n x n,
    # zero padded).  avg_pool2d with count_include_pad=True is box sum / n², so the factor
    # on the pooled value is alpha/n² · n² (= alpha): one fused expression, in place.
    coef = ALPHA / n**2 * n**2

    def run():
        with torch.no_grad():
            s = F.avg_pool2d(xt * xt, n, stride=1, padding=n // 2, count_include_pad=True)
            return s.mul_(coef).add_(K).pow_(-BETA).mul_(xt)

    return run


def _summary(values: list[float]) -> dict[str, Any]:
    return {"median_ms": statistics.median(values), "min_ms": min(values), "runs_ms": values}


IMPORT_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
import lrn_cli
t1 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "numba": "numba" in sys.modules,
                  "numpy": "numpy" in sys.modules}))
"""

NUMBA_SNIPPET = """
import json, time
import numpy
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3}))
"""

FIRST_CALL_SNIPPET = f"""
import json, time
import numpy as np
import lrn_cli
x = np.random.default_rng(0).standard_normal((2, 96, 27, 27), dtype=np.float32)
t0 = time.perf_counter()
lrn_cli.lrn(x, {SIZE}, {ALPHA!r}, {BETA!r}, {K!r})
t1 = time.perf_counter()
lrn_cli.lrn(x, {SIZE}, {ALPHA!r}, {BETA!r}, {K!r})
t2 = time.perf_counter()
import gc
import numba
from numba.core.dispatcher import Dispatcher
from lrn_cli import _kernels
hits = misses = 0
compiled = []
# every lrn_cli dispatcher alive, not only _kernels' names: the kernels compiled per variant
# (lrn_cli._jit.Variants) are dispatchers made on first use, not module attributes
found = {{f"{{o.py_func.__module__}}.{{o.py_func.__qualname__}}#{{id(o)}}": o
          for o in gc.get_objects()
          if isinstance(o, Dispatcher) and o.py_func.__module__.startswith("lrn_cli")}}
for name, obj in sorted(found.items()):
    st = obj.stats
    hits += sum(st.cache_hits.values())
    m = sum(st.cache_misses.values())
    misses += m
    if m:
        compiled.append(name.split("#")[0])
af = _kernels.across_forward.stats
print(json.dumps({{
    "first_ms": (t1 - t0) * 1e3, "second_ms": (t2 - t1) * 1e3,
    "hits": hits, "misses": misses, "compiled": compiled,
    "across_forward": {{"cache_hits": sum(af.cache_hits.values()),
                        "cache_misses": sum(af.cache_misses.values()),
                        "cache_path": str(af.cache_path)}},
    "threading_layer": numba.threading_layer(),
}}))
"""


def _subprocess(code: str) -> dict[str, Any]:
    import lrn_cli

    root = os.path.dirname(os.path.dirname(os.path.abspath(lrn_cli.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    if proc.returncode:
        raise RuntimeError(f"startup subprocess failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------
# report


def fms(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fsci(v: float) -> str:
    return np.format_float_scientific(v, trim="-", exp_digits=1)


def fx(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.2f}x" if v < 10 else f"{v:.1f}x"


def machine_info(threads: int, peers: Peers, threading_layer: str | None) -> dict[str, Any]:
    import numba

    import lrn_cli

    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "usable_cpus": usable_cpus(),
        "threads": threads,
        "numba_threading_layer": threading_layer,
        "numba_threads": numba.get_num_threads(),
        "peer_threads": dict(peers.config),
        "python": platform.python_version(),
        "versions": {
            "lrn_cli": lrn_cli.__version__,
            "numpy": np.__version__,
            "numba": numba.__version__,
            "llvmlite": dist_version("llvmlite"),
            "torch": dist_version("torch"),
            "tensorflow": dist_version("tensorflow", "tensorflow-cpu"),
            "onnxruntime": dist_version("onnxruntime"),
            "onnx": dist_version("onnx"),
        },
    }


def render(bench: Bench, machine: dict[str, Any]) -> str:
    out: list[str] = []
    w = out.append
    v = machine["versions"]
    w("### Machine and settings\n")
    w(f"- CPU: {machine['cpu']}, {machine['logical_cpus']} logical CPUs"
      f" ({machine['physical_cores'] or '?'} physical cores, {machine['usable_cpus']} usable)")
    peer_threads = "; ".join(f"{k}: {s}" for k, s in machine["peer_threads"].items())
    w(f"- threads: {machine['threads']} (numba: {machine['numba_threads']}, "
      f"layer {machine['numba_threading_layer']}"
      + (f"; {peer_threads}" if peer_threads else "") + ")")
    w("- versions: " + ", ".join(f"{k} {s}" for k, s in
                                 [("python", machine["python"]), *v.items()] if s))
    w(f"- float32, size {SIZE}, alpha {fsci(ALPHA)}, beta {BETA:g}, k {K:g} (within: sizes as"
      f" listed); {bench.repeat} timed calls after 2 warm-up calls; median (min) in ms;"
      " ratios are of medians; `np.copyto` is timed back to back (its own rounds); the"
      " within sizes, backward's floor and `out=`, the conv1 statistics and the LRN call"
      " they follow, and the 12 MP statistics are each timed in interleaved rounds (one"
      " call of each per round), so the two sides of their ratios see the same state of the"
      " machine; rounds of Numba calls only run back to back, the conv1 statistics' rounds"
      " wait 20 ms (busy) after each call and wake the next call's thread pool untimed"
      " (`_machine.ThreadWaker`)")
    w("")

    res = bench.results
    if "across" in res:
        names = list(res["across"])
        head = " | ".join(f"{n} {'x'.join(map(str, ACROSS_SHAPES[n]))} ms | {n} ratio"
                          for n in names)
        w("### Across channels, size 5\n")
        w(f"| implementation | {head} |")
        w("|---|" + "---:|---:|" * len(names))
        labels = [("copyto", "`np.copyto(out, x)`, back to back"),
                  ("floor", "elementwise `x·(k + a·x²)^-0.75`, no window (arithmetic floor)"),
                  ("lrn_out", "`lrn(x, out=out)`"),
                  ("copyto_cold", "`np.copyto(out, x)`, caches flushed (memory ceiling)"),
                  ("lrn_out_cold", "`lrn(x, out=out)`, caches flushed"),
                  ("lrn", "`lrn(x)` (allocating)"),
                  ("lrn_div_out", "`lrn(x, out=, divisor_out=)` (output and divisor)"),
                  ("lrn_div", "`lrn(x, return_divisor=True)` (allocating both)"),
                  ("lrn_nhwc", "`lrn(x_nhwc, channel_axis=-1, out=)` (channels-last input)"),
                  ("torch", "torch `F.local_response_norm`"),
                  ("tf", "TF `tf.nn.local_response_normalization` (NHWC, eager)"),
                  ("ort", "onnxruntime `LRN`")]
        for key, label in labels:
            cells = []
            for n in names:
                rows = res["across"][n]
                t = rows.get(key)
                if t is None:
                    cells += ["skipped", "–"]
                    continue
                if key in ("lrn_out", "floor"):
                    rtxt = fx(t.median_ms / rows["copyto"].median_ms) + " of copyto"
                elif key == "lrn_out_cold":
                    rtxt = fx(t.median_ms / rows["copyto_cold"].median_ms) + " of flushed copyto"
                elif key in ("lrn", "lrn_nhwc", "lrn_div_out", "lrn_div"):
                    rtxt = fx(t.median_ms / rows["lrn_out"].median_ms) + " of out="
                elif key in ("copyto", "copyto_cold"):
                    rtxt = "–"
                else:
                    rtxt = (f"{fx(t.median_ms / rows['lrn_out'].median_ms)}"
                            f" ({fx(t.median_ms / rows['lrn'].median_ms)})")
                cells += [f"{fms(t.median_ms)} ({fms(t.min_ms)})", rtxt]
            w(f"| {label} | " + " | ".join(cells) + " |")
        w("\nRatio: `lrn(out=)` and the arithmetic floor against `np.copyto`; the floor is"
          " the power LRN applies to each value (two correctly rounded square roots and a"
          " division, Numba-parallel) without reading any neighbour; \"caches flushed\": an"
          " untimed pass over a buffer of three times the last-level cache before each call"
          " (back to back, `np.copyto` of an array that fits the cache runs partly from it:"
          " that measures the cache, not the memory ceiling); `lrn(x)` against"
          " `lrn(out=)` (the cost"
          " of a fresh output's page faults); each peer against `lrn(out=)`, the issue's"
          " \"into a preallocated output\", and in parentheses against the allocating"
          " `lrn(x)` (how many times slower the peer is).\n")

    if "within" in res:
        name, shape = WITHIN_SHAPE
        w(f"### Within channel, {name} {'x'.join(map(str, shape))}\n")
        w("| size | `lrn(mode=\"within\", out=)` ms | vs size 3 | torch avg_pool2d ms"
          " | torch / lrn |")
        w("|---:|---:|---:|---:|---:|")
        t3 = res["within"]["3"]["lrn_out"].median_ms
        copyto = res["within"]["copyto"]["copyto"]
        for n, rows in res["within"].items():
            if n == "copyto":
                continue
            t = rows["lrn_out"]
            tt = rows.get("torch")
            w(f"| {n} | {fms(t.median_ms)} ({fms(t.min_ms)}) | {fx(t.median_ms / t3)} | "
              + (f"{fms(tt.median_ms)} ({fms(tt.min_ms)}) | {fx(tt.median_ms / t.median_ms)}"
                 if tt else "skipped | –") + " |")
        w(f"\n`np.copyto(out, x)` of the same array: {fms(copyto.median_ms)}"
          f" ({fms(copyto.min_ms)}) ms; size 5 is"
          f" {fx(res['within']['5']['lrn_out'].median_ms / copyto.median_ms)} of it.\n")

    if "backward" in res:
        w("### Backward, across, size 5\n")
        w("| shape | `np.copyto` ms | elementwise backward, no window (arithmetic floor) ms"
          " | `lrn_backward(x, g, out=out)` ms | of copyto"
          " | `lrn_backward(x, g)` ms"
          " | channels-last `out=` ms | torch autograd backward ms | torch / lrn (out=)"
          " | torch / lrn (allocating) |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, rows in res["backward"].items():
            t = rows["lrn"]
            to = rows["lrn_out"]
            tn = rows["lrn_nhwc"]
            tt = rows.get("torch")
            tc = rows["copyto"]
            tf = rows.get("floor")
            floor = (f"{fms(tf.median_ms)} ({fms(tf.min_ms)}): "
                     f"{fx(tf.median_ms / tc.median_ms)} of copyto" if tf else "–")
            w(f"| {n} {'x'.join(map(str, ACROSS_SHAPES[n]))} | {fms(tc.median_ms)}"
              f" ({fms(tc.min_ms)}) | {floor} | {fms(to.median_ms)}"
              f" ({fms(to.min_ms)}) | {fx(to.median_ms / tc.median_ms)} | "
              f"{fms(t.median_ms)} ({fms(t.min_ms)}) | "
              f"{fms(tn.median_ms)} ({fms(tn.min_ms)}) | "
              + (f"{fms(tt.median_ms)} ({fms(tt.min_ms)}) | {fx(tt.median_ms / to.median_ms)}"
                 f" | {fx(tt.median_ms / t.median_ms)}"
                 if tt else "skipped | – | –") + " |")
        w("\nThe arithmetic floor reads x and g and writes dx (three arrays: `np.copyto` moves"
          " two) and takes each value's refined float64 powers and its term of the gradient,"
          " without summing any window: what the gradient costs before any neighbour is"
          " read.\n")

    if "stats" in res:
        st = res["stats"]
        base = st["conv1"]["lrn_div"].median_ms
        w("### Statistics (what `lrn apply` measures)\n")
        w("| what | median ms (min) | ratio |")
        w("|---|---:|---:|")
        nonalloc = st["conv1"].get("lrn_div_out")
        for key, label in (("lrn_div", "conv1: `lrn(x, return_divisor=True)` (apply's call)"),
                           ("lrn_div_out", "conv1: `lrn(x, out=, divisor_out=)` (the same work"
                            " without page faults)"),
                           ("x", "conv1: `array_stats(x, 1)`"),
                           ("y", "conv1: `array_stats(y, 1)`"),
                           ("d", "conv1: `divisor_stats(d, beta)`"),
                           ("three", "conv1: the three statistics together"),
                           ("normalize", "conv1: `pipeline.normalize` (LRN + statistics)")):
            if key not in st["conv1"]:
                continue
            t = st["conv1"][key]
            if key == "lrn_div":
                ratio = "–"
            elif key == "lrn_div_out":
                ratio = f"{fx(t.median_ms / base)} of the allocating call"
            else:
                ratio = f"{fx(t.median_ms / base)} of the call"
                if nonalloc is not None and key == "three":
                    ratio += f", {fx(t.median_ms / nonalloc.median_ms)} of `out=, divisor_out=`"
            w(f"| {label} | {fms(t.median_ms)} ({fms(t.min_ms)}) | {ratio} |")
        img = st["image"]
        for key, label in (("copyto", "12 MP HWC float32: `np.copyto`"),
                           ("stats", "12 MP HWC float32: `array_stats(image, 2)`"),
                           ("stats_planar", "12 MP, planes behind the HWC view (what apply"
                            " passes): `array_stats`")):
            t = img[key]
            w(f"| {label} | {fms(t.median_ms)} ({fms(t.min_ms)}) | "
              + ("–" if key == "copyto" else
                 f"{fx(t.median_ms / img['copyto'].median_ms)} of copyto") + " |")
        w("")

    if "startup" in res:
        s = res["startup"]
        w("### Start-up (fresh processes)\n")
        w("| measurement | median ms (min) | note |")
        w("|---|---:|---|")
        w(f"| `import lrn_cli` | {fms(s['import_lrn_cli']['median_ms'])}"
          f" ({fms(s['import_lrn_cli']['min_ms'])}) | numba imported: "
          f"{'yes' if s['numba_imported_by_import'] else 'no'}, numpy imported: "
          f"{'yes' if s['numpy_imported_by_import'] else 'no'} |")
        w(f"| `import numba` alone (numpy already imported) | {fms(s['import_numba']['median_ms'])}"
          f" ({fms(s['import_numba']['min_ms'])}) | for reference |")
        hits = s["cache_hits"][-1]
        w(f"| first `lrn()` in a new process, warm cache | {fms(s['first_call']['median_ms'])}"
          f" ({fms(s['first_call']['min_ms'])}) | includes importing numba; compiled nothing: "
          f"{'yes' if s['compiled_nothing'] else 'no (' + ', '.join(s['compiled']) + ')'}"
          f" ({hits} cache hits) |")
        w(f"| second `lrn()` call, same process | {fms(s['second_call']['median_ms'])}"
          f" ({fms(s['second_call']['min_ms'])}) | input 2x96x27x27 |")
        w("")

    if bench.targets or "startup" in res:
        w("### Targets (from the issue)\n")
        w("| section | shape | target | goal | measured | result |")
        w("|---|---|---|---:|---:|---|")
        for t in bench.targets:
            w(f"| {t['section']} | {t['shape']} | {t['target']} | {t['goal']} | "
              f"{fx(t['measured'])} | {t['status']} |")
        if "startup" in res:
            s = res["startup"]
            w(f"| startup | – | `import lrn_cli` does not import numba | – | – | "
              f"{'MISS' if s['numba_imported_by_import'] else 'PASS'} |")
            w(f"| startup | – | first call with a warm cache compiles nothing | – | – | "
              f"{'PASS' if s['compiled_nothing'] else 'MISS'} |")
        w("")

    if bench.checks or bench.notes:
        w("### Notes\n")
        for line in bench.notes:
            w(f"- {line}")
        for line in bench.checks:
            w(f"- check, {line}")
        w("")
    return "\n".join(out)


def to_json(obj):
    if isinstance(obj, Timing):
        return asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------
# main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short run (5 repeats)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed calls per measurement (default 15, --quick 5)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numba and for every peer's intra-op pool (default: all)")
    p.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 5 if args.quick else 15
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad or not only:
        p.error(f"--only takes a comma-separated subset of {','.join(SECTIONS)}; got {args.only!r}")
    args.sections = [s for s in SECTIONS if s in only]
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import numba

    import lrn_cli

    cap = numba.config.NUMBA_NUM_THREADS
    threads = min(args.threads or usable_cpus(), cap)
    bench = Bench(args, threads)
    if args.threads and args.threads > cap:
        bench.notes.append(f"--threads {args.threads} capped at NUMBA_NUM_THREADS={cap}")
    log(f"bench_core: sections {','.join(args.sections)}, {args.repeat} repeats, "
        f"{threads} threads")

    # start-up first: fresh processes, before this one competes for anything
    if "startup" in args.sections:
        bench.startup()
    lrn_cli.set_threads(threads)
    threading_layer = None
    if any(s != "startup" for s in args.sections):
        lrn_cli.lrn(np.ones((1, 8, 4, 4), np.float32))
        threading_layer = numba.threading_layer()
    elif "startup" in bench.results:
        threading_layer = bench.results["startup"]["threading_layer"]
    for section in ("across", "within", "backward", "stats"):
        if section in args.sections:
            getattr(bench, section)()

    machine = machine_info(threads, bench.peers, threading_layer)
    print(render(bench, machine))
    if args.json:
        payload = {
            "machine": machine,
            "settings": {"size": SIZE, "alpha": ALPHA, "beta": BETA, "k": K,
                         "dtype": "float32", "repeat": args.repeat, "threads": threads,
                         "sections": args.sections},
            "results": to_json(bench.results),
            "targets": bench.targets,
            "checks": bench.checks,
            "notes": bench.notes,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        log(f"results saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
