"""The TensorFlow export: a ``.py`` file defining ``def lrn(x)`` on a ``tf.Tensor``.

No pooling (TensorFlow's CPU pooling is NHWC only, and a pool over the channel axis needs a
5-D reshape): the window sum is one slice of the zero-padded tensor per tap along each summed
axis, with static bounds, so it traces once in ``tf.function`` for any batch and spatial size
and runs in either layout on CPU and GPU.  Each square is added directly (no running sums).
"""

from __future__ import annotations

from typing import Any

from lrn_cli.porting.export import fill_body, header
from lrn_cli.porting.semantics import Semantics

_BODY = '''
import tensorflow as tf

__all__ = ["lrn"]

{constants}

def _window_sum(t, axis, lo, hi):
    """Sum of t over [i-lo, i+hi] along axis, zero beyond the ends: one slice of the
    zero-padded tensor per tap, each added directly (no running sum that could cancel)."""
    paddings = [[0, 0]] * 4
    paddings[axis] = [lo, hi]
    p = tf.pad(t, paddings)
    taps = lo + hi + 1
    total = None
    for offset in range(taps):
        stop = offset - (taps - 1)  # the slice keeps the axis' own length
        index = [slice(None)] * 4
        index[axis] = slice(offset, stop if stop < 0 else None)
        part = p[tuple(index)]
        total = part if total is None else total + part
    return total


def lrn(x, lo=LO, hi=HI, alpha=ALPHA, k=K, beta=BETA):
    """{mode_title} LRN of a 4-D {layout} tensor: x * (k + alpha * S) ** -beta (see the
    comment at the top of this file); usable inside tf.function."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank is not None and x.shape.rank != 4:
        raise ValueError(f"expected a 4-D {layout} tensor, got shape {{x.shape}}")
    s = x * x
    for axis in SUMMED_AXES:
        s = _window_sum(s, axis, lo, hi)
    return x * tf.pow(k + alpha * s, -beta)
'''


def source(sem: Semantics, *, layout: str, origin: dict[str, Any]) -> str:
    """The whole file."""
    top = header("TensorFlow", "tensorflow", sem, layout, origin,
                 "Needs only tensorflow; float32 (float64 works too); usable in tf.function.")
    body = fill_body(_BODY, sem, layout)
    return top + body
