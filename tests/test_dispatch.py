"""The dispatch table: which kernel (and which work-item sizes) each input takes.

A speed change that re-routes a shape shows up here as a failing row: update the row and say
in the commit which shapes moved and what was measured.  Plans are computed without running
anything (``np.zeros`` inputs are never touched) and with ``threads=2`` so they do not
depend on the machine.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lrn_cli import dispatch
from lrn_cli.dispatch import plans


def _nhwc(n, c, h, w, dtype=np.float32):
    return np.zeros((n, h, w, c), dtype)


#: name -> (input maker taking a dtype, channel axis)
LAYOUTS = {
    "NCHW conv1": (lambda dt: np.zeros((32, 96, 55, 55), dt), 1),
    "NCHW conv2": (lambda dt: np.zeros((32, 256, 27, 27), dt), 1),
    "NCHW batch 1": (lambda dt: np.zeros((1, 96, 55, 55), dt), 1),
    "NHWC conv1": (lambda dt: _nhwc(32, 96, 55, 55, dt), -1),
    "NHWC strided": (lambda dt: _nhwc(32, 96, 55, 56, dt)[:, :, ::2], -1),
    "HWC RGB": (lambda dt: np.zeros((512, 512, 3), dt), -1),
    "HWC RGB strided": (lambda dt: np.zeros((64, 128, 3), dt)[:, ::2], -1),
    "NCHW strided": (lambda dt: np.zeros((8, 96, 55, 110), dt)[..., ::2], 1),
    "NCHW Fortran": (lambda dt: np.asfortranarray(np.zeros((8, 96, 55, 55), dt)), 1),
    "NCHW Fortran conv1": (lambda dt: np.asfortranarray(np.zeros((32, 96, 55, 55), dt)), 1),
    "NCHW view of NHWC": (lambda dt: _nhwc(32, 96, 55, 55, dt).transpose(0, 3, 1, 2), 1),
    "CHW long rows": (lambda dt: np.zeros((6, 3, 9000), dt), 0),
    "big planes": (lambda dt: np.zeros((1, 3, 150, 131), dt), 1),
}

F4, F8, F2, BE4 = "<f4", "<f8", "<f2", ">f4"

# (layout, dtype, mode, size, beta, wanted) -> "views x driver key=value ... | then-plan"
# wanted: y = lrn(x), d = lrn_divisor(x), yd = lrn(x, return_divisor=True), bwd = lrn_backward
TABLE = [
    # NCHW float32, the AlexNet case and its window classes
    ("NCHW conv1", F4, "across", 5, 0.75, "y",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=Y"),
    ("NCHW conv1", F4, "across", 5, 0.5, "y",
     "1 x across_rows_contiguous span=4096 gain=0.5 variant=Y"),
    ("NCHW conv1", F4, "across", 5, 1.0, "y", "1 x across_rows tile=3025 gain=1 variant=Y"),
    ("NCHW conv1", F4, "across", 5, 0.6, "y", "1 x across_rows tile=3025 gain=pow variant=Y"),
    ("NCHW conv1", F4, "across", 5, 0.75, "d",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=D"),
    ("NCHW conv1", F4, "across", 5, 0.75, "yd",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("NCHW conv1", F4, "across", 3, 0.75, "yd",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("NCHW conv1", F4, "across", 1, 0.75, "y",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=Y"),
    ("NCHW conv1", F4, "across", 8, 0.75, "y",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=Y"),
    ("NCHW conv1", F4, "across", 9, 0.75, "y",
     "1 x across_forward tile=85 blocks=False accumulate=float32 gain=0.75"),
    ("NCHW conv1", F4, "across", 11, 0.75, "y",
     "1 x across_forward tile=85 blocks=True accumulate=float64 gain=0.75"),
    ("NCHW conv1", F4, "across", 5, 0.75, "bwd",
     "1 x across_rows_backward_contiguous chunk=96 refine=True gain=0.75"),
    ("NCHW conv1", F8, "across", 5, 0.75, "bwd",
     "1 x across_rows_backward_contiguous chunk=96 refine=False gain=0.75"),
    ("NCHW conv1", F4, "across", 5, 0.6, "bwd",
     "1 x across_rows_backward_contiguous chunk=96 refine=False gain=pow"),
    ("NCHW conv1", F4, "across", 9, 0.75, "bwd",
     "1 x across_backward tile=85 blocks=False gain=0.75"),
    ("NCHW conv1", F4, "across", 11, 0.75, "bwd",
     "1 x across_backward tile=85 blocks=True gain=0.75"),
    ("NCHW batch 1", F4, "across", 5, 0.75, "bwd",
     "1 x across_rows_backward_contiguous chunk=16 refine=True gain=0.75"),
    ("NCHW conv2", F4, "across", 5, 0.75, "yd",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("NCHW conv2", F4, "across", 9, 0.75, "y",
     "1 x across_forward tile=32 blocks=False accumulate=float32 gain=0.75"),
    ("NCHW conv2", F8, "across", 5, 0.75, "y",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=Y"),
    # within
    ("NCHW conv1", F4, "within", 5, 0.75, "y",
     "1 x within_forward group=10 strip=55 cols=55 accumulate=float32 gain=0.75"),
    ("NCHW conv1", F4, "within", 33, 0.75, "y",
     "1 x within_forward group=10 strip=55 cols=55 accumulate=float64 gain=0.75"),
    ("NCHW conv2", F4, "within", 5, 0.75, "yd",
     "1 x within_forward group=19 strip=27 cols=27 accumulate=float32 gain=0.75"),
    ("NCHW conv1", F4, "within", 5, 0.75, "bwd", "1 x within_backward group=10 strip=55 gain=0.75"),
    ("big planes", F4, "within", 5, 0.75, "y",
     "1 x within_forward group=1 strip=57 cols=131 accumulate=float32 gain=0.75"),
    ("HWC RGB", F4, "within", 5, 0.75, "y",
     "1 x within_forward group=3 strip=64 cols=512 accumulate=float32 gain=0.75"),
    ("HWC RGB", F4, "within", 33, 0.75, "y",
     "1 x within_forward group=3 strip=132 cols=256 accumulate=float64 gain=0.75"),
    ("NHWC conv1", F4, "within", 5, 0.75, "y",
     "3072 x within_forward group=1 strip=55 cols=55 accumulate=float32 gain=0.75"),
    # channels last
    ("NHWC conv1", F4, "across", 5, 0.75, "y",
     "1 x across_channels_last block=86 gain=0.75 variant=Y"),
    ("NHWC conv1", F4, "across", 5, 0.75, "yd",
     "1 x across_channels_last block=86 gain=0.75 variant=YD"),
    ("NHWC conv1", F8, "across", 5, 0.75, "y",
     "1 x across_channels_last block=86 gain=0.75 variant=Y"),
    ("NHWC conv1", F4, "across", 5, 0.75, "bwd",
     "1 x across_channels_last_backward block=86 refine=True gain=0.75"),
    ("NHWC conv1", F4, "across", 9, 0.75, "y",
     "1 x across_forward tile=85 blocks=False accumulate=float32 gain=0.75"),
    ("NHWC strided", F4, "across", 5, 0.75, "y",
     "1 x across_forward tile=85 blocks=False accumulate=float32 gain=0.75"),
    ("NHWC strided", F4, "across", 5, 0.75, "bwd",
     "1 x across_backward tile=85 blocks=False gain=0.75"),
    ("HWC RGB", F4, "across", 5, 0.75, "yd",
     "1 x across_channels_last block=2731 gain=0.75 variant=YD"),
    ("HWC RGB", F4, "across", 5, 0.75, "bwd",
     "1 x across_channels_last_backward block=2731 refine=True gain=0.75"),
    ("HWC RGB strided", F4, "across", 5, 0.75, "y",
     "1 x planar cols=43690 | across_rows_contiguous span=4096 gain=0.75 variant=Y"),
    ("HWC RGB strided", F4, "across", 5, 0.75, "yd",
     "1 x planar cols=29127 | across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("HWC RGB strided", F8, "across", 3, 0.75, "d",
     "1 x planar cols=21845 | across_rows_contiguous span=4096 gain=0.75 variant=D"),
    ("HWC RGB strided", F4, "across", 5, 0.75, "bwd",
     "1 x across_backward tile=2730 blocks=False gain=0.75"),
    # strided channels-first, Fortran order, long rows
    ("NCHW strided", F4, "across", 5, 0.75, "y", "1 x across_rows tile=3025 gain=0.75 variant=Y"),
    ("NCHW strided", F4, "across", 5, 0.75, "bwd", "1 x across_rows_backward tile=170 gain=0.75"),
    ("NCHW Fortran", F4, "across", 5, 0.75, "y",
     "1 x across_forward tile=85 blocks=False accumulate=float32 gain=0.75"),
    ("NCHW Fortran conv1", F4, "across", 5, 0.75, "yd",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("NCHW view of NHWC", F4, "across", 5, 0.75, "y",
     "1 x across_channels_last block=86 gain=0.75 variant=Y"),
    ("CHW long rows", F4, "across", 5, 0.75, "yd",
     "1 x across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("CHW long rows", F4, "across", 5, 0.75, "bwd", "1 x across_rows_backward tile=2730 gain=0.75"),
    # converted dtypes: planned again on their contiguous compute-dtype slabs
    ("NCHW conv1", F2, "across", 5, 0.75, "y",
     "1 x converted slab_rows=2 | across_rows_contiguous span=4096 gain=0.75 variant=Y"),
    ("NCHW conv1", BE4, "across", 5, 0.75, "yd",
     "1 x converted slab_rows=2 | across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("NCHW conv1", F2, "across", 5, 0.75, "bwd",
     "1 x converted slab_rows=2 | across_rows_backward_contiguous chunk=24 refine=False "
     "gain=0.75"),
    ("NHWC conv1", F2, "across", 5, 0.75, "yd",
     "1 x converted slab_rows=1 | across_rows_contiguous span=4096 gain=0.75 variant=YD"),
    ("HWC RGB", F2, "across", 5, 0.75, "bwd",
     "1 x converted slab_rows=1 | across_rows_backward tile=5461 gain=0.75"),
    ("HWC RGB strided", F2, "within", 5, 0.75, "yd",
     "1 x converted slab_rows=21 | within_forward group=1 strip=64 cols=64 accumulate=float32 "
     "gain=0.75"),
]


def _summary(plan: dispatch.Plan) -> str:
    params = dict(plan.params)
    variant = params.pop("variant", None)
    text = plan.driver + "".join(f" {k}={v}" for k, v in params.items())
    if variant is not None:
        flags = (("Y", variant["WANT_Y"]), ("D", variant["WANT_D"]),
                 ("4", variant.get("TAPS4", False)))
        text += " variant=" + "".join(n for n, on in flags if on)
    return text if plan.then is None else f"{text} | {_summary(plan.then)}"


def _plans(layout, dtype, mode, size, beta, wanted):
    make, axis = LAYOUTS[layout]
    x = make(np.dtype(dtype))
    return plans(x, size, 1e-4, beta, 2.0, mode=mode, channel_axis=axis,
                 output="y" in wanted, divisor="d" in wanted, backward=wanted == "bwd",
                 threads=2)


@pytest.mark.parametrize("layout,dtype,mode,size,beta,wanted,expected", TABLE,
                         ids=[" ".join(map(str, row[:6])) for row in TABLE])
def test_dispatch_table(layout, dtype, mode, size, beta, wanted, expected):
    found = _plans(layout, dtype, mode, size, beta, wanted)
    assert {_summary(p) for p in found} == {expected.split(" x ", 1)[1]}
    assert f"{len(found)} x" == expected.split(" x ", 1)[0] + " x"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", [F4, F8, F2, BE4])
@pytest.mark.parametrize("mode,size", [("across", 1), ("across", 3), ("across", 5),
                                       ("across", 8), ("across", 9), ("across", 11),
                                       ("within", 5), ("within", 33)])
def test_every_plan_names_a_kernel_and_documented_driver(layout, dtype, mode, size):
    """Every layout x dtype x window class plans a kernel that exists, with the window
    class's rules: short across windows never take the scratch kernels unless their
    channels are fastest in memory; long ones always do; within takes the box kernels."""
    import lrn_cli._kernels as kernels

    for wanted in ("y", "d", "yd", "bwd"):
        for plan in _plans(layout, dtype, mode, size, 0.75, wanted):
            leaf = plan.then if plan.driver in ("planar", "converted") else plan
            assert plan.driver in dispatch.__doc__
            assert hasattr(kernels, leaf.driver), leaf.driver
            if mode == "within":
                assert leaf.driver.startswith("within_")
            elif size > dispatch.ROW_KERNEL_TAPS:
                assert leaf.driver in ("across_forward", "across_backward")
                assert leaf.params["blocks"] == (size > dispatch.DIRECT_TAPS_ACROSS)


def test_the_docstring_example():
    x = np.zeros((32, 55, 55, 96), np.float32)
    (plan,) = plans(x, 5, beta=0.75, channel_axis=-1, threads=2)
    assert plan.driver == "across_channels_last"
    assert "across_channels_last(block=86, gain=0.75, variant=" in str(plan)


def test_planning_imports_no_numba():
    code = ("import sys, numpy as np; from lrn_cli.dispatch import plans; "
            "plans(np.zeros((2, 8, 5, 5), np.float32), 5, threads=2); "
            "plans(np.zeros((2, 8, 5, 5), np.float32), 5, mode='within', threads=2); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


KERNELS = ["across_rows_contiguous", "across_rows", "across_forward", "across_channels_last",
           "within_forward", "across_rows_backward_contiguous", "across_rows_backward",
           "across_backward", "across_channels_last_backward", "within_backward"]


@pytest.mark.parametrize("layout,dtype,mode,size,beta,wanted", [
    ("NCHW", F4, "across", 5, 0.75, "y"), ("NCHW", F4, "across", 5, 0.75, "yd"),
    ("NCHW", F4, "across", 11, 0.75, "y"), ("NHWC", F4, "across", 5, 0.75, "yd"),
    ("NHWC strided", F4, "across", 5, 0.75, "y"), ("NCHW", F2, "across", 5, 0.75, "y"),
    ("NCHW", F4, "within", 5, 0.75, "yd"), ("NCHW", F4, "across", 5, 0.75, "bwd"),
    ("NHWC", F4, "across", 5, 0.75, "bwd"), ("NCHW strided", F4, "across", 5, 0.75, "bwd"),
    ("NCHW", F4, "across", 11, 0.75, "bwd"), ("NCHW", F8, "within", 5, 0.75, "bwd"),
])
def test_core_runs_the_planned_kernel(layout, dtype, mode, size, beta, wanted, monkeypatch):
    """``core`` executes the plan: the kernel the plan names is the one called (kernels
    replaced by recorders, so nothing is compiled)."""
    import lrn_cli._kernels as kernels
    from lrn_cli import core

    base = np.ones((2, 70, 6, 20), np.dtype(dtype))
    if layout == "NHWC":
        x, axis = np.ascontiguousarray(base.transpose(0, 2, 3, 1)), -1
    elif layout == "NHWC strided":
        x, axis = np.ascontiguousarray(base.transpose(0, 2, 3, 1))[:, :, ::2], -1
    elif layout == "NCHW strided":
        x, axis = base[..., ::2], 1
    else:
        x, axis = base, 1
    called = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def __call__(self, *args, **kwargs):
            if not args:  # a variant's dispatcher (across_rows, ...)
                return Recorder(self.name)
            called.append(self.name)

    for name in KERNELS:
        monkeypatch.setattr(kernels, name, Recorder(name))
    kw = dict(size=size, beta=beta, mode=mode, channel_axis=axis)
    expected = {p.then.driver if p.then is not None else p.driver
                for p in plans(x, output="y" in wanted, divisor="d" in wanted,
                               backward=wanted == "bwd", **kw)}
    # the recorders leave the outputs unwritten: converting their garbage may overflow
    with np.errstate(all="ignore"):
        if wanted == "bwd":
            core.lrn_backward(x, x, **kw)
        else:
            core.lrn(x, **kw, return_divisor=wanted == "yd")
    assert set(called) == expected


def test_short_windows_fit_one_tree_of_the_kernels():
    from lrn_cli._kernel_parts import TREE_TAPS

    assert dispatch.ROW_KERNEL_TAPS <= TREE_TAPS
