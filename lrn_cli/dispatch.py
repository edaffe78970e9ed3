"""Which kernel runs for which input: the dispatch table of ``lrn``, ``lrn_divisor`` and
``lrn_backward``, with every threshold it uses.

How an array reaches a kernel
-----------------------------
1. :func:`lrn_cli.core._layout_views` reduces any layout to 3-D views without copying:
   across, ``(outer, C, inner)`` (``outer`` = the axes before the channels, ``inner`` =
   those after, once the axes are in memory order: a Fortran-ordered or transposed array
   is viewed as the C-ordered array it is); within, ``(planes, H, W)``.  A channels-last
   array (``inner`` below :data:`CHANNELS_LAST_INNER`, ``outer`` larger) is viewed
   transposed, ``(inner, C, outer)``, so the kernels tile its long pixel axis; its channel
   axis is then the fastest in memory.
2. :func:`forward_plan` / :func:`backward_plan` turn each view (its strides, dtype, the
   resolved window, beta, and which outputs are wanted) into a :class:`Plan`: the kernel
   (a name in :mod:`lrn_cli._kernels`) and its work-item sizes.  ``core`` executes plans and
   decides nothing.
3. :func:`plans` does steps 1 and 2 for a real call, to see what would run::

       >>> import numpy as np
       >>> from lrn_cli.dispatch import plans
       >>> x = np.zeros((32, 55, 55, 96), np.float32)      # NHWC, AlexNet conv1
       >>> print(plans(x, 5, beta=0.75, channel_axis=-1, threads=2)[0].driver)
       across_channels_last

Forward (``lrn``, ``lrn_divisor``): the first row that matches wins
-------------------------------------------------------------------
=========================  ===================================================================
driver                     when
=========================  ===================================================================
``converted``              the input (or an output) is not native float32/float64: slabs are
                           converted to contiguous compute-dtype copies (float16, integers
                           and bool in float32) and each slab is planned again
``across_channels_last``   across, <= :data:`ROW_KERNEL_TAPS` taps, channels fastest and every
                           pixel's channels contiguous (NHWC C-contiguous): runs of pixels
                           as one flat array, other pixels' channels masked out
``planar``                 across, short window, channels fastest but pixels not contiguous
                           rows (a strided NHWC view), at most :data:`PLANAR_MAX_CHANNELS`
                           channels: pixel slabs copied to planar scratch and planned again
``across_rows_contiguous`` across, short window, beta 0.75 or 0.5 (any beta for the
                           divisor alone), ``x`` and the outputs C-contiguous,
                           ``inner >= CONTIGUOUS_MIN_INNER``: interior channels as one long
                           span per sample, the divisor written beside the result
``across_rows``            across, short window, channel rows (``strides[1] >= strides[2]``):
                           the unrolled row kernel (compiled per outputs and window class)
``across_forward``         across otherwise (long windows; channels-fastest views with more
                           than 64 channels): (C, tile) blocks copied to scratch
``within_forward``         within: box sums (one tree per axis up to 8 taps, block sums
                           down the columns beyond); small planes grouped, large ones
                           cut into column (and row) strips, interleaved planes together
=========================  ===================================================================

Backward (``lrn_backward``, float64 arithmetic)
-----------------------------------------------
==================================  ==========================================================
driver                              when
==================================  ==========================================================
``converted``                       not native float32/float64: float64 slabs, planned again
``across_channels_last_backward``   across, short window, each pixel's channels contiguous
``across_rows_backward_contiguous`` across, short window, all C-contiguous,
                                    ``inner <= RING_ROW_MAX``
``across_rows_backward``            across, short window, channel rows
``across_backward``                 across otherwise
``within_backward``                 within
==================================  ==========================================================

"Short window" is at most :data:`ROW_KERNEL_TAPS` taps.  ``gain`` in a plan names the closed
form of ``D ** -beta`` the kernel uses (``0.75``, ``0.5``, ``1``, ... or ``pow``).  Every
driver gives the same bits as every other for the same values (the tests check it), so a
change of route changes speed only; ``tests/test_dispatch.py`` pins the table.

This module imports neither NumPy's kernels nor Numba (the thread count is asked of Numba
only when a plan depends on it and no ``threads`` is given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lrn_cli import _jit
from lrn_cli._jit import beta_mode

# ----------------------------------------------------------------------------------------
# thresholds (float32 conv1/conv2 shapes on the project's 2-core VM unless said otherwise)

#: Across windows of at most this many taps take the unrolled kernels (8 neighbour rows in
#: registers, one fixed 8-term tree); longer ones are summed on scratch blocks.  8 is what
#: one tree of the unrolled kernels holds; AlexNet's 5 and every common size fit.
ROW_KERNEL_TAPS = 8
#: Across windows with more taps than this are summed by block prefix/suffix sums (O(1) per
#: element) in float64; up to it, directly in the input dtype (performance notes: direct
#: sums were exact in every test and cost 1.1-1.3x a running sum at size 5).
DIRECT_TAPS_ACROSS = 9
#: Within-channel block sums accumulate in float64 beyond this many taps per axis (a block
#: sum of m float32 terms keeps ~m ulps: enough up to 32).
ACC32_TAPS_WITHIN = 32
#: Values per scratch block of the general across kernels, per half-plane of the within
#: kernel's strips (a (C, tile) block of float32 conv1 channels stays in L1/L2: 96 x 85).
SCRATCH_ELEMS = 8192
#: Smallest tile (pixels) of the general across kernels, whatever the channel count.
MIN_TILE = 16
#: Smallest tile of the strided short-window backward (its rows are float64 pairs).
MIN_BACKWARD_TILE = 64
#: Outputs per work item of ``across_rows_contiguous`` (a multiple of 64: whole vectors).
#: Measured (session 3, interleaved A/B): 4x4 planes 2.5x, 6x6 1.5x, 13x13 1.27x faster
#: than row by row; conv2 2-5%, conv1 within noise.  Tests cut it to 17 and 64.
SPAN = 4096
#: ``across_rows_contiguous`` wants rows of at least this many pixels (shorter rows are a
#: channels-last layout, taken elsewhere).
CONTIGUOUS_MIN_INNER = 16
#: ``across_rows`` keeps whole rows as its tile up to this many pixels, else tiles of
#: :data:`ROW_TILE`.
ROW_TILE_MAX = 8192
ROW_TILE = 4096
#: The contiguous backward keeps float64 rings of 8 rows of at most this many values: two
#: (t and u), and for 5-tap windows two more of pair sums (4 x 8 x 8192 x 8 bytes = 2 MiB
#: per thread at the limit; conv1's 3025-pixel rows take 0.75 MiB).
RING_ROW_MAX = 8192
#: Converted slabs and planar scratch hold at most 1/16 of the input, at least this much.
MIN_SLAB_BYTES = 1 << 20
#: Channels-last views whose pixels are not rows of contiguous channels (strided) go
#: through planar copies up to this many channels (colour images, small feature maps);
#: beyond, the copies cost more than ``across_forward``'s own transposing loads.
PLANAR_MAX_CHANNELS = 64
#: Planar scratch: pixels per block at least this many, split into at most
#: ``ITEMS_PER_THREAD * threads`` blocks.
PLANAR_MIN_BLOCK = 2048
#: Across views with fewer than this many values after the channel axis (and more before
#: it) are channels-last: viewed transposed so the kernels tile the long axis.
CHANNELS_LAST_INNER = 16
#: Work items per thread the splits aim for (so a late item does not idle a core).
ITEMS_PER_THREAD = 4
#: Channels-last kernels: values per work item (pixels x channels) ...
PIXEL_BLOCK_ELEMS = 8192
#: ... and at least this many work items when there are pixels for them.
PIXEL_BLOCK_ITEMS = 64
#: Within: small planes are grouped side by side until rows have ~this many values (whole
#: planes as work items beat small blocks by 10-20% for 55x55 maps; 27x27 rows vectorise
#: poorly alone).
WITHIN_GROUP_ROW = 512
#: Within: strips of large planes have at least this many rows (and 4 window heights).
MIN_STRIP = 16
#: Within: planes of at most ``2 * SCRATCH_ELEMS`` values are grouped, larger ones cut into
#: strips.
WITHIN_PLANE_MAX = 2 * SCRATCH_ELEMS
#: Within forward: the ring of row sums (two blocks of ``size`` rows, a work item's width
#: each) stays within this many bytes (L2-sized; planes wider than that are cut into column
#: strips with a halo of ``size - 1`` columns) ...
WITHIN_RING_BYTES = 256 * 1024
#: ... but column strips are at least this wide (the halo stays a small fraction).
WITHIN_MIN_COLS = 256
#: Within forward: interleaved planes (a channels-last image viewed planar: the planes'
#: values of a pixel adjacent) up to this many are taken together, each row read and
#: written as one contiguous span.
WITHIN_INTERLEAVED_MAX = 8
#: Contiguous backward: channels per work item at least this many when planes are split.
MIN_CHANNEL_CHUNK = 16

_GAIN_NAMES = {_jit.BETA_075: "0.75", _jit.BETA_05: "0.5", _jit.BETA_1: "1", _jit.BETA_0: "0",
               _jit.BETA_025: "0.25", _jit.BETA_15: "1.5", _jit.BETA_2: "2"}


def gain_name(beta: float) -> str:
    """The closed form of ``D ** -beta`` the kernels use for ``beta`` (``pow``: none)."""
    return _GAIN_NAMES.get(beta_mode(beta), "pow")


@dataclass(frozen=True)
class Plan:
    """One kernel call: the driver, its work-item sizes and why it was chosen.

    Attributes
    ----------
    driver : str
        A kernel of :mod:`lrn_cli._kernels` (or ``"planar"`` / ``"converted"``: copies,
        then :attr:`then` for the copies).
    reason : str
        The rule of the table that picked it.
    params : dict
        What the driver is called with besides the arrays and constants: tile, span,
        strip, group, chunk or block sizes, ``gain`` (the closed form of the power),
        ``accumulate`` (the dtype window sums are kept in), and for the kernels compiled
        per variant (``across_rows``, ``across_rows_contiguous``, ...) the compile-time
        constants of its variant (``variant``).
    then : Plan or None
        For ``planar`` and ``converted``: the plan of the first copy.
    """

    driver: str
    reason: str
    params: dict[str, Any] = field(default_factory=dict)
    then: Plan | None = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        text = f"{self.driver}({args}): {self.reason}"
        return text if self.then is None else f"{text}\n  then {self.then}"


def _threads(threads: int | None) -> int:
    if threads is not None:
        return threads
    import numba

    return numba.get_num_threads()


def _native(dtype) -> bool:
    return dtype.kind == "f" and dtype.itemsize in (4, 8) and dtype.isnative


def compute_dtype(dtype):
    """The dtype a non-native input is converted to: float64 stays, the rest float32."""
    import numpy as np

    return np.dtype(np.float64) if dtype.kind == "f" and dtype.itemsize == 8 else np.dtype(
        np.float32)


def pixel_rows(views) -> tuple | None:
    """Channels-last views ``(1, C, pixels)`` as C-contiguous ``(pixels, C)`` arrays (None
    stays None), or None when any of them is not laid out that way."""
    rows: list[Any] = []
    for v in views:
        if v is None:
            rows.append(None)
            continue
        if v.shape[0] != 1 or v.shape[1] < 2 or not v.strides[1] < v.strides[2]:
            return None
        rows_view = v[0].T  # (pixels, C)
        if not rows_view.flags.c_contiguous:
            return None
        rows.append(rows_view)
    return tuple(rows)


# ----------------------------------------------------------------------------------------
# work-item sizes


def scratch_tile(channels: int, inner: int) -> int:
    """Pixels per (C, tile) scratch block of ``across_forward`` / ``across_backward``."""
    return min(max(MIN_TILE, SCRATCH_ELEMS // max(1, channels)), max(1, inner))


def row_tile(inner: int) -> int:
    """Pixels per work item of ``across_rows``: whole rows, or tiles of long rows."""
    return inner if inner <= ROW_TILE_MAX else ROW_TILE


def backward_row_tile(channels: int, inner: int) -> int:
    """Pixels per work item of ``across_rows_backward`` (two float64 (C, tile) blocks)."""
    return min(inner, max(MIN_BACKWARD_TILE, 2 * SCRATCH_ELEMS // max(1, channels)))


def pixel_block(shape: tuple[int, int]) -> int:
    """Pixels per work item of the channels-last kernels: ~8K values, >= 64 items."""
    pixels, channels = shape
    return max(1, min(-(-PIXEL_BLOCK_ELEMS // channels), -(-pixels // PIXEL_BLOCK_ITEMS)))


def within_work(shape: tuple[int, int, int], taps: int, threads: int | None = None,
                ) -> tuple[int, int]:
    """Work item of the within kernels: (planes per group, rows per strip).

    Small planes are grouped side by side so the kernel's rows are long enough to
    vectorise; large planes are cut into strips (with a halo of ``taps - 1`` rows) so that
    scratch stays small and both cores get work even for one plane.
    """
    n = _threads(threads)
    planes, height, width = shape
    if height * width <= WITHIN_PLANE_MAX:
        group = max(1, min(planes, -(-WITHIN_GROUP_ROW // max(1, min(height, width)))))
        group = min(group, max(1, -(-planes // (ITEMS_PER_THREAD * n))))
        return group, max(1, height)
    strip = max(MIN_STRIP, 4 * taps, WITHIN_PLANE_MAX // max(1, width))
    if planes < ITEMS_PER_THREAD * n:
        strip = min(strip, max(MIN_STRIP, 2 * taps,
                               -(-height * planes // (ITEMS_PER_THREAD * n))))
    return 1, max(1, min(strip, height))


def interleaved_planes(x, y=None, d=None) -> bool:
    """Whether the within views ``(planes, H, W)`` are a channels-last image viewed planar
    (for each pixel the planes' values adjacent, at most :data:`WITHIN_INTERLEAVED_MAX`
    planes, the same layout in every view): the forward kernel then reads and writes each
    row of all planes as one contiguous span."""
    planes = x.shape[0]
    if not 2 <= planes <= WITHIN_INTERLEAVED_MAX or x.shape[2] < 2:
        return False
    for v in (x, y, d):
        if v is not None and not (v.strides[0] == v.itemsize
                                  and v.strides[2] == planes * v.itemsize):
            return False
    return True


def within_cols(shape: tuple[int, int, int], taps: int, acc_itemsize: int,
                group: int = 1) -> int:
    """Columns per work item of ``within_forward``: whole rows for planes that are grouped,
    else as many as keep its ring of ``2 * taps`` rows of row sums (of ``group`` planes)
    within :data:`WITHIN_RING_BYTES` (at least :data:`WITHIN_MIN_COLS`).  Depends on the
    shape only, not on the threads (the kernel asks it too)."""
    _, height, width = shape
    if height * width <= WITHIN_PLANE_MAX:
        return max(1, width)
    ring = WITHIN_RING_BYTES // (2 * taps * acc_itemsize * group) - (taps - 1)
    cols = max(1, min(width, max(WITHIN_MIN_COLS, ring)))
    return -(-width // -(-width // cols))  # strips of equal width


def within_forward_work(shape: tuple[int, int, int], taps: int, acc_itemsize: int,
                        threads: int | None = None, interleaved: bool = False,
                        ) -> tuple[int, int, int]:
    """Work item of ``within_forward``: (planes per group, rows per strip, columns).

    Small planes are grouped side by side as in :func:`within_work` (whole planes: the
    kernel streams down them once); large ones are cut into column strips
    (:func:`within_cols`), and into row strips (each reads a halo of ``taps - 1`` rows)
    only when there are too few strips to share out.  ``interleaved`` planes
    (:func:`interleaved_planes`) are taken all together.
    """
    n = _threads(threads)
    planes, height, width = shape
    if height * width <= WITHIN_PLANE_MAX:
        group, _ = within_work(shape, taps, n)
        return group, max(1, height), within_cols(shape, taps, acc_itemsize)
    group = planes if interleaved else 1
    cols = within_cols(shape, taps, acc_itemsize, group)
    items = (planes // group) * -(-width // cols)
    strip = height
    if items < ITEMS_PER_THREAD * n:
        strip = max(MIN_STRIP, 4 * taps, -(-height * items // (ITEMS_PER_THREAD * n)))
    return group, max(1, min(strip, height)), cols


def channel_chunk(outer: int, channels: int, threads: int | None = None) -> int:
    """Channels per work item of the contiguous backward kernel: whole planes when there
    are enough of them to share out, else chunks (each recomputes a halo of < 8 rows)."""
    want = ITEMS_PER_THREAD * _threads(threads)
    if outer >= want:
        return channels
    return max(MIN_CHANNEL_CHUNK, -(-channels // -(-want // outer)))


def slab_rows(shape: tuple[int, ...], itemsize_total: int) -> tuple[int, int]:
    """``(budget, rows)`` of converted slabs: bytes per slab (1/16 of the arrays, at least
    :data:`MIN_SLAB_BYTES`) and how many first-axis rows fit it (at least 1)."""
    total = math.prod(shape) * itemsize_total
    budget = max(MIN_SLAB_BYTES, total // 16)
    per_row = max(1, math.prod(shape[1:]) * itemsize_total)
    return budget, max(1, budget // per_row)


def planar_cut(shape: tuple[int, int, int], itemsize: int, arrays: int,
               threads: int | None = None) -> tuple[int, Any]:
    """How ``planar`` cuts channels-last views ``(outer, C, pixels)``: ``(cols, blocks)``,
    pixels per slab and a function giving the scratch blocks of a slab of ``n`` pixels,
    ``[(offset, count, width), ...]`` (``count`` blocks of ``width`` pixels)."""
    outer, channels, pixels = shape
    budget = max(MIN_SLAB_BYTES, math.prod(shape) * itemsize // 16) // (itemsize * arrays)
    cols = max(MIN_TILE, budget // channels)
    n_threads = _threads(threads)

    def blocks(n: int) -> list[tuple[int, int, int]]:
        count = max(1, min(ITEMS_PER_THREAD * n_threads, n // PLANAR_MIN_BLOCK))
        width = n // count
        cuts = [(0, count, width), (count * width, 1, n - count * width)]
        return [c for c in cuts if c[2] > 0]

    return cols, blocks


# ----------------------------------------------------------------------------------------
# the table


def forward_plan(x, y, d, r, mode: str, threads: int | None = None, *,
                 nested: bool = True) -> Plan:
    """The plan for 3-D views ``x`` and outputs ``y``, ``d`` (either may be None).

    Parameters
    ----------
    x : ndarray
        Input view, ``(outer, C, inner)`` across or ``(planes, H, W)`` within.
    y, d : ndarray or None
        The output and the divisor views (same shape), None when not wanted.
    r : lrn_cli.conventions.Resolved
        The resolved window (``lo``, ``hi``, ``taps``) and constants (``beta``).
    mode : {"across", "within"}
    threads : int, optional
        Threads the kernels run on (default: Numba's current count).
    nested : bool
        Also plan the copies of ``planar`` and ``converted`` (:attr:`Plan.then`); the
        executor plans each copy itself and passes False.

    Returns
    -------
    Plan
    """
    import numpy as np

    bmode = beta_mode(r.beta)
    gain = gain_name(r.beta)
    outputs = [v for v in (y, d) if v is not None]
    if not (_native(x.dtype) and all(v.dtype == x.dtype for v in outputs)):
        cdtype = compute_dtype(x.dtype)
        nbytes = cdtype.itemsize * (1 + len(outputs))
        budget, rows = slab_rows(x.shape, nbytes)
        if not nested:
            return Plan("converted", f"{x.dtype} is computed in {cdtype} slabs",
                        {"slab_rows": rows})
        shape = (min(rows, x.shape[0]),) + x.shape[1:]
        if mode == "across" and rows == 1 and math.prod(x.shape[1:]) * nbytes > budget:
            cols = max(1, budget // max(1, x.shape[1] * nbytes))
            shape = shape[:2] + (min(cols, x.shape[2]),)
        xs = np.empty(shape, cdtype)  # stands for the copies (never touched)
        ys = xs if y is not None else None
        ds = xs if d is not None else None
        return Plan("converted", f"{x.dtype} is computed in {cdtype} slabs",
                    {"slab_rows": rows}, forward_plan(xs, ys, ds, r, mode, threads))
    if mode == "within":
        acc = "float64" if r.taps > ACC32_TAPS_WITHIN else str(x.dtype)
        group, strip, cols = within_forward_work(x.shape, r.taps, np.dtype(acc).itemsize,
                                                 threads, interleaved_planes(x, y, d))
        return Plan("within_forward", "within: box sums",
                    {"group": group, "strip": strip, "cols": cols, "accumulate": acc,
                     "gain": gain})
    outer, channels, inner = x.shape
    short = r.taps <= ROW_KERNEL_TAPS
    if short and x.strides[1] < x.strides[2] and channels > 1:
        pixels = pixel_rows((x, y, d))
        if pixels is not None:
            fused = y is not None and bmode in (_jit.BETA_075, _jit.BETA_05)
            return Plan("across_channels_last",
                        f"across, <= {ROW_KERNEL_TAPS} taps, each pixel's channels contiguous",
                        {"block": pixel_block(pixels[0].shape), "gain": gain,
                         "variant": {"WANT_Y": y is not None, "WANT_D": d is not None,
                                     "BMODE": bmode if fused else _jit.BETA_GENERAL}})
        if channels <= PLANAR_MAX_CHANNELS:
            reason = (f"across, short window, channels fastest but not contiguous rows, "
                      f"<= {PLANAR_MAX_CHANNELS} channels: planar copies")
            if not nested:
                return Plan("planar", reason, {})
            cols, blocks = planar_cut(x.shape, x.itemsize, 1 + len(outputs), threads)
            _, count, width = blocks(min(cols, inner))[0]
            xs = np.empty((count, channels, width), x.dtype)  # the scratch (never touched)
            return Plan("planar", reason, {"cols": cols},
                        forward_plan(xs, xs if y is not None else None,
                                     xs if d is not None else None, r, mode, threads))
    if (short and (y is None or bmode in (_jit.BETA_075, _jit.BETA_05))
            and x.flags.c_contiguous and all(v.flags.c_contiguous for v in outputs)
            and inner >= CONTIGUOUS_MIN_INNER):
        return Plan("across_rows_contiguous",
                    "across, short window, beta 0.75 or 0.5 (or the divisor alone), "
                    "C-contiguous",
                    {"span": SPAN, "gain": gain,
                     "variant": {"WANT_Y": y is not None, "WANT_D": d is not None,
                                 "BMODE": bmode if y is not None and d is not None
                                 else _jit.BETA_GENERAL}})
    if short and x.strides[1] >= x.strides[2]:
        return Plan("across_rows", "across, short window, channel rows",
                    {"tile": row_tile(inner), "gain": gain,
                     "variant": {"WANT_Y": y is not None, "WANT_D": d is not None,
                                 "TAPS4": r.taps <= 4, "BMODE": bmode}})
    blocks = r.taps > DIRECT_TAPS_ACROSS
    if blocks:
        reason = f"across, more than {DIRECT_TAPS_ACROSS} taps: block sums on scratch"
    elif not short:
        reason = (f"across, {ROW_KERNEL_TAPS + 1} to {DIRECT_TAPS_ACROSS} taps: direct sums "
                  "on scratch")
    else:
        reason = (f"across, short window, channels fastest in memory (not pixel rows of "
                  f"contiguous channels, more than {PLANAR_MAX_CHANNELS} channels)")
    return Plan("across_forward", reason,
                {"tile": scratch_tile(channels, inner), "blocks": blocks,
                 "accumulate": "float64" if blocks else str(x.dtype), "gain": gain})


def backward_plan(x, g, dx, r, mode: str, threads: int | None = None, *,
                  nested: bool = True) -> Plan:
    """The plan of the gradient for 3-D views ``x``, ``g`` (the output's gradient) and
    ``dx`` (where it goes); parameters as :func:`forward_plan`."""
    import numpy as np

    gain = gain_name(r.beta)
    if not (_native(x.dtype) and _native(g.dtype) and dx.dtype == x.dtype):
        budget, rows = slab_rows(x.shape, 24)
        if not nested:
            return Plan("converted", f"{x.dtype} is computed in float64 slabs",
                        {"slab_rows": rows})
        shape = (min(rows, x.shape[0]),) + x.shape[1:]
        if mode == "across" and rows == 1 and math.prod(x.shape[1:]) * 24 > budget:
            cols = max(1, budget // max(1, x.shape[1] * 24))
            shape = shape[:2] + (min(cols, x.shape[2]),)
        xs = np.empty(shape)  # stands for the float64 copies (never touched)
        return Plan("converted", f"{x.dtype} is computed in float64 slabs",
                    {"slab_rows": rows}, backward_plan(xs, xs, xs, r, mode, threads))
    short = mode == "across" and r.taps <= ROW_KERNEL_TAPS
    # float32 input, beta 0.75 or 0.5: powers of D from a float32 seed refined in float64
    refine = x.dtype == np.float32 and beta_mode(r.beta) in (_jit.BETA_075, _jit.BETA_05)
    pixels = pixel_rows((x, g, dx)) if short else None
    if pixels is not None:
        return Plan("across_channels_last_backward",
                    "across, short window, each pixel's channels contiguous",
                    {"block": pixel_block(pixels[0].shape), "refine": refine, "gain": gain})
    if (short and x.flags.c_contiguous and g.flags.c_contiguous and dx.flags.c_contiguous
            and x.shape[2] <= RING_ROW_MAX):
        return Plan("across_rows_backward_contiguous",
                    f"across, short window, C-contiguous rows of <= {RING_ROW_MAX}",
                    {"chunk": channel_chunk(x.shape[0], x.shape[1], threads),
                     "refine": refine, "gain": gain})
    if short and x.strides[1] >= x.strides[2] and g.strides[1] >= g.strides[2]:
        return Plan("across_rows_backward", "across, short window, channel rows",
                    {"tile": backward_row_tile(x.shape[1], x.shape[2]), "gain": gain})
    if mode == "across":
        blocks = r.taps > DIRECT_TAPS_ACROSS
        return Plan("across_backward", "across, long window or channels fastest in memory",
                    {"tile": scratch_tile(x.shape[1], x.shape[2]), "blocks": blocks,
                     "gain": gain})
    group, strip = within_work(x.shape, r.taps, threads)
    return Plan("within_backward", "within: box sums",
                {"group": group, "strip": strip, "gain": gain})


# ----------------------------------------------------------------------------------------
# what a real call would run


def plans(x, size: int | None = None, alpha: float = 1e-4, beta: float = 0.75,
          k: float = 2.0, *, mode: str = "across", convention: str = "default",
          channel_axis: int | None = 1, divisor: bool = False, output: bool = True,
          backward: bool = False, threads: int | None = None) -> list[Plan]:
    """The plans ``lrn`` (``output``), ``lrn_divisor`` (``divisor`` without ``output``),
    ``lrn(..., return_divisor=True)`` (both) or ``lrn_backward`` (``backward``) would run for
    ``x``, one per 3-D view (usually one).  Nothing is computed; ``x`` may be an empty
    ``np.zeros`` of the shape in question (its pages are never touched).

    Parameters
    ----------
    x : ndarray
        The input (its dtype, shape and strides matter; outputs are taken as fresh arrays of
        ``x``'s layout, as ``lrn`` allocates them).
    size, alpha, beta, k, mode, convention, channel_axis
        As for :func:`lrn_cli.lrn`.
    divisor, output, backward : bool
        What is wanted.
    threads : int, optional
        Threads (default: Numba's current count).

    Returns
    -------
    list of Plan
    """
    import numpy as np

    from lrn_cli.core import _layout_views, _prepare

    x, rdtype, r, axis = _prepare(x, size, alpha, beta, k, mode, convention, channel_axis,
                                  None)
    if backward:
        dx = np.empty_like(x, dtype=rdtype)
        return [backward_plan(xv, gv, ov, r, mode, threads)
                for xv, gv, ov in _layout_views((x, x, dx), mode, axis)]
    wanted = [np.empty_like(x, dtype=rdtype) if want else None for want in (output, divisor)]
    arrays = tuple([x] + [a for a in wanted if a is not None])
    result = []
    for views in _layout_views(arrays, mode, axis):
        rest = iter(views[1:])
        yv = next(rest) if output else None
        dv = next(rest) if divisor else None
        result.append(forward_plan(views[0], yv, dv, r, mode, threads))
    return result

