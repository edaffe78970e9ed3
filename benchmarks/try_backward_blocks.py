#!/usr/bin/env python
"""An alternative to the 5-tap backward's ring sweep, measured and not kept (session 11).

``lrn_cli._kernels_backward._five_sweep`` finishes one channel per pass over the pixels and
keeps pair sums, ``t`` and ``u`` of the channels in flight in float64 ring rows (~6 loads and
4 stores of ring entries per value).  The *register blocks* here finish ``B`` channels per
pass with every intermediate in registers: per block they read ``B + 4`` rows of ``x``, ``B``
of ``g`` and 6 carried rows (``t`` of the previous block's last 4 channels, ``u`` of its last
2), and write ``B`` rows of ``dx`` and 6 carried rows.  Same summation trees, same refined
powers, same exact fallback: the script checks the bits against the library's sweep on every
shape before timing.

The block loop needs Numba's internal ``noalias`` flag: without it LLVM would need more than
its limit of 128 runtime overlap checks (``-vectorize-memory-check-threshold``) and leaves the
loop scalar ("loop not vectorized: too many memory checks needed").

    PYTHONPATH=. python benchmarks/try_backward_blocks.py                  # B = 5, 6, 8
    PYTHONPATH=. python benchmarks/try_backward_blocks.py --blocks 6 --threads 1 --offsets

``--offsets`` times each shape with ``x``, ``g`` and ``dx`` at several page offsets from each
other (the blocks' 28 row streams are sensitive to them; the sweep much less).  Results and
what they meant are in benchmarks/README.md (*Speed II, sessions 10 and 11*).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _noalias_compiler():
    from numba.core.compiler import Compiler

    class NoAliasCompiler(Compiler):
        """Numba's default pipeline with every array argument marked ``noalias``."""

        def define_pipelines(self):
            self.state.flags.noalias = True
            return super().define_pipelines()

    return NoAliasCompiler


def make_blocks(block: int):
    """The register-block gradient for ``block`` channels per pass: ``run(x, g, dx, a, k,
    beta, chunk, quarter)`` on (outer, C, inner) float32 arrays, 5-tap centred window."""
    from numba import njit, prange

    from lrn_cli._jit import Variants
    from lrn_cli._kernel_parts import _OPTS
    from lrn_cli._kernels_backward import _exact_gain, _refined, _seed_unusable

    opts = dict(_OPTS, cache=False)

    @njit(**opts)
    def sq_in(v, inside):
        return v * v if inside else 0.0

    @njit(**opts)
    def t_u(d, g, x, inside, quarter, careful):
        gain, over = _refined(d, quarter)
        g = np.float64(g)
        unusable = _seed_unusable(d)
        if careful and unusable:
            gain = _exact_gain(d, quarter)
            t = g * x * gain / d
        else:
            t = g * x * over
        return (t if inside else 0.0), g * gain, (unusable and inside)

    # The block body, written out for `block` (T{r}: channel cs-2+r, U{j}/x{j}: cs+j).
    rows = block + 4
    src = ["def five_block(xo, go, dst, db, carry, rd, wr, cs, a, k, c2, quarter):",
           "    last = xo.shape[0] - 1"]
    for j in range(rows):
        src += [f"    r{j} = min(max(cs + {j}, 0), last)", f"    i{j} = 0 <= cs + {j} <= last"]
    src += ["    cr = carry[rd]", "    cw = carry[wr]", "    bad = 0",
            "    for t in range(xo.shape[1]):"]
    for j in range(rows):
        src += [f"        x{j} = np.float64(xo[r{j}, t])", f"        q{j} = sq_in(x{j}, i{j})"]
    src += [f"        p{j} = q{j} + q{j + 1}" for j in range(rows - 2)]
    for i in range(block):
        src += [f"        T{i + 4}, U{i + 2}, b{i} = t_u(k + a * ((p{i} + p{i + 2}) + q{i + 4}), "
                f"go[r{i + 2}, t], x{i + 2}, i{i + 2}, quarter, CAREFUL)", f"        bad += b{i}"]
    src += [f"        T{r} = cr[{r}, t]" for r in range(4)]
    src += ["        U0 = cr[4, t]", "        U1 = cr[5, t]"]
    src += [f"        s{r} = T{r} + T{r + 1}" for r in range(block + 2)]
    src += [f"        dst[db + {j}, t] = U{j} - c2 * x{j} * ((s{j} + s{j + 2}) + T{j + 4})"
            for j in range(block)]
    src += [f"        cw[{r}, t] = T{block + r}" for r in range(4)]
    src += [f"        cw[4, t] = U{block}", f"        cw[5, t] = U{block + 1}", "    return bad"]
    scope = {"np": np, "sq_in": sq_in, "t_u": t_u, "CAREFUL": False}
    exec("\n".join(src), scope)  # noqa: S102 - generated from the template above
    variants = Variants(scope["five_block"], pipeline_class=_noalias_compiler(), **opts)
    fast, careful = variants(CAREFUL=False), variants(CAREFUL=True)

    @njit(parallel=True, **opts)
    def run(x, gy, dx, a, k, beta, chunk, quarter):
        outer, channels, inner = x.shape
        nchunks = (channels + chunk - 1) // chunk
        c2 = 2.0 * beta * a
        for item in prange(outer * nchunks):
            o = item // nchunks
            c0 = (item % nchunks) * chunk
            c1 = min(channels, c0 + chunk)
            xo, go, do = x[o], gy[o], dx[o]
            carry = np.empty((2, 6, inner), dtype=np.float64)
            scratch = np.empty((block, inner), dtype=do.dtype)
            m = 0
            for cs in range(c0 - 4, c1, block):  # the first block's last outputs are c0..
                rd, wr = (m + 1) & 1, m & 1
                m += 1
                whole = c0 <= cs and cs + block <= c1
                dst, db = (do, cs) if whole else (scratch, 0)
                if fast(xo, go, dst, db, carry, rd, wr, cs, a, k, c2, quarter):
                    careful(xo, go, dst, db, carry, rd, wr, cs, a, k, c2, quarter)
                if not whole:
                    for j in range(block):
                        if c0 <= cs + j < c1:
                            for t in range(inner):
                                do[cs + j, t] = scratch[j, t]

    return run


def _at_offset(shape, offset_bytes):
    """An empty float32 array of ``shape`` starting ``offset_bytes`` past a page boundary."""
    n = int(np.prod(shape))
    buf = np.empty(n + 2048, np.float32)
    skip = (-buf.ctypes.data % 4096 + offset_bytes) // 4
    return buf[skip:skip + n].reshape(shape)


def _time_sides(x, g, want, got, chunk, runs, rounds):
    """Check every block size's bits against the sweep, then time them all in interleaved
    rounds: ``{name: [seconds, ...]}``."""
    from lrn_cli._jit import BETA_075
    from lrn_cli._kernels_backward import across_rows_backward_contiguous

    a, k, beta = 1e-4 / 5, 2.0, 0.75

    def sweep():
        across_rows_backward_contiguous(x, g, want, 2, 2, a, k, beta, BETA_075, chunk, True)

    sides = {"sweep": sweep}
    for b, run in runs.items():
        sides[f"B{b}"] = (lambda run=run: run(x, g, got, a, k, beta, chunk, True))
    for name, fn in sides.items():
        fn()
        if name != "sweep":
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), name
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", default="5,6,8", help="block sizes to try")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--offsets", action="store_true",
                        help="also vary the page offsets of x, g and dx")
    args = parser.parse_args()
    import numba

    from lrn_cli import dispatch

    if args.threads:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    runs = {b: make_blocks(b) for b in (int(v) for v in args.blocks.split(","))}
    offsets = ([(0, 0, 0), (0, 1024, 2048), (1024, 0, 0), (0, 0, 2048)] if args.offsets
               else [(0, 0, 0)])
    rng = np.random.default_rng(0)
    print(f"{threads} threads; min (median) ms of {args.rounds} interleaved rounds")
    for shape in [(32, 96, 3025), (32, 256, 729), (400, 26, 256)]:
        x0 = rng.standard_normal(shape).astype(np.float32)
        g0 = rng.standard_normal(shape).astype(np.float32)
        chunk = dispatch.channel_chunk(shape[0], shape[1], threads)
        for off in offsets:
            x, g, want, got = (_at_offset(shape, o) for o in off + (off[2],))
            x[...] = x0
            g[...] = g0
            times = _time_sides(x, g, want, got, chunk, runs, args.rounds)
            cells = " ".join(f"{n} {min(v) * 1e3:.2f} ({np.median(v) * 1e3:.2f})"
                             for n, v in times.items())
            print(f"{'x'.join(map(str, shape))} chunk {chunk} offsets {off}: {cells}",
                  flush=True)


if __name__ == "__main__":
    main()
