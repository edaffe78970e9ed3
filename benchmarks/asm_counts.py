#!/usr/bin/env python
"""Count packed and scalar roots, divisions and conversions in the compiled backward kernels.

Every variant of the across backward drivers (C-contiguous rings and channels last, 5-tap
and general, beta 0.75 and 0.5) is compiled in an empty ``NUMBA_CACHE_DIR`` (Numba shows no
assembly for cached code) and its assembly is split per Numba function.  For each function
the table gives the instruction counts of its block with the most ``ymm``/``zmm``
instructions (the hot loop, when it is vectorised) and of the whole function.  A refined
loop is vectorised when that block holds ``vsqrtps``/``vdivps`` (the float32 seeds) and
packed multiplies; ``vsqrtsd`` and ``vdivsd`` belong in the exact fallback and the loop
epilogues only.

    PYTHONPATH=. python benchmarks/asm_counts.py
    PYTHONPATH=. python benchmarks/asm_counts.py --function _five_step --show-loop

Output is a Markdown table on stdout.  A diagnostic, not a benchmark: nothing is timed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections import Counter

OPS = ("vsqrtps", "vrsqrtps", "vsqrtpd", "vsqrtss", "vrsqrtss", "vsqrtsd", "vdivps",
       "vdivpd", "vdivss", "vdivsd", "vmulpd", "vmulsd", "vcvtps2pd", "vcvtss2sd")
_FUNC = re.compile(r"^_ZN\S*?_kernels_backward\d+(\w+?)B\d")


def _functions(asm: str) -> dict[str, list[list[str]]]:
    """Numba function name -> its instructions, cut into blocks at labels."""
    funcs: dict[str, list[list[str]]] = {}
    blocks: list[list[str]] | None = None
    for line in asm.split("\n"):
        m = _FUNC.match(line)
        if m:
            blocks = funcs.setdefault(m.group(1), [[]])
        elif line and not line[0].isspace() and not line.startswith(".LBB"):
            blocks = None  # another symbol (wrappers, NRT helpers)
        elif blocks is not None:
            if line.startswith(".LBB"):
                blocks.append([])
            elif line.startswith("\t") and not line.strip().startswith((".", "#")):
                blocks[-1].append(line.strip())
    return funcs


def _count(lines: list[str]) -> Counter:
    return Counter(line.split()[0] for line in lines)


def _compile_all() -> list[tuple[str, str]]:
    """(variant name, assembly) of every backward variant, after one small call each."""
    import numpy as np

    from lrn_cli import _kernels_backward as kb
    from lrn_cli import lrn_backward

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 24, 9, 9)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    xl, gl = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, g))
    for size in (5, 3):
        for beta in (0.75, 0.5):
            lrn_backward(x, g, size, 1e-4, beta, 2.0)
            lrn_backward(xl, gl, size, 1e-4, beta, 2.0, channel_axis=-1)
    out = []
    for variants in (kb._ring_variants, kb._channels_last_variants):
        for dispatcher in variants.dispatchers():
            for sig in dispatcher.signatures:
                out.append((dispatcher.__name__, dispatcher.inspect_asm(sig)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--function", help="only Numba functions whose name contains this")
    p.add_argument("--show-loop", action="store_true", help="also print each hot loop")
    args = p.parse_args(argv)
    if "numba" in sys.modules:
        raise SystemExit("numba is already imported: NUMBA_CACHE_DIR cannot be set")
    with tempfile.TemporaryDirectory(prefix="lrn-asm-") as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache
        compiled = _compile_all()
    print("| variant | function | loop: " + " ".join(OPS) + " | function: " + " ".join(OPS)
          + " |")
    print("|---|---|---|---|")
    for variant, asm in compiled:
        for name, blocks in _functions(asm).items():
            if args.function and args.function not in name:
                continue
            hot = max(blocks, key=lambda b: sum(("ymm" in i or "zmm" in i) for i in b))
            loop, whole = _count(hot), _count([i for b in blocks for i in b])
            print(f"| {variant} | {name} | " + " ".join(str(loop[o]) for o in OPS) + " | "
                  + " ".join(str(whole[o]) for o in OPS) + " |")
            if args.show_loop:
                print("\n".join("    " + line for line in hot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
