"""Kernels compiled once per combination of compile-time constants, only when used.

A kernel that takes its options (which outputs to write, the closed form of ``D ** -beta``,
the window class) as runtime arguments is compiled with every branch, and every helper
those branches call: most of a first run's compile time went into code that run never
executes.  :class:`Variants` compiles the kernel's Python function separately for each
combination of module-level constants it reads (``WANT_D``, ``BMODE``, ...): Numba treats
globals as constants and prunes the branches they rule out before typing, so their helpers
are never compiled.  Each variant has its own name, hence its own entry in Numba's on-disk
cache (``<module>.<kernel>__<constants>-<line>.nbi``), and is compiled (or loaded from the
cache) on its first call only.
"""

from __future__ import annotations

import types
from typing import Any, Literal, TypedDict


class JitOptions(TypedDict, total=False):
    """Options of ``numba.njit`` the kernel modules use (typed, so ``njit(**opts)`` checks)."""

    cache: bool
    error_model: Literal["python", "numpy"]
    nogil: bool
    parallel: bool
    fastmath: bool


#: What every kernel compiles with: cached on disk, NumPy's error model (a float division by
#: zero gives inf/NaN, no ZeroDivisionError checks in the loops), the GIL released.
KERNEL_OPTIONS: JitOptions = {"cache": True, "error_model": "numpy", "nogil": True}

# beta fast paths of the kernels: gain = D ** -beta
BETA_GENERAL, BETA_075, BETA_05, BETA_1, BETA_0, BETA_025, BETA_15, BETA_2 = range(8)


def beta_mode(beta: float) -> int:
    """Pick the closed form for ``D ** -beta`` (exact same maths, far cheaper than pow)."""
    return {0.75: BETA_075, 0.5: BETA_05, 1.0: BETA_1, 0.0: BETA_0, 0.25: BETA_025,
            1.5: BETA_15, 2.0: BETA_2}.get(float(beta), BETA_GENERAL)


class Variants:
    """``kernel(**constants)``: the compiled variant of ``pyfunc`` for these constants.

    Parameters
    ----------
    pyfunc
        The kernel's Python function.  The constants are globals of its module; the values
        the module defines are defaults that are never compiled.
    **jit_options
        Options for ``numba.njit`` (``parallel``, ``cache``, ...).
    """

    def __init__(self, pyfunc, **jit_options: Any) -> None:
        self.pyfunc = pyfunc
        self.jit_options = jit_options
        self.__name__ = pyfunc.__name__
        self.__doc__ = pyfunc.__doc__
        self._compiled: dict[tuple, Any] = {}

    def __call__(self, **constants: Any):
        """The dispatcher of the variant for ``constants`` (created on first request)."""
        key = tuple(sorted(constants.items()))
        try:
            return self._compiled[key]
        except KeyError:
            pass
        missing = [name for name in constants if name not in self.pyfunc.__globals__]
        if missing:
            raise TypeError(f"{self.__name__} reads no global {missing[0]!r}")
        from numba import njit

        name = self.__name__ + "__" + "_".join(f"{k.lower()}{_tag(v)}" for k, v in key)
        scope = dict(self.pyfunc.__globals__)
        scope.update(constants)
        func = types.FunctionType(self.pyfunc.__code__, scope, name,
                                  self.pyfunc.__defaults__, self.pyfunc.__closure__)
        func.__qualname__ = name  # names the variant's entry in Numba's cache
        func.__module__ = self.pyfunc.__module__
        func.__doc__ = self.pyfunc.__doc__
        dispatcher = njit(**self.jit_options)(func)
        self._compiled[key] = dispatcher
        return dispatcher

    def dispatchers(self) -> list:
        """The variants created so far (for counting what was compiled)."""
        return list(self._compiled.values())


def _tag(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"compile-time constants are ints or bools, not {value!r}")
