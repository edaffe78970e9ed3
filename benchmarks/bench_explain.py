#!/usr/bin/env python
"""Benchmark ``lrn explain`` on conv1-sized pairs (1x96x55x55 float32, AlexNet's conv1 after
ReLU, ``samples/arrays/conv1_relu_nchw.npy``): both modes and every axis tried (3 axes
across, 3 pairs within), as ``lrn explain IN OUT`` does without options.

Cases: the output of Caffe's across LRN (n=5, alpha=1e-4, k=1), of oneDNN's within LRN
(n=5, k=2), of an even ONNX window (n=4), the weak-LRN case (alpha 1e-6: the ranges search
runs), a not-LRN pair (unrelated values: every candidate fails, the causes are looked for),
and the restricted search (``--layout NCHW --mode across``).  Each case runs once to warm
the kernels (they compile on first use) and then ``--repeat`` times; the table gives the
median and the fastest wall time in seconds.  The issue's target ("a few seconds at most on
2 cores") is reported, not asserted.

    PYTHONPATH=. python benchmarks/bench_explain.py            # 5 runs each
    PYTHONPATH=. python benchmarks/bench_explain.py --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model, log, usable_cpus

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from lrn_cli import explain
    from lrn_cli.porting.semantics import Semantics

    x = np.load(ROOT / "samples" / "arrays" / "conv1_relu_nchw.npy")
    rng = np.random.default_rng(0)
    cases = [
        ("caffe across n=5", Semantics.of("caffe", "across", 5, 1e-4, 0.75, 1.0).apply(x), {}),
        ("onednn within n=5", Semantics.of("onednn", "within", 5, 1e-4, 0.75, 2.0).apply(x),
         {}),
        ("onnx across n=4 (even)", Semantics.of("onnx", "across", 4, 1e-4, 0.75, 2.0).apply(x),
         {}),
        ("weak (alpha 1e-6)", Semantics.of("caffe", "across", 5, 1e-6, 0.75, 1.0).apply(x), {}),
        ("not-lrn (unrelated)", rng.random(x.shape).astype(np.float32), {}),
        ("caffe, --layout NCHW --mode across",
         Semantics.of("caffe", "across", 5, 1e-4, 0.75, 1.0).apply(x),
         {"layout": "NCHW", "mode": "across"}),
    ]
    print(f"lrn explain on {x.shape} {x.dtype}; {cpu_model()}, {usable_cpus()} CPUs")
    print(f"{'case':38} {'verdict':9} {'median s':>9} {'min s':>7}  fit")
    for name, y, kw in cases:
        log(f"{name}: warm-up")
        r = explain(x, y, **kw)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = explain(x, y, **kw)
            times.append(time.perf_counter() - t0)
        fit = r.fit.semantics.describe() if r.fit is not None else "-"
        print(f"{name:38} {r.verdict:9} {statistics.median(times):9.2f} {min(times):7.2f}  "
              f"{fit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
