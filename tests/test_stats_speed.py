"""The one-pass statistics kernels (issue "Speed II"): fixed blocks, the same figures whatever
the threads and the work split, today's accuracy on adversarial data, and ``lrn apply``'s
in-place path for pictures (the same output and figures as the whole-array path)."""

from __future__ import annotations

import io
import math

import numba
import numpy as np
import pytest
from PIL import Image

from lrn_cli import _stats_kernels as K
from lrn_cli import stats
from lrn_cli.core import lrn, set_threads
from lrn_cli.stats import STAT_NAMES, array_stats, divisor_stats

TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2


def layouts() -> dict[str, tuple[np.ndarray, int | None]]:
    """One array per way the kernel reads rows (ROWS, TRANSPOSE, GATHER, none), each with
    several blocks per channel, a tail of lanes, and a NaN, an inf and an empty block."""
    rng = np.random.default_rng(7)
    nchw = np.abs(rng.standard_normal((5, 6, 47, 53))).astype(np.float32)
    nchw[1, 2, 3, 4] = np.nan
    nchw[2, 3, 0, 0] = np.inf  # the first value of a block: its shift is the next one
    nchw[3, 4] = np.nan  # a whole (outer, channel) row of non-finite values
    planar = np.empty((3, 130, 170), np.float32).transpose(1, 2, 0)
    planar[...] = rng.random((130, 170, 3))
    planar[5, 6, 1] = -np.inf
    strided = rng.standard_normal((10, 3, 9001)).astype(np.float32)[:, :, ::2]  # gathered
    strided[2, 1, 7] = np.nan
    return {
        "nchw": (nchw, 1),
        "nhwc": (np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)), 3),
        "picture planar": (planar, 2),
        "picture interleaved": (np.ascontiguousarray(planar), 2),
        "fortran f64": (np.asfortranarray(rng.standard_normal((9, 4, 700))), 1),
        "no channels": (nchw, None),
        "2-D channels last": (rng.standard_normal((9000, 5)), 1),
        "reversed strides": (rng.standard_normal((6, 7, 900))[::-1, ::-1, ::-2], 1),
        "strided 3 channels": (strided, 1),
    }


def reference(x: np.ndarray, ch: int | None) -> list[tuple[int, float, float, float, float]]:
    """(count, mean, std, min, max) of the finite values per channel (overall first), in
    float64 with math.fsum and a two-pass variance."""
    x64 = np.asarray(x, np.float64)
    groups = [x64] + ([] if ch is None else [np.take(x64, i, axis=ch)
                                            for i in range(x.shape[ch])])
    out = []
    for g in groups:
        v = g[np.isfinite(g)]
        if v.size == 0:
            out.append((0, math.nan, math.nan, math.nan, math.nan))
            continue
        mean = math.fsum(v) / v.size
        std = math.sqrt(math.fsum((v - mean) ** 2) / v.size)
        out.append((v.size, mean, std, float(v.min()), float(v.max())))
    return out


def check_against_reference(x: np.ndarray, ch: int | None, rel: float) -> None:
    s = array_stats(x, ch)
    for got, (n, mean, std, lo, hi) in zip((s.overall, *s.channels), reference(x, ch),
                                           strict=True):
        assert got.count == n
        if n == 0:
            assert math.isnan(got.mean) and math.isnan(got.std)
            continue
        assert got.min == lo and got.max == hi
        assert got.mean == pytest.approx(mean, rel=rel, abs=1e-300)
        assert got.std == pytest.approx(std, rel=rel, abs=1e-300)


@pytest.mark.parametrize("name", list(layouts()))
def test_figures_match_float64_fsum(name: str) -> None:
    x, ch = layouts()[name]
    check_against_reference(x, ch, 1e-12)
    s = array_stats(x, ch)
    assert s.overall.nonfinite == int(np.count_nonzero(~np.isfinite(x)))


@pytest.mark.skipif(not TWO_THREADS, reason="needs two threads")
@pytest.mark.parametrize("name", list(layouts()))
def test_same_bits_at_one_and_two_threads(name: str) -> None:
    x, ch = layouts()[name]
    old = set_threads(1)
    try:
        one = array_stats(x, ch).as_dict()
        d_one = divisor_stats(np.abs(x) + 2, 0.75)
        set_threads(2)
        two = array_stats(x, ch).as_dict()
        d_two = divisor_stats(np.abs(x) + 2, 0.75)
    finally:
        set_threads(old)
    assert one == two
    assert d_one == d_two


@pytest.mark.skipif(not TWO_THREADS, reason="needs two threads")
def test_a_helper_slow_to_wake_changes_no_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calling thread takes ranges beside the helpers: with a helper that sleeps before
    each range, the caller runs most of them, and every figure is the same."""
    import threading
    import time

    x, ch = layouts()["picture planar"]
    old = set_threads(2)
    try:
        want = array_stats(x, ch).as_dict()
        d_want = divisor_stats(np.abs(x) + 2, 0.75)
        runs: dict[str, int] = {}
        inner = K._moments_blocks

        def slow_helper(*args):
            who = threading.current_thread().name
            runs[who] = runs.get(who, 0) + 1
            if who != threading.main_thread().name:
                time.sleep(0.05)
            inner(*args)

        monkeypatch.setattr(K, "_moments_blocks", slow_helper)
        got = array_stats(x, ch).as_dict()
        d_got = divisor_stats(np.abs(x) + 2, 0.75)
    finally:
        set_threads(old)
    assert got == want
    assert d_got == d_want
    main = runs.pop(threading.main_thread().name)
    assert runs and all(name.startswith("lrn-stats") for name in runs)
    assert main > sum(runs.values())  # the caller did not wait for the sleeping helper


@pytest.mark.skipif(not TWO_THREADS, reason="needs two threads")
def test_a_failing_range_raises_after_the_helpers_finish() -> None:
    """An error in one range reaches the caller, and only once every helper has stopped
    writing (nothing runs on after the call returns)."""
    import threading
    import time

    old = set_threads(2)
    done: list[tuple[int, int]] = []
    lock = threading.Lock()

    def kernel(c0: int, c1: int, out: np.ndarray) -> None:
        if c0 == 0:
            raise ValueError("range 0")
        time.sleep(0.01)
        with lock:
            done.append((c0, c1))

    try:
        with pytest.raises(ValueError, match="range 0"):
            K._in_threads(kernel, 8, part=np.zeros(8))
        seen = len(done)
        time.sleep(0.05)
    finally:
        set_threads(old)
    assert len(done) == seen  # no helper still running


@pytest.mark.parametrize("ranges", [1, 3, 64])
def test_same_bits_whatever_the_work_split(monkeypatch: pytest.MonkeyPatch,
                                           ranges: int) -> None:
    x, ch = layouts()["picture planar"]
    want = array_stats(x, ch).as_dict()
    monkeypatch.setattr(K, "_RANGES_PER_THREAD", ranges)
    assert array_stats(x, ch).as_dict() == want


def test_each_block_is_summed_alone() -> None:
    # the kernel over all blocks at once, or over any cut of them, writes the same rows
    x = layouts()["nchw"][0]
    flat = x.reshape(-1)
    shape, strides = (5, 6, 47 * 53), (6 * 47 * 53, 47 * 53, 1)
    group, tile = 1, 1000  # 3 tiles per row: 15 blocks
    blocks = 15
    whole = (np.full((blocks, 6, K.NCOLS), np.nan), np.full((blocks, 2), np.nan))
    K._moments_blocks(flat, K.ROWS, *shape, *strides, group, tile, 0, blocks, *whole)
    cut = (np.full((blocks, 6, K.NCOLS), np.nan), np.full((blocks, 2), np.nan))
    for b0, b1 in ((0, 4), (4, 5), (5, 15)):
        K._moments_blocks(flat, K.ROWS, *shape, *strides, group, tile, b0, b1, *cut)
    np.testing.assert_array_equal(whole[0], cut[0])
    np.testing.assert_array_equal(whole[1], cut[1])


@pytest.mark.parametrize("tile,values", [(4096, 2048), (100, 50), (37, 10000)])
def test_other_block_sizes_give_the_same_figures(monkeypatch: pytest.MonkeyPatch,
                                                 tile: int, values: int) -> None:
    monkeypatch.setattr(stats, "_BLOCK_TILE", tile)
    monkeypatch.setattr(stats, "_BLOCK_VALUES", values)
    for name in ("nchw", "nhwc", "picture interleaved"):
        x, ch = layouts()[name]
        check_against_reference(x, ch, 1e-12)


def test_planar_and_interleaved_pictures_give_the_same_bits() -> None:
    planar, ch = layouts()["picture planar"]
    interleaved = np.ascontiguousarray(planar)
    assert array_stats(planar, ch).as_dict() == array_stats(interleaved, ch).as_dict()


@pytest.mark.parametrize("dtype,offset,spread", [(np.float64, 1e6, 1e-3),
                                                 (np.float64, -1e8, 1.0),
                                                 (np.float32, 1e4, 1.0)])
def test_large_offset_small_variance(dtype, offset: float, spread: float) -> None:
    # a sum of squares minus n * mean**2 loses every digit here, and so do block means
    # merged at their absolute values (the offset's rounding swamps their differences)
    rng = np.random.default_rng(3)
    x = (offset + spread * rng.standard_normal((3, 4, 5000))).astype(dtype)
    check_against_reference(x, 1, 1e-11)
    check_against_reference(np.ascontiguousarray(x.transpose(0, 2, 1)), 2, 1e-11)


def test_shift_is_a_finite_value_even_after_non_finite_rows() -> None:
    rng = np.random.default_rng(4)
    x = (1e7 + rng.standard_normal((6, 2, 3000))).astype(np.float64)
    x[0] = np.nan  # the first rows of every block of channel 0 and 1
    x[1, :, :2999] = np.inf
    check_against_reference(x, 1, 1e-11)


def test_channel_dominance_matches_numpy() -> None:
    for name in ("nchw", "nhwc", "picture planar", "picture interleaved",
                 "strided 3 channels", "reversed strides"):
        x, ch = layouts()[name]
        a = np.abs(np.asarray(x, np.float64))
        s = a.sum(axis=ch)
        ok = np.isfinite(a).all(axis=ch) & np.isfinite(s) & (s > 0)
        want = float(np.mean((a.max(axis=ch) / np.where(ok, s, 1))[ok]))
        assert array_stats(x, ch).channel_dominance == pytest.approx(want, rel=1e-12), name


def test_channel_dominance_of_many_channels_matches_numpy() -> None:
    """19 channels: the per-pixel partials' eight-row passes and a remainder of three rows,
    a NaN and an inf (their pixels are left out) and a pixel of zeros (no ratio)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 19, 31, 29)).astype(np.float32)
    x[0, 9, 4, 5] = np.nan
    x[1, 17, 0, 0] = np.inf
    x[2, :, 3, 3] = 0.0
    for v, ch in ((x, 1), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), 3)):
        a = np.abs(np.asarray(v, np.float64))
        s = a.sum(axis=ch)
        ok = np.isfinite(a).all(axis=ch) & np.isfinite(s) & (s > 0)
        assert ok.sum() == ok.size - 3
        want = float(np.mean((a.max(axis=ch) / np.where(ok, s, 1))[ok]))
        assert array_stats(v, ch).channel_dominance == pytest.approx(want, rel=1e-12)


def test_all_channels_finished_at_once_equal_one_by_one() -> None:
    """``_Moments.channels`` (vectors) gives each channel exactly what ``channel`` (Python
    floats, one at a time) gives, types included, on sums with NaN, inf, zeros, signed
    zeros, subnormals, equal extremes and scaled exponents."""
    rng = np.random.default_rng(3)
    special = [0.0, -0.0, 1.0, -1.0, 1e-300, 1e300, math.inf, -math.inf, math.nan, 2.5,
               1e-320, 1.7e308]
    compared = 0
    for trial in range(400):
        mom = stats._Moments(7)
        mom.n = rng.choice([0, 1, 2, 5, 1000], 7).astype(np.int64)
        mom.nonfinite = rng.integers(0, 4, 7).astype(np.int64)
        for f in ("mean", "m2", "min", "max", "l1", "l2sq", "amin", "amax"):
            setattr(mom, f, np.where(rng.random(7) < 0.5, rng.choice(special, 7),
                                     rng.standard_normal(7) * 10.0 ** rng.integers(-5, 5, 7)))
        mom.amin, mom.amax = (np.abs(np.minimum(mom.amin, mom.amax)),
                              np.abs(np.maximum(mom.amin, mom.amax)))
        if trial % 3 == 0:
            mom.max = mom.min.copy()
        exp = int(rng.choice([0, 0, 3, -1100, 1100]))
        together = mom.channels(exp)
        for i in range(7):
            try:
                alone = mom.channel(i, exp)
            except ZeroDivisionError:  # l1 / n underflowing to 0 (not reachable from data)
                continue
            for got, want in zip(vars(together[i]).values(), vars(alone).values(), strict=True):
                assert type(got) is type(want)
                if isinstance(want, float) and math.isnan(want):
                    assert math.isnan(got)
                else:
                    assert got == want and math.copysign(1, got) == math.copysign(1, want)
            compared += 1
    assert compared > 2500


def test_other_dtypes_match_their_float64_values() -> None:
    rng = np.random.default_rng(5)
    for x in (rng.standard_normal((3, 4, 50)).astype(np.float16),
              rng.integers(-100, 100, (3, 4, 50)).astype(np.int16),
              rng.integers(0, 255, (3, 4, 50)).astype(np.uint8)):
        a, b = array_stats(x, 1), array_stats(x.astype(np.float64), 1)
        for sa, sb in zip((a.overall, *a.channels), (b.overall, *b.channels), strict=True):
            for name in STAT_NAMES:
                assert getattr(sa, name) == pytest.approx(getattr(sb, name), rel=1e-12,
                                                          nan_ok=True), name


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, -0.5, 0.0])
def test_divisor_fast_and_masked_chunks(beta: float) -> None:
    rng = np.random.default_rng(6)
    d = 2 + rng.random(100_000)
    d[5] = np.nan  # one chunk of 32 takes the masked path
    d[70_000] = 0.0  # another: D = 0 has no gain
    s = divisor_stats(d, beta)
    fin = d[np.isfinite(d)]
    pos = fin[fin > 0]
    g = pos ** -beta
    assert (s.d_min, s.d_max) == (fin.min(), fin.max())
    assert s.d_mean == pytest.approx(math.fsum(fin) / fin.size, rel=1e-14)
    assert s.gain_mean == pytest.approx(math.fsum(g) / g.size, rel=1e-14)
    assert s.gain_min == pytest.approx(g.min(), rel=1e-15)
    assert s.gain_max == pytest.approx(g.max(), rel=1e-15)
    clean = divisor_stats(d[np.isfinite(d) & (d > 0)], beta)  # every chunk fast
    assert clean.gain_mean == pytest.approx(s.gain_mean, rel=1e-14)


@pytest.mark.parametrize("beta", [0.75, 0.5])
def test_closed_form_gain_extremes_are_exact(beta: float) -> None:
    # the kernels take the gains of D's extremes (the closed forms round monotonically)
    # instead of tracking every gain: the same values as the min and max of all of them
    rng = np.random.default_rng(9)
    d = np.exp(rng.uniform(-30, 30, 50_003)).astype(np.float32)
    d[[3, 40_000]] = d[[40_000, 3]] * np.float32(1 + 1e-6)  # near-ties across chunks
    v = d.astype(np.float64)
    g = 1.0 / (np.sqrt(v) * np.sqrt(np.sqrt(v))) if beta == 0.75 else 1.0 / np.sqrt(v)
    s = divisor_stats(d, beta)
    assert (s.gain_min, s.gain_max) == (g.min(), g.max())
    assert s.gain_mean == pytest.approx(math.fsum(g) / g.size, rel=1e-13)


# --- lrn apply: a picture normalized in place ------------------------------------------------


def picture(h: int = 61, w: int = 83, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(8)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["within", "across"])
@pytest.mark.parametrize("pil_mode", ["RGB", "L"])
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_in_place_normalize_equals_the_whole_array_path(mode: str, pil_mode: str,
                                                        dtype: str | None) -> None:
    from lrn_cli.pipeline import ReadOptions, Settings, load, normalize

    settings = Settings(mode=mode, alpha=1e-1, size=5)
    ropts = ReadOptions(dtype=dtype)
    data = picture(mode=pil_mode)
    whole = normalize(load("p.png", ropts, mode, data), settings)[0]
    loaded = load("p.png", ropts, mode, data)
    x = loaded.items[0].array
    y_ref, d_ref = lrn(x, **settings.lrn_kwargs(), channel_axis=2, return_divisor=True)
    assert d_ref.std() > 0  # the divisor varies: its figures are not trivial
    part = normalize(loaded, settings, reuse_input=True)[0]
    assert np.shares_memory(part.output, x)  # written over the input
    np.testing.assert_array_equal(part.output, whole.output)
    np.testing.assert_array_equal(part.output, y_ref)
    assert part.before == whole.before and part.after == whole.after
    for name in ("d_min", "d_max", "gain_min", "gain_max"):
        assert getattr(part.divisor, name) == getattr(whole.divisor, name)
    assert part.divisor.d_mean == pytest.approx(whole.divisor.d_mean, rel=1e-14)
    assert part.divisor.gain_mean == pytest.approx(whole.divisor.gain_mean, rel=1e-14)


@pytest.mark.parametrize("rescale", ["minmax", "none", "percentile"])
@pytest.mark.parametrize("bits", [8, 16])
def test_consuming_save_writes_the_same_file(tmp_path, rescale: str, bits: int) -> None:
    from lrn_cli.pipeline import (
        ReadOptions,
        Settings,
        WriteOptions,
        load,
        normalize,
        save,
    )

    settings = Settings(mode="within")
    wopts = WriteOptions(rescale=rescale, bits=bits)
    files = []
    for consume in (False, True):
        loaded = load("p.png", ReadOptions(), "within", picture())
        results = normalize(loaded, settings, reuse_input=consume)
        out = tmp_path / f"{consume}.png"
        save(loaded, results, out, wopts, consume=consume)
        files.append(out.read_bytes())
    assert files[0] == files[1]


def test_rescale_in_place_refuses_what_it_cannot_do() -> None:
    from lrn_cli.image_write import rescale_in_place

    x = np.ones((4, 5, 3), np.float32)
    assert not rescale_in_place(x, "percentile")
    assert not rescale_in_place(x.astype(np.float64), "minmax")
    assert not rescale_in_place(x[..., 0], "minmax")
    ro = x.copy()
    ro.flags.writeable = False
    assert not rescale_in_place(ro, "minmax")
    assert (x == 1).all()


def test_read_only_and_broadcast_arrays() -> None:
    # read-only memory types the kernel's rows differently from its writable scratch
    x = np.random.default_rng(9).random((4, 3, 50, 7), dtype=np.float32)
    for layout, ch in ((x, 1), (np.ascontiguousarray(x.transpose(0, 2, 3, 1)), 3)):
        frozen = layout.copy()
        frozen.flags.writeable = False
        assert array_stats(frozen, ch).as_dict() == array_stats(layout, ch).as_dict()
    wide = np.broadcast_to(x[:, :1], (4, 5, 50, 7))  # zero strides
    check_against_reference(wide, 1, 1e-12)


@pytest.mark.parametrize("beta", [0.75, 0.5])
def test_refined_float32_gain_is_as_exact_as_the_closed_form(beta: float) -> None:
    # a float32 divisor's gains are its float32 closed form refined in float64: each within
    # ~1 ulp of the exact power, so the mean is that of the exact gains to float64 rounding;
    # the kernel and the NumPy path of a chunk holding a NaN sum the same refined values
    rng = np.random.default_rng(11)
    d = np.exp(rng.uniform(-100, 85, 40_001)).astype(np.float32)
    exact = np.power(d.astype(np.longdouble), -np.longdouble(beta))
    s = divisor_stats(d, beta)
    assert s.gain_mean == pytest.approx(float(exact.sum() / exact.size), rel=4e-16)
    with_nan = np.concatenate([d, np.array([np.nan], np.float32)])  # last chunk via NumPy
    assert divisor_stats(with_nan, beta).gain_mean == pytest.approx(s.gain_mean, rel=1e-15)
    big_endian = divisor_stats(d.astype(">f4"), beta)  # the NumPy path for every chunk
    assert big_endian.gain_mean == pytest.approx(s.gain_mean, rel=1e-15)
    assert (big_endian.gain_min, big_endian.gain_max) == (s.gain_min, s.gain_max)
