#!/usr/bin/env python
"""Time ``lrn(mode="within", out=)`` on conv1 (32x96x55x55 float32) at sizes 3, 5, 11 and 21
and ``np.copyto`` of the same array, in interleaved rounds, back to back (no pauses: every
call is on Numba's pool; :func:`bench_core.measure_rounds`), and print one JSON line of
medians in ms.

For an A/B of two commits, run it from two checkouts in alternating processes, each with
its own Numba cache, and compare the medians of the rounds (sessions 12 and 13)::

    git worktree add /tmp/A <commit>
    for i in 1 2 3; do
      (cd /tmp/A && NUMBA_CACHE_DIR=/tmp/cacheA PYTHONPATH=. python benchmarks/within_sizes.py)
      NUMBA_CACHE_DIR=/tmp/cacheB PYTHONPATH=. python benchmarks/within_sizes.py
    done

(a checkout older than this script runs this one by its path: it imports the ``bench_core``
beside it, and ``lrn_cli`` from ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import numpy as np
from bench_core import measure_rounds

SIZES = (3, 5, 11, 21)


def main() -> None:
    from lrn_cli import lrn, set_threads

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    set_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((32, 96, 55, 55), dtype=np.float32)
    calls = {"copyto": partial(np.copyto, np.empty_like(x), x)}
    for n in SIZES:
        calls[str(n)] = partial(lrn, x, n, 1e-4, 0.75, 2.0, mode="within", out=np.empty_like(x))
    got = measure_rounds(calls, args.repeat)  # no pause: one pool, back to back
    med = {key: round(t.median_ms, 3) for key, t in got.items()}
    med["21/3"] = round(med["21"] / med["3"], 3)
    med["5/copyto"] = round(med["5"] / med["copyto"], 3)
    print(json.dumps(med))


if __name__ == "__main__":
    main()
