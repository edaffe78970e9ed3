#!/usr/bin/env python
"""Time ``lrn(mode="within", out=)`` on conv1 (32x96x55x55 float32) at sizes 3, 5, 11 and 21
and ``np.copyto`` of the same array, in interleaved rounds, back to back (no pauses: every
call is on Numba's pool), and print one JSON line of medians in ms.

For an A/B of two commits, run it from two checkouts in alternating processes, each with
its own Numba cache, and compare the medians of the rounds (sessions 12 and 13)::

    git worktree add /tmp/A <commit>
    for i in 1 2 3; do
      (cd /tmp/A && NUMBA_CACHE_DIR=/tmp/cacheA PYTHONPATH=. python benchmarks/within_sizes.py)
      NUMBA_CACHE_DIR=/tmp/cacheB PYTHONPATH=. python benchmarks/within_sizes.py
    done

(a checkout older than this script runs a copy of it from elsewhere).
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import numpy as np

SIZES = (3, 5, 11, 21)


def main() -> None:
    from lrn_cli import lrn, set_threads

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    set_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((32, 96, 55, 55), dtype=np.float32)
    outs = {n: np.empty_like(x) for n in SIZES}
    copy = np.empty_like(x)
    for n in SIZES:
        for _ in range(2):
            lrn(x, n, 1e-4, 0.75, 2.0, mode="within", out=outs[n])
    times: dict[str, list[float]] = {"copyto": [], **{str(n): [] for n in SIZES}}
    gc.disable()
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        np.copyto(copy, x)
        times["copyto"].append(time.perf_counter() - t0)
        for n in SIZES:
            t0 = time.perf_counter()
            lrn(x, n, 1e-4, 0.75, 2.0, mode="within", out=outs[n])
            times[str(n)].append(time.perf_counter() - t0)
    med = {key: round(float(np.median(t)) * 1e3, 3) for key, t in times.items()}
    med["21/3"] = round(med["21"] / med["3"], 3)
    med["5/copyto"] = round(med["5"] / med["copyto"], 3)
    print(json.dumps(med))


if __name__ == "__main__":
    main()
