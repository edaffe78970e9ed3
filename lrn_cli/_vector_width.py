"""The vector width LLVM prefers for the kernels of some modules: 512 bits where the CPU has
AVX-512.

LLVM tunes recent Intel cores (Ice Lake and later, Sapphire Rapids, the "rocketlake" a VM
reports) to prefer 256-bit vectors even though they have 512-bit registers, to avoid the
frequency drop wide vectors once caused.  The statistics, within-channel and backward
kernels are bound by arithmetic on the two vector ports, not by memory: with 512-bit
vectors they ran 12-20% faster on session 14's Sapphire Rapids VM (see benchmarks/README.md,
"Speed II, session 14").  The across-channel forward kernel is bound by memory and ran
10% slower with them (its unaligned 64-byte loads each cross a cache line), so its module
is not listed.

Numba has no per-function option for it: :func:`install` wraps Numba's
``CPUCodeLibrary.add_ir_module`` (where each compiled function's LLVM module enters its
library, before LLVM optimises it) and adds the function attribute
``"prefer-vector-width"="512"`` to the functions of a module that defines or calls a
function of :data:`WIDE_MODULES` (so the parallel gufunc body Numba generates for a
``prange`` of those modules gets it too).  Nothing else Numba compiles in the process is
touched.  The width changes no result: without fast-math LLVM vectorises only what keeps
every operation and its order, so each value is computed by the same IEEE operations at
any width (the bit-identity tests hold it).  Where the wrapper cannot be installed (another
Numba) the kernels compile as before.
"""

from __future__ import annotations

#: Modules whose kernels (and the gufuncs of their ``prange`` loops) prefer 512-bit vectors.
WIDE_MODULES = ("lrn_cli._stats_kernels", "lrn_cli._kernels_within",
                "lrn_cli._kernels_backward")

#: The LLVM function attribute added.
ATTRIBUTE = '"prefer-vector-width"="512"'


def _mangled(module: str) -> str:
    """The prefix of Numba's (Itanium) mangled names of the functions of ``module``."""
    return "".join(f"{len(part)}{part}" for part in module.split("."))


_MARKS = tuple(_mangled(m) for m in WIDE_MODULES)


def wants_wide(names) -> bool:
    """Whether functions named ``names`` (mangled, defined or declared in one LLVM module)
    belong to, or call, a kernel of :data:`WIDE_MODULES`."""
    return any(mark in name for name in names for mark in _MARKS)


def _widen(ir_module) -> None:
    """Add :data:`ATTRIBUTE` to the functions ``ir_module`` (llvmlite IR) defines, if it
    defines or calls a kernel of :data:`WIDE_MODULES`."""
    functions = list(ir_module.functions)
    if not wants_wide(f.name for f in functions):
        return
    for f in functions:
        if not f.is_declaration:
            # llvmlite's attribute set only admits enum attributes: a string attribute
            # ("key"="value") is written as it is into the function's definition
            set.add(f.attributes, ATTRIBUTE)


_INSTALLED = False


def install() -> None:
    """Wrap Numba's ``CPUCodeLibrary.add_ir_module`` once per process (see the module's
    docstring)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    try:
        from numba.core.codegen import CPUCodeLibrary
    except ImportError:  # another Numba: the kernels keep LLVM's default width
        return
    original = getattr(CPUCodeLibrary, "add_ir_module", None)
    if original is None or getattr(original, "_lrn_widened", False):
        return

    def add_ir_module(self, ir_module):
        try:
            _widen(ir_module)
        except Exception:  # noqa: BLE001 - never fail a compile over a tuning hint
            pass
        return original(self, ir_module)

    add_ir_module._lrn_widened = True  # type: ignore[attr-defined]
    CPUCodeLibrary.add_ir_module = add_ir_module  # type: ignore[method-assign]
