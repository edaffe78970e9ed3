"""``.npy`` files larger than memory: :func:`lrn_cli.streaming.stream_npy`, ``lrn apply --stream``.

What is checked:

* the streamed output is bit-identical to the in-memory :func:`lrn_cli.lrn` (both modes, slabs
  smaller than one sample, exactly one, several, larger than the file; float32/float64/float16/
  int16/big-endian inputs; NCHW, NHWC, channel axis given, N=1), and the streamed statistics
  equal :func:`array_stats`/:func:`divisor_stats` of the in-memory arrays to ~1e-12;
* refusals are one clear ``InputError``/``OutputError`` naming the file, raised before anything
  is allocated or written, and no ``*.part`` file is ever left behind;
* the real CLI (``--stream``, ``--no-stream``, ``--stream-threshold``, the progress bar);
* memory: the peak resident set of a fresh process streaming a ~320 MB file grows by far less
  than the file (``ru_maxrss``, measured, not assumed), and traced allocations do not grow with
  the file size.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from collections.abc import Iterator
from dataclasses import astuple, fields
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from conftest import invoke
from numpy.lib import format as npy_format

from lrn_cli import DtypeConversionWarning, lrn
from lrn_cli.errors import InputError, OutputError
from lrn_cli.layouts import resolve_layout
from lrn_cli.pipeline import ReadOptions, StreamChoice, choose_streaming, should_stream
from lrn_cli.stats import ArrayStats, ChannelStats, DivisorStats, array_stats, divisor_stats
from lrn_cli.streaming import DEFAULT_THRESHOLD, can_stream, stream_npy

ALEXNET = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
#: Strong enough for LRN to really change the data on values of ~10-30.
STRONG = {"size": 5, "alpha": 1e-2, "beta": 0.75, "k": 2.0}
MiB = 2**20

# --------------------------------------------------------------------------- helpers


def save(path: Path, arr: np.ndarray) -> Path:
    np.save(path, arr, allow_pickle=False)
    return path


def acts(shape, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """ReLU-like activations of magnitude ~10-30, with exact zeros."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 8.0, size=shape)
    x[rng.random(shape) < 0.3] = 0.0
    if np.dtype(dtype).kind in "iu":
        return np.round(x).astype(dtype)
    return x.astype(dtype)


def reference(x: np.ndarray, kw: dict, layout=None, channel_axis=None,
              channel_axis_given=False):
    """In-memory result, divisor and channel axis, as the non-streaming path computes them."""
    _, axis, _ = resolve_layout(x.ndim, kw.get("mode", "across"), layout, channel_axis,
                                channel_axis_given=channel_axis_given)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DtypeConversionWarning)
        y, d = lrn(x, **kw, channel_axis=axis, return_divisor=True)
    return y, d, axis


def as_lrn_sees(x: np.ndarray) -> np.ndarray:
    """The input array as the in-memory path hands it to LRN: integers and bool as float32."""
    return x.astype(np.float32) if x.dtype.kind in "biu" else x


def stream(src, out, kw: dict, **options):
    """``stream_npy`` with the integer-conversion warning of ``lrn`` silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DtypeConversionWarning)
        return stream_npy(src, out, **kw, **options)


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted atomic write would leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def _close(got: float, want: float, scale: float, what: str) -> None:
    if isinstance(want, int) and isinstance(got, int):
        assert got == want, what
        return
    if math.isnan(want):
        assert math.isnan(got), f"{what}: {got} != nan"
        return
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12 * scale), (
        f"{what}: streamed {got!r} != in-memory {want!r}"
    )


def assert_stats_equal(got: ArrayStats, want: ArrayStats, label: str) -> None:
    assert got.shape == want.shape, label
    assert got.dtype == want.dtype, label
    assert got.channel_axis == want.channel_axis, label
    assert len(got.channels) == len(want.channels), label
    scale = max(abs(want.overall.min), abs(want.overall.max), 1e-300)
    names = [f.name for f in fields(ChannelStats)]
    for i, (g, w) in enumerate(zip((got.overall, *got.channels), (want.overall, *want.channels),
                                   strict=True)):
        for name, gv, wv in zip(names, astuple(g), astuple(w), strict=True):
            _close(gv, wv, scale, f"{label} {'all' if i == 0 else f'c{i - 1}'} {name}")
    if want.channel_dominance is None:
        assert got.channel_dominance is None, label
    else:
        _close(got.channel_dominance, want.channel_dominance, 1.0, f"{label} dominance")


def assert_divisor_equal(got: DivisorStats, want: DivisorStats) -> None:
    scale = max(abs(want.d_max), 1.0)
    for f, gv, wv in zip(fields(DivisorStats), astuple(got), astuple(want), strict=True):
        _close(gv, wv, scale, f"divisor {f.name}")


def check_parity(tmp_path: Path, x: np.ndarray, kw: dict, slab_bytes: int, **layout) -> None:
    """Stream ``x`` and compare output bytes and statistics with the in-memory run."""
    src = save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    y, d, axis = reference(x, kw, **layout)
    res = stream(src, out, kw, slab_bytes=slab_bytes, **layout)
    z = np.load(out, allow_pickle=False)
    assert z.dtype == y.dtype and z.shape == y.shape
    assert z.tobytes() == y.tobytes(), "streamed output differs from lrn() in memory"
    per_sample = x[:1].nbytes
    rows = max(1, slab_bytes // per_sample)
    assert res.slabs == -(-x.shape[0] // rows)
    # like `lrn apply --no-stream`: statistics of the input LRN saw (integers as float32)
    assert_stats_equal(res.before, array_stats(as_lrn_sees(x), axis), "before")
    assert_stats_equal(res.after, array_stats(y, axis), "after")
    assert_divisor_equal(res.divisor, divisor_stats(d, kw.get("beta", 0.75)))
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- parity

SHAPE = (7, 6, 9, 11)
SAMPLE = math.prod(SHAPE[1:]) * 4
SLABS = {
    "third_of_a_sample": SAMPLE // 3,
    "one_sample": SAMPLE,
    "three_samples": 3 * SAMPLE,
    "larger_than_file": 100 * SAMPLE * SHAPE[0],
}


@pytest.mark.parametrize("size", [5, 11])
@pytest.mark.parametrize("slab", list(SLABS))
@pytest.mark.parametrize("mode", ["across", "within"])
def test_bit_identical_for_every_slab_size(tmp_path, mode, slab, size):
    kw = dict(STRONG, size=size, mode=mode)
    check_parity(tmp_path, acts(SHAPE), kw, SLABS[slab])


@pytest.mark.parametrize("dtype", ["float64", "float16", "int16", ">f4", "uint8", "bool"])
@pytest.mark.parametrize("mode", ["across", "within"])
def test_bit_identical_for_other_dtypes(tmp_path, mode, dtype):
    x = acts((5, 4, 8, 8), np.float32, seed=3)
    x = (x > 10) if dtype == "bool" else x.astype(dtype)
    kw = dict(STRONG, mode=mode)
    check_parity(tmp_path, x, kw, 2 * x[:1].nbytes)
    z = np.load(tmp_path / "y.npy")
    expected = {"float64": np.float64, "float16": np.float16}.get(dtype, np.float32)
    assert z.dtype == expected  # integers and bool become float32; >f4 becomes native


@pytest.mark.parametrize("mode", ["across", "within"])
@pytest.mark.parametrize("size", [3, 13])
def test_bit_identical_nhwc(tmp_path, mode, size):
    x = acts((6, 9, 10, 12), seed=4)
    check_parity(tmp_path, x, dict(STRONG, size=size, mode=mode), x[:1].nbytes,
                 layout="NHWC")


@pytest.mark.parametrize("axis", [3, 1, None])
def test_bit_identical_within_with_channel_axis_given(tmp_path, axis):
    x = acts((6, 5, 10, 12), seed=5)
    check_parity(tmp_path, x, dict(STRONG, mode="within"), 2 * x[:1].nbytes,
                 channel_axis=axis, channel_axis_given=True)


@pytest.mark.parametrize("mode", ["across", "within"])
@pytest.mark.parametrize("slab", [100, 10**9])
def test_bit_identical_single_sample(tmp_path, mode, slab):
    check_parity(tmp_path, acts((1, 9, 10, 12), seed=6), dict(STRONG, mode=mode), slab)


@pytest.mark.parametrize("size", [21, 41])
def test_bit_identical_within_large_planes(tmp_path, size):
    """Planes tall enough for the within kernel to cut them into strips (halo rows)."""
    x = acts((5, 2, 300, 257), seed=7)
    check_parity(tmp_path, x, dict(STRONG, size=size, mode="within"), x[:1].nbytes // 2)


@pytest.mark.parametrize("mode", ["across", "within"])
def test_statistics_merge_over_many_blocks(tmp_path, mode):
    """More than 2**19 elements: array_stats itself merges blocks, the accumulator slabs."""
    x = acts((3, 32, 96, 96), seed=8)
    x[0, 0, 0, 0] = np.nan  # non-finite values are counted, not averaged
    x[2, 5, 7, 1] = np.inf
    check_parity(tmp_path, x, dict(STRONG, mode=mode), x[:1].nbytes)


@pytest.mark.parametrize("layout", ["NC", "NCL", "NCDHW"])
def test_bit_identical_other_ranks(tmp_path, layout):
    shape = {"NC": (9, 17), "NCL": (5, 8, 33), "NCDHW": (3, 6, 4, 5, 7)}[layout]
    x = acts(shape, seed=9)
    check_parity(tmp_path, x, dict(STRONG), 2 * x[:1].nbytes, layout=layout)


def test_statistics_only_without_output(tmp_path):
    x = acts((4, 6, 9, 11), seed=10)
    src = save(tmp_path / "x.npy", x)
    y, d, axis = reference(x, STRONG)
    res = stream(src, None, STRONG, slab_bytes=x[:1].nbytes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
    assert res.slabs == 4
    assert_stats_equal(res.after, array_stats(y, axis), "after")
    assert_divisor_equal(res.divisor, divisor_stats(d, STRONG["beta"]))


def test_progress_is_reported_per_slab(tmp_path):
    x = acts((10, 3, 4, 5), seed=11)
    src = save(tmp_path / "x.npy", x)
    calls: list[tuple[int, int]] = []
    res = stream(src, tmp_path / "y.npy", STRONG, slab_bytes=3 * x[:1].nbytes,
                 on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 10), (6, 10), (9, 10), (10, 10)]
    assert res.slabs == len(calls)


def test_overwrite_replaces_an_existing_output(tmp_path):
    x = acts((4, 6, 5, 5), seed=12)
    src = save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    out.write_bytes(b"old")
    stream(src, out, STRONG, overwrite=True)
    assert np.load(out).tobytes() == reference(x, STRONG)[0].tobytes()
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- refusals


def assert_clear(exc: pytest.ExceptionInfo, path: Path) -> str:
    """One line, starting with the file's name."""
    message = str(exc.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    assert exc.value.path == str(path)
    return message


def test_refuses_fortran_order(tmp_path):
    src = save(tmp_path / "f.npy", np.asfortranarray(acts((4, 3, 5, 6))))
    with pytest.raises(InputError) as exc:
        stream(src, tmp_path / "y.npy", STRONG)
    message = assert_clear(exc, src)
    assert "Fortran" in message and "--no-stream" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]


@pytest.mark.parametrize(
    ("shape", "mode", "layout", "why"),
    [
        ((6, 8, 8), "across", "CHW", "axis 0 is the channel axis"),
        ((6, 2, 8, 8), "across", "CNHW", "axis 0 is the channel axis"),
        ((8, 8, 3), "within", "HWC", "axis 0 is a spatial axis"),
        ((8, 8), "within", None, "axis 0 is a spatial axis"),
        ((8,), "across", None, "1-D"),
    ],
)
def test_refuses_layouts_where_axis_0_is_not_samples(tmp_path, shape, mode, layout, why):
    src = save(tmp_path / "x.npy", acts(shape))
    with pytest.raises(InputError) as exc:
        stream(src, tmp_path / "y.npy", dict(STRONG, mode=mode), layout=layout)
    message = assert_clear(exc, src)
    assert "cannot be streamed" in message and why in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


@pytest.mark.parametrize(
    ("shape", "mode", "axis", "expected"),
    [
        ((4, 3, 5, 5), "across", 1, None),
        ((4, 5, 5, 3), "across", 3, None),
        ((3, 5, 5), "across", 0, "axis 0 is the channel axis"),
        ((3, 5, 5), "within", 0, None),  # CHW within: planes never mix, cut along C
        ((5, 5, 3), "within", 2, "axis 0 is a spatial axis"),
        ((4, 5, 5), "within", None, None),
        ((5, 5), "within", None, "axis 0 is a spatial axis"),
        ((7,), "across", 0, "a 1-D array has no sample axis to cut"),
    ],
)
def test_can_stream(shape, mode, axis, expected):
    assert can_stream(shape, mode, axis) == expected


def test_truncated_file_refused_before_allocation(tmp_path):
    """The header claims 80 GB; the file holds 16 bytes: refused, nothing allocated."""
    src = tmp_path / "huge.npy"
    with open(src, "wb") as fh:
        npy_format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 4, 100, 250)})
        fh.write(b"\0" * 16)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as exc:
            stream(src, tmp_path / "y.npy", STRONG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = assert_clear(exc, src)
    assert "truncated" in message and "80000000000 bytes" in message
    assert peak < MiB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.npy"]


def test_truncated_file_refused_before_any_slab(tmp_path):
    x = acts((8, 4, 16, 16))
    src = save(tmp_path / "x.npy", x)
    with open(src, "r+b") as fh:
        fh.truncate(os.path.getsize(src) - x[:1].nbytes // 2)
    seen = []
    with pytest.raises(InputError, match="truncated: header says") as exc:
        stream(src, tmp_path / "y.npy", STRONG, slab_bytes=x[:1].nbytes,
               on_progress=lambda *a: seen.append(a))
    assert_clear(exc, src)
    assert seen == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_trailing_bytes_refused(tmp_path):
    src = save(tmp_path / "x.npy", acts((2, 3, 4, 4)))
    with open(src, "ab") as fh:
        fh.write(b"\0" * 64)
    with pytest.raises(InputError, match="64 unexpected bytes after the array data") as exc:
        stream(src, tmp_path / "y.npy", STRONG)
    assert_clear(exc, src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: np.array([[1, "a"], [None, 2.0]], dtype=object), "pickled Python objects"),
        (lambda: np.zeros((3, 2), dtype=[("a", "<f4"), ("b", "<i4")]), "structured"),
        (lambda: np.zeros((3, 2, 4, 4), dtype=np.complex64), "complex64"),
        (lambda: np.array([["ab", "cd"]]), "not supported"),
    ],
)
def test_refuses_unsupported_dtypes(tmp_path, make, words):
    src = tmp_path / "x.npy"
    np.save(src, make(), allow_pickle=True)
    with pytest.raises(InputError) as exc:
        stream(src, tmp_path / "y.npy", STRONG)
    assert words in assert_clear(exc, src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_not_a_npy_file(tmp_path):
    src = tmp_path / "x.npy"
    src.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(InputError, match="not a .npy file") as exc:
        stream(src, tmp_path / "y.npy", STRONG)
    assert_clear(exc, src)


def test_missing_input(tmp_path):
    src = tmp_path / "nope.npy"
    with pytest.raises(InputError, match="no such file") as exc:
        stream(src, tmp_path / "y.npy", STRONG)
    assert_clear(exc, src)


def test_existing_output_refused_without_overwrite(tmp_path):
    src = save(tmp_path / "x.npy", acts((3, 4, 5, 5)))
    out = tmp_path / "y.npy"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError) as exc:
        stream(src, out, STRONG)
    assert "already exists" in assert_clear(exc, out)
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_input_never_overwritten(tmp_path):
    src = save(tmp_path / "x.npy", acts((3, 4, 5, 5)))
    before = src.read_bytes()
    with pytest.raises(OutputError, match="is an input file"):
        stream(src, src, STRONG, overwrite=True, protect=(src,))
    assert src.read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_midway_leaves_nothing_behind(tmp_path, error):
    x = acts((6, 4, 8, 8))
    src = save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"

    def boom(done, total):
        assert any(p.name.endswith(".part") for p in tmp_path.iterdir())  # writing for real
        if done >= 2:
            raise error("stop")

    with pytest.raises(error):
        stream(src, out, STRONG, slab_bytes=x[:1].nbytes, on_progress=boom)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_file_shrinking_while_streaming_is_an_input_error(tmp_path):
    x = acts((6, 4, 8, 8))
    src = save(tmp_path / "x.npy", x)

    def shrink(done, total):
        if done == 2:
            with open(src, "r+b") as fh:
                fh.truncate(os.path.getsize(src) - x[:1].nbytes)

    with pytest.raises(InputError, match="truncated while reading") as exc:
        stream(src, tmp_path / "y.npy", STRONG, slab_bytes=x[:1].nbytes, on_progress=shrink)
    assert_clear(exc, src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


# --------------------------------------------------------------------------- should_stream


@pytest.mark.parametrize(
    ("name", "output", "options", "expected"),
    [
        ("x.npy", "y.npy", {"stream": "always"}, True),
        ("x.npy", None, {"stream": "always"}, True),
        ("x.npy", "y.npy", {"stream": "never", "stream_threshold": 0}, False),
        ("x.npy", "y.npy", {"stream_threshold": 100}, True),
        ("x.npy", "y.npy", {"stream_threshold": 10**9}, False),
        ("x.npy", "y.NPY", {"stream_threshold": 100}, True),
        ("x.npy", "y.npz", {"stream": "always"}, False),
        ("x.npy", "y.png", {"stream": "always"}, False),
        ("x.npy", "-", {"stream": "always"}, False),
        ("x.npy", "y.npy", {"stream": "always", "dtype": "float64"}, False),
        ("x.npz", "y.npy", {"stream": "always"}, False),
    ],
)
def test_should_stream(tmp_path, name, output, options, expected):
    src = tmp_path / name
    src.write_bytes(b"\0" * 1000)
    assert should_stream(str(src), output, ReadOptions(**options)) is expected


def test_default_threshold_is_256_mib():
    assert DEFAULT_THRESHOLD == ReadOptions().stream_threshold == 256 * MiB


@pytest.mark.parametrize(
    ("output", "options", "data", "keep_output", "why"),
    [
        ("y.npz", {}, None, False, "streaming writes .npy only, not .npz"),
        ("y.png", {}, None, False, "streaming writes .npy only, not .png"),
        ("-", {}, None, False, "-o - writes to standard output"),
        ("y.npy", {"dtype": "float64"}, None, False, "--dtype float64"),
        ("y.npy", {}, b"\x93NUMPY", False, "standard input"),
        (None, {}, None, True, "the whole output array is needed"),
    ],
)
def test_forced_stream_that_cannot_apply_says_why(tmp_path, output, options, data,
                                                  keep_output, why):
    src = save(tmp_path / "x.npy", acts((2, 3, 4, 4)))
    choice = choose_streaming(str(src), output, ReadOptions(stream="always", **options), data,
                              keep_output=keep_output)
    assert choice.stream is False
    assert choice.reason is not None
    assert choice.reason.startswith("--stream ignored: ") and why in choice.reason
    assert choice.reason.endswith("; processed in memory")
    # without --stream nobody asked: no note
    auto = choose_streaming(str(src), output, ReadOptions(stream_threshold=0, **options), data,
                            keep_output=keep_output)
    assert auto.stream is False and auto.reason is None


def test_forced_stream_of_a_non_npy_input_says_why(tmp_path):
    src = tmp_path / "x.npz"
    np.savez(src, a=acts((2, 3, 4, 4)))
    choice = choose_streaming(str(src), None, ReadOptions(stream="always"))
    assert choice == StreamChoice(False, "--stream ignored: only .npy inputs are streamed; "
                                         "processed in memory")


def test_no_stream_and_small_files_have_no_reason(tmp_path):
    src = save(tmp_path / "x.npy", np.asfortranarray(acts((2, 3, 4, 4))))
    assert choose_streaming(str(src), "y.npz", ReadOptions(stream="never")) == StreamChoice(False)
    assert choose_streaming(str(src), "y.npy", ReadOptions()) == StreamChoice(False)


@pytest.mark.parametrize(
    ("shape", "fortran", "mode", "options", "why"),
    [
        ((4, 3, 5, 6), True, "across", {}, "is Fortran-ordered"),
        ((6, 8, 8), False, "across", {}, "axis 0 is the channel axis"),
        ((4, 6, 8), False, "across", {"layout": "CNL"}, "axis 0 is the channel axis"),
        ((8, 8, 3), False, "within", {"layout": "HWC"}, "axis 0 is a spatial axis"),
        ((5, 4, 6), False, "across", {"channel_axis": 0, "channel_axis_given": True},
         "axis 0 is the channel axis"),
        ((7,), False, "across", {}, "1-D"),
    ],
)
def test_auto_mode_falls_back_to_memory_from_the_header(tmp_path, shape, fortran, mode,
                                                       options, why):
    x = acts(shape)
    src = save(tmp_path / "x.npy", np.asfortranarray(x) if fortran else x)
    ropts = ReadOptions(stream_threshold=100, **options)
    choice = choose_streaming(str(src), "y.npy", ropts, mode=mode)
    assert choice.stream is False
    assert choice.reason is not None and why in choice.reason
    assert choice.reason.startswith("larger than --stream-threshold but ")
    assert should_stream(str(src), "y.npy", ropts, mode=mode) is False
    # --stream still means streaming: stream_npy then refuses with the clear message
    forced = ReadOptions(stream="always", **options)
    assert choose_streaming(str(src), "y.npy", forced, mode=mode) == StreamChoice(True)


@pytest.mark.parametrize(
    ("shape", "mode", "options"),
    [
        ((4, 3, 5, 6), "across", {}),
        ((6, 8, 8), "within", {}),  # CHW within: the planes never mix, cut along C
        ((4, 6, 8), "across", {"layout": "NLC"}),
        ((4, 5, 6, 3), "across", {"channel_axis": -1, "channel_axis_given": True}),
    ],
)
def test_auto_mode_streams_what_can_be_streamed(tmp_path, shape, mode, options):
    src = save(tmp_path / "x.npy", acts(shape))
    ropts = ReadOptions(stream_threshold=100, **options)
    assert choose_streaming(str(src), "y.npy", ropts, mode=mode) == StreamChoice(True)
    assert choose_streaming(str(src), None, ropts, mode=mode) == StreamChoice(True)


def test_auto_mode_leaves_bad_headers_to_the_streaming_error(tmp_path):
    """A large file whose header or layout is wrong is refused without being loaded."""
    src = save(tmp_path / "x.npy", acts((4, 3, 5, 6)))
    bad_layout = ReadOptions(stream_threshold=100, layout="NCL")
    assert choose_streaming(str(src), "y.npy", bad_layout) == StreamChoice(True)
    with pytest.raises(InputError, match="layout NCL has 3 axes but the array has 4"):
        stream(src, None, STRONG, layout="NCL")


# --------------------------------------------------------------------------- the CLI

def cli(*args, **env) -> Result:
    """``lrn ARGS`` in-process (conftest's ``invoke``), ``env`` as keyword arguments."""
    return invoke(args, env=env)


def both_modes_array_docs(src: Path) -> tuple[dict, dict]:
    """The JSON document of the first array of ``lrn apply SRC --json``, streamed and in
    memory."""
    docs = []
    for flag in ("--stream", "--no-stream"):
        r = cli("apply", src, flag, "--json")
        assert r.exit_code == 0, r.stderr
        docs.append(json.loads(r.stdout)["files"][0]["arrays"][0])
    return docs[0], docs[1]


def streamed(result: Result) -> bool:
    return "streamed slab by slab" in result.stderr


@pytest.mark.parametrize(
    "extra",
    [[], ["--mode", "within", "-n", "7"], ["--layout", "NHWC"],
     ["--convention", "tensorflow", "--depth-radius", "3", "--alpha", "1e-3"]],
)
def test_cli_stream_and_no_stream_write_the_same_bytes(tmp_path, extra):
    src = save(tmp_path / "x.npy", acts((5, 8, 9, 7), seed=20))
    a = cli("apply", src, "-o", tmp_path / "a.npy", "--stream", *extra)
    b = cli("apply", src, "-o", tmp_path / "b.npy", "--no-stream", *extra)
    assert a.exit_code == 0, a.stderr
    assert b.exit_code == 0, b.stderr
    assert streamed(a) and not streamed(b)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert leftovers(tmp_path) == []


def test_cli_statistics_match_between_modes(tmp_path):
    src = save(tmp_path / "x.npy", acts((5, 8, 9, 7), seed=21))
    a, b = both_modes_array_docs(src)
    assert a["layout"] == b["layout"] == "NCHW"
    assert a["channel_axis"] == b["channel_axis"] == 1

    def flat(doc, prefix=""):
        if isinstance(doc, dict):
            for k, v in doc.items():
                yield from flat(v, f"{prefix}/{k}")
        elif isinstance(doc, list):
            for i, v in enumerate(doc):
                yield from flat(v, f"{prefix}[{i}]")
        else:
            yield prefix, doc

    fa, fb = dict(flat(a)), dict(flat(b))
    assert fa.keys() == fb.keys()
    for key, va in fa.items():
        vb = fb[key]
        if isinstance(va, float) and isinstance(vb, float):
            assert math.isclose(va, vb, rel_tol=1e-12, abs_tol=1e-12), key
        else:
            assert va == vb, key


def test_cli_threshold_streams_by_default(tmp_path):
    src = save(tmp_path / "x.npy", acts((4, 8, 9, 7), seed=22))  # ~8 KB
    small = cli("apply", src, "-o", tmp_path / "a.npy", "--stream-threshold", "1KB")
    assert small.exit_code == 0, small.stderr
    assert streamed(small)
    big = cli("apply", src, "-o", tmp_path / "b.npy", "--stream-threshold", "1MB")
    assert big.exit_code == 0, big.stderr
    assert not streamed(big)
    default = cli("apply", src, "-o", tmp_path / "c.npy")
    assert not streamed(default)  # 8 KB is far below 256MB
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_cli_json_records_that_it_streamed(tmp_path):
    src = save(tmp_path / "x.npy", acts((4, 8, 9, 7), seed=23))
    r = cli("apply", src, "--stream-threshold", "1KB", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "streamed slab by slab" in doc["files"][0]["notes"]
    assert doc["files"][0]["output"] is None


def test_cli_no_stream_beats_the_threshold(tmp_path):
    src = save(tmp_path / "x.npy", acts((4, 8, 9, 7), seed=24))
    r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream-threshold", "1KB", "--no-stream")
    assert r.exit_code == 0, r.stderr
    assert not streamed(r)


@pytest.mark.parametrize("bad", ["abc", "12XB", "-5", "", "1e3"])
def test_cli_bad_threshold_is_a_usage_error(tmp_path, bad):
    src = save(tmp_path / "x.npy", acts((2, 3, 4, 4)))
    r = cli("apply", src, "--stream-threshold", bad)
    assert r.exit_code == 2, r.stderr
    assert "--stream-threshold" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("bad", ["1.2.3MB", "..", ".", "1..5GB", "9" * 400])
def test_cli_malformed_number_threshold_is_a_usage_error(tmp_path, bad):
    src = save(tmp_path / "x.npy", acts((2, 3, 4, 4)))
    r = cli("apply", src, "--stream-threshold", bad)  # AssertionError when it crashes
    assert r.exit_code == 2, r.stderr
    assert "--stream-threshold" in r.stderr and "is not a size" in r.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1KB", 1024), ("1kb", 1024), ("256MB", 256 * MiB), ("256M", 256 * MiB),
     ("1.5GB", 3 * 2**29), ("512", 512), ("0", 0), (" 2 GB ", 2 * 2**30), (".5K", 512),
     ("2.MB", 2 * MiB)],
)
def test_parse_size(text, expected):
    from lrn_cli.cli.cmd_apply import parse_size

    assert parse_size(text) == expected


def test_cli_progress_bar_over_samples(tmp_path):
    src = save(tmp_path / "x.npy", acts((12, 8, 9, 7), seed=25))
    r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream", FORCE_COLOR="1",
            TTY_COMPATIBLE="1")
    assert r.exit_code == 0, r.stderr
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stderr)
    assert "streaming" in plain and "12/12" in plain and "samples" in plain


def test_cli_quiet_has_no_progress_bar(tmp_path):
    src = save(tmp_path / "x.npy", acts((12, 8, 9, 7), seed=26))
    r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream", "--quiet", FORCE_COLOR="1",
            TTY_COMPATIBLE="1")
    assert r.exit_code == 0, r.stderr
    assert "streaming" not in r.stderr and "samples" not in r.stderr


def test_cli_refusal_names_the_file_and_the_way_out(tmp_path):
    src = save(tmp_path / "f.npy", np.asfortranarray(acts((4, 3, 5, 6))))
    r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream")
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {src}: is Fortran-ordered; streaming needs C order "
                      "(use --no-stream)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]
    ok = cli("apply", src, "-o", tmp_path / "y.npy", "--no-stream")
    assert ok.exit_code == 0, ok.stderr


def test_cli_existing_output_refused(tmp_path):
    src = save(tmp_path / "x.npy", acts((3, 4, 5, 5)))
    out = tmp_path / "y.npy"
    out.write_bytes(b"keep")
    r = cli("apply", src, "-o", out, "--stream")
    assert r.exit_code == 1
    assert "already exists" in r.stderr
    assert out.read_bytes() == b"keep"
    r = cli("apply", src, "-o", out, "--stream", "--overwrite")
    assert r.exit_code == 0, r.stderr
    assert np.load(out).shape == (3, 4, 5, 5)


@pytest.mark.parametrize("kind", ["fortran", "chw"])
def test_cli_auto_mode_falls_back_when_the_file_cannot_be_streamed(tmp_path, kind):
    x = acts((6, 8, 8)) if kind == "chw" else np.asfortranarray(acts((4, 3, 5, 6)))
    src = save(tmp_path / "x.npy", x)
    r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream-threshold", "1KB")
    assert r.exit_code == 0, r.stderr


def test_cli_streamed_integers_get_a_note_not_a_python_warning(tmp_path):
    src = save(tmp_path / "x.npy", acts((4, 3, 5, 5), np.int16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # outside pytest: printed to stderr with a source line
        r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream")
    assert r.exit_code == 0, r.stderr
    assert [str(w.message) for w in caught if w.category is DtypeConversionWarning] == []
    assert "converted int16 to float32" in r.stderr


def test_cli_streamed_layout_is_the_one_given(tmp_path):
    src = save(tmp_path / "x.npy", acts((4, 6, 5)))
    r = cli("apply", src, "--stream", "--layout", "NLC", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["files"][0]["arrays"][0]["layout"] == "NLC"


def test_streamed_empty_batch_keeps_layout_and_dtype(tmp_path):
    x = np.zeros((0, 3, 4, 4), np.float32)
    src = save(tmp_path / "x.npy", x)
    res = stream(src, tmp_path / "y.npy", STRONG)
    assert np.load(tmp_path / "y.npy").shape == (0, 3, 4, 4)
    assert_stats_equal(res.before, array_stats(x, 1), "before")
    assert_stats_equal(res.after, array_stats(x, 1), "after")
    assert res.slabs == 0 and res.layout == "NCHW" and res.channel_axis == 1


@pytest.mark.parametrize("dtype", ["int16", "uint8", "float16"])
def test_streamed_empty_batch_reports_the_dtype_lrn_would_see(tmp_path, dtype):
    x = np.zeros((0, 3, 4, 4), dtype)
    res = stream(save(tmp_path / "x.npy", x), None, STRONG)
    assert res.before.dtype == ("float16" if dtype == "float16" else "float32")
    assert res.after.dtype == ("float16" if dtype == "float16" else "float32")


def test_stats_accumulator_takes_axis_and_dtype_up_front():
    from lrn_cli.stats import StatsAccumulator

    want = array_stats(np.zeros((0, 3, 4, 4), np.float64), 1)
    acc = StatsAccumulator(3, channel_axis=1, dtype=np.float64)
    assert_stats_equal(acc.result((0, 3, 4, 4)), want, "empty")
    acc = StatsAccumulator(None, dtype="float32")  # no channels
    assert acc.result((0, 5)).channel_axis is None and acc.result((0, 5)).dtype == "float32"
    old = StatsAccumulator(3)  # the old signature: learns both from the slabs
    x = acts((2, 3, 4, 4))
    old.add(x, 1)
    assert_stats_equal(old.result(x.shape), array_stats(x, 1), "old signature")


@pytest.mark.parametrize(
    ("dtype", "options", "layout", "notes"),
    [
        ("float32", {}, "NCHW", ["assumed layout NCHW for a 4-D array; use --layout to change"]),
        ("int16", {"layout": "NHWC"}, "NHWC", ["converted int16 to float32"]),
        ("bool", {"layout": "nchw"}, "NCHW", ["converted bool to float32"]),
        ("float16", {"channel_axis": 3, "channel_axis_given": True}, "NHWC",
         ["float16 computed in float32, saved as float16"]),
        ("float64", {"channel_axis": None, "channel_axis_given": True}, "NDHW", []),
    ],
)
def test_stream_result_has_the_resolved_layout_and_notes(tmp_path, dtype, options, layout,
                                                         notes):
    x = acts((3, 4, 5, 6), np.float32, seed=40)
    x = (x > 10) if dtype == "bool" else x.astype(dtype)
    mode = "within" if options.get("channel_axis_given") else "across"
    src = save(tmp_path / "x.npy", x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: the slabs are converted first
        res = stream_npy(src, None, **dict(STRONG, mode=mode), **options)
    assert res.layout == layout
    assert res.channel_axis == (None if layout == "NDHW" else layout.index("C"))
    assert res.notes == notes


def test_cli_streamed_notes_match_in_memory(tmp_path):
    src = save(tmp_path / "x.npy", acts((4, 3, 5, 5), np.uint8, seed=41))
    docs = [json.loads(cli("apply", src, flag, "--json").stdout)["files"][0]
            for flag in ("--stream", "--no-stream")]
    assert docs[0]["notes"] == [*docs[1]["notes"], "streamed slab by slab"]
    assert docs[0]["notes"][:2] == ["assumed layout NCHW for a 4-D array; use --layout to change",
                                    "converted uint8 to float32"]


@pytest.mark.parametrize("dtype", ["int16", "uint8", "bool", "float16", ">f4"])
def test_cli_input_statistics_match_in_memory_for_every_dtype(tmp_path, dtype):
    x = acts((4, 3, 5, 5), np.float32, seed=42)
    x = (x > 10) if dtype == "bool" else x.astype(dtype)
    src = save(tmp_path / "x.npy", x)
    a, b = both_modes_array_docs(src)
    assert a.keys() == b.keys()
    assert a["layout"] == b["layout"] and a["channel_axis"] == b["channel_axis"]
    assert a["in"]["dtype"] == b["in"]["dtype"] == {
        "int16": "float32", "uint8": "float32", "bool": "float32"}.get(dtype, dtype)
    _close_docs(a, b)


def _close_docs(a, b, path="") -> None:
    """Assert equal JSON documents, floats to 1e-12 (streamed sums merge in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _close_docs(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _close_docs(u, v, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), path
    else:
        assert a == b, path


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["-o", "{tmp}/y.npz"], "streaming writes .npy only, not .npz"),
        (["-o", "-"], "the whole output array is needed"),
        (["--dtype", "float64"], "--dtype float64"),
    ],
)
def test_cli_forced_stream_that_cannot_apply_is_a_note(tmp_path, args, why):
    src = save(tmp_path / "x.npy", acts((3, 4, 5, 5), seed=43))
    r = cli("apply", src, "--stream", *[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith(f"note: {src}: ")]
    assert any("--stream ignored: " in n and why in n and "processed in memory" in n
               for n in notes), r.stderr
    assert not streamed(r)


def test_cli_auto_fallback_is_a_note(tmp_path):
    src = save(tmp_path / "x.npy", np.asfortranarray(acts((4, 3, 5, 6))))
    r = cli("apply", src, "-o", tmp_path / "y.npy", "--stream-threshold", "1KB")
    assert r.exit_code == 0, r.stderr
    assert (f"note: {src}: larger than --stream-threshold but is Fortran-ordered; processed "
            "in memory") in r.stderr
    assert not streamed(r)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), reference(
        np.load(src), ALEXNET)[0])


def test_cli_auto_fallback_with_output_to_stdout(tmp_path):
    """A large file to -o - is processed in memory (streaming holds no output to print)."""
    x = acts((4, 3, 5, 6), seed=44)
    src = save(tmp_path / "x.npy", x)
    r = cli("apply", src, "-o", "-", "--stream-threshold", "1KB")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == _npy_bytes(reference(x, ALEXNET)[0])


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    npy_format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


# --------------------------------------------------------------------------- memory


def test_traced_memory_does_not_grow_with_the_file(tmp_path):
    """Allocations (tracemalloc sees NumPy's) depend on the slab, not on the file size."""
    kw = dict(ALEXNET)
    sample = acts((1, 8, 128, 128), seed=30)  # 512 KiB per sample
    peaks = {}
    stream(save(tmp_path / "warm.npy", sample), None, kw)  # kernels loaded before tracing
    for n in (16, 128):  # 8 MiB and 64 MiB
        src = save(tmp_path / f"x{n}.npy", np.repeat(sample, n, axis=0))
        tracemalloc.start()
        try:
            stream(src, tmp_path / f"y{n}.npy", kw, slab_bytes=MiB)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[128] < peaks[16] + 2 * MiB, peaks
    assert peaks[128] < 24 * MiB, peaks  # the file is 64 MiB; in memory it would take > 192


_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import lrn_cli
    from lrn_cli import lrn
    from lrn_cli.stats import array_stats, divisor_stats
    from lrn_cli.streaming import stream_npy

    src, out, mode = sys.argv[1], sys.argv[2] or None, sys.argv[3]
    kw = dict(size=5, alpha=1e-4, beta=0.75, k=2.0, mode=mode)
    x = np.ones((2, 8, 6, 5), np.float32)
    y, d = lrn(x, **kw, return_divisor=True)  # load the kernels, numba, threads
    array_stats(x, 1); array_stats(y, 1); divisor_stats(d, 0.75)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = stream_npy(src, out, **kw, slab_bytes=16 * 2**20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kib": base, "peak_kib": peak, "slabs": res.slabs,
                      "count": res.before.overall.count}))
""")

BIG_SHAPE = (400, 96, 55, 38)  # float32: 321 MB


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory) -> Iterator[Path]:
    """A ~320 MB float32 .npy, written sample by sample (never one big array in memory)."""
    path = tmp_path_factory.mktemp("big") / "big.npy"
    if shutil.disk_usage(path.parent).free < 1 * 2**30:
        pytest.skip("less than 1 GB free for the 320 MB test file")
    base = acts(BIG_SHAPE[1:], seed=31)
    with open(path, "wb") as fh:
        npy_format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": BIG_SHAPE})
        for i in range(BIG_SHAPE[0]):
            fh.write((base * np.float32(1 + i / BIG_SHAPE[0])).tobytes())
    yield path
    path.unlink(missing_ok=True)


def measure_rss(src: Path, out: Path | None, mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(src), str(out or ""), mode],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
@pytest.mark.parametrize("mode", ["across", "within"])
def test_peak_rss_is_bounded_statistics_only(big_npy, mode):
    size_mb = os.path.getsize(big_npy) / 1e6
    assert size_mb > 300
    m = measure_rss(big_npy, None, mode)
    growth_mb = (m["peak_kib"] - m["base_kib"]) * 1024 / 1e6
    assert m["count"] == math.prod(BIG_SHAPE)
    assert m["slabs"] == math.ceil(BIG_SHAPE[0] / (16 * MiB // (math.prod(BIG_SHAPE[1:]) * 4)))
    # in memory: input + output + divisor = 3x the file; streamed: a few 16 MiB slabs
    assert growth_mb < 200, f"peak RSS grew by {growth_mb:.0f} MB for a {size_mb:.0f} MB file"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
def test_peak_rss_is_bounded_with_output_file(big_npy, tmp_path):
    if shutil.disk_usage(tmp_path).free < 2 * 2**30:
        pytest.skip("less than 2 GB free disk for the 320 MB output")
    out = tmp_path / "out.npy"
    m = measure_rss(big_npy, out, "across")
    growth_mb = (m["peak_kib"] - m["base_kib"]) * 1024 / 1e6
    assert growth_mb < 200, f"peak RSS grew by {growth_mb:.0f} MB writing a 320 MB output"
    assert os.path.getsize(out) == os.path.getsize(big_npy)
    header = np.load(out, mmap_mode="r")
    assert header.shape == BIG_SHAPE and header.dtype == np.float32
    # spot-check the first and last samples against lrn() in memory
    with open(big_npy, "rb") as fh:
        npy_format.read_magic(fh)
        npy_format.read_array_header_1_0(fh)
        offset = fh.tell()
    src = np.memmap(big_npy, dtype=np.float32, mode="r", offset=offset, shape=BIG_SHAPE)
    for i in (0, BIG_SHAPE[0] - 1):
        want = lrn(np.array(src[i:i + 1]), **ALEXNET)
        assert np.array(header[i:i + 1]).tobytes() == want.tobytes()
    del src, header
    out.unlink()
    assert leftovers(tmp_path) == []


def test_rss_measurement_is_in_kib():
    """Guard for the RSS tests: ru_maxrss of this process is plausible as KiB (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert 10_000 < kib < 50_000_000  # 10 MB .. 50 GB
