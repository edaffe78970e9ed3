"""LLVM intrinsics the kernels call from Numba: a software prefetch.

Loops whose arithmetic (roots, divisions, float64 refinements) sets their pace read memory
too slowly for the hardware prefetchers to keep data that is not in the cache coming: on
session 13's Intel VM the divisor statistics of a conv1-sized array took 2x as long when
the array had been evicted as when it was in the cache.  Such loops ask for the line
``PREFETCH_AHEAD`` values ahead themselves.  A prefetch is a hint: it never faults (an
address beyond the array is fine) and changes no value.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: How far ahead (values) the loops prefetch their data: 2 KB of float32, 32 cache lines.
PREFETCH_AHEAD = 512


@intrinsic
def _prefetch(typingctx, arr, index):
    """A software prefetch (``llvm.prefetch``: read, into every cache level) of the line
    holding value ``index`` of the array's buffer counted from its first value (for a
    C-contiguous array, ``arr.reshape(-1)[index]``), with no bounds check (see the module
    docstring)."""
    if not (isinstance(arr, types.Array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, index), codegen
