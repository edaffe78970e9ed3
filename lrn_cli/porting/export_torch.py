"""The PyTorch export: a ``.py`` file defining ``class LRN(torch.nn.Module)`` and ``lrn(x)``.

The window sum is one zero-padded slice per tap along each summed axis (channels across; H
then W within), each square added directly: exact to a few ulps however the values spread,
and autograd through it is the exact gradient (the adjoint window, the mirror of the forward
one, comes out of the slices by itself).
"""

from __future__ import annotations

from typing import Any

from lrn_cli.porting.export import fill_body, header
from lrn_cli.porting.semantics import Semantics

_BODY = '''
import torch
import torch.nn.functional as F

__all__ = ["LRN", "lrn"]

{constants}

def _window_sum(t, dim, lo, hi):
    """Sum of t over [i-lo, i+hi] along dim, zero beyond the ends: one slice of the
    zero-padded tensor per tap, each added directly (no running sum that could cancel)."""
    n = t.shape[dim]
    p = F.pad(t, [0, 0] * (t.dim() - 1 - dim) + [lo, hi])
    total = p.narrow(dim, 0, n)
    for offset in range(1, lo + hi + 1):
        total = total + p.narrow(dim, offset, n)
    return total


def lrn(x, lo=LO, hi=HI, alpha=ALPHA, k=K, beta=BETA):
    """LRN of a 4-D {layout} tensor: x * (k + alpha * S) ** -beta."""
    if x.dim() != 4:
        raise ValueError(f"expected a 4-D {layout} tensor, got shape {{tuple(x.shape)}}")
    s = x * x
    for dim in SUMMED_AXES:
        s = _window_sum(s, dim, lo, hi)
    return x * (k + alpha * s).pow(-beta)


class LRN(torch.nn.Module):
    """{mode_title} Local Response Normalization on {layout} tensors (see the comment at the
    top of this file); the defaults are the exported layer's."""

    def __init__(self, lo=LO, hi=HI, alpha=ALPHA, k=K, beta=BETA):
        super().__init__()
        self.lo, self.hi = int(lo), int(hi)
        self.alpha, self.k, self.beta = float(alpha), float(k), float(beta)

    def forward(self, x):
        return lrn(x, self.lo, self.hi, self.alpha, self.k, self.beta)

    def extra_repr(self):
        return (f"window=[-{{self.lo}}, +{{self.hi}}] on axes {{SUMMED_AXES}}, "
                f"alpha'={{self.alpha!r}}, k'={{self.k!r}}, beta={{self.beta!r}}, "
                f"layout={{LAYOUT}}")
'''


def source(sem: Semantics, *, layout: str, origin: dict[str, Any]) -> str:
    """The whole file."""
    top = header("PyTorch", "pytorch", sem, layout, origin,
                 "Needs only torch; float32 and float64; autograd gives the exact gradient.")
    body = fill_body(_BODY, sem, layout)
    return top + body
