"""Safe .npy/.npz reading and atomic writing, on real (and hostile) files."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib import format as npy_format

from lrn_cli.arrays import (
    NpyHeader,
    read_npy,
    read_npy_bytes,
    read_npy_header,
    read_npz,
    write_npy,
    write_npz,
)
from lrn_cli.errors import InputError, OutputError, ParameterError


class _Trap:
    """Unpickling this creates a marker file: proof that a reader unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _npy_bytes(arr: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array(buffer, arr, **kwargs)
    return buffer.getvalue()


def _raw_npy(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy file with an arbitrary (possibly lying) header."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    if version == (1, 0):
        size = len(text).to_bytes(2, "little")
    else:
        size = len(text).to_bytes(4, "little")
    return npy_format.magic(*version) + size + text + data


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        np.arange(6, dtype=">f8").reshape(2, 3),
        np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        np.array([True, False]),
        np.array(3.5, dtype=np.float16),
        np.zeros((0, 3), dtype=np.uint8),
    ],
    ids=["f32", "big-endian", "fortran", "bool", "0-d", "empty"],
)
def test_npy_round_trip(tmp_path: Path, arr: np.ndarray) -> None:
    path = write_npy(tmp_path / "a.npy", arr)
    back = read_npy(path)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert back.flags.f_contiguous == arr.flags.f_contiguous


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint8]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
    )
)
def test_npy_bytes_round_trip_property(arr: np.ndarray) -> None:
    back = read_npy_bytes(_npy_bytes(arr))
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == arr.dtype
    assert back.flags.writeable


def test_header(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((2, 5), dtype="<f4"))
    header = read_npy_header(path)
    assert header == NpyHeader((2, 5), np.dtype("<f4"), False, 128, (1, 0))
    assert header.nbytes == 40
    assert header.data_offset + header.nbytes == path.stat().st_size


def test_version_2_header(tmp_path: Path) -> None:
    path = tmp_path / "v2.npy"
    path.write_bytes(_npy_bytes(np.arange(4.0), version=(2, 0)))
    assert read_npy_header(path).version == (2, 0)
    np.testing.assert_array_equal(read_npy(path), np.arange(4.0))


# --- hostile and broken files ----------------------------------------------------------------


def test_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "cut.npy"
    data = _npy_bytes(np.arange(100, dtype=np.float64))
    path.write_bytes(data[:-10])
    with pytest.raises(InputError, match=r"truncated: header says 800 bytes of data, file has 790"):
        read_npy(path)
    with pytest.raises(InputError, match="truncated"):
        read_npy_header(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.npy"
    path.write_bytes(_npy_bytes(np.arange(3.0))[:20])
    with pytest.raises(InputError, match="truncated"):
        read_npy(path)
    path.write_bytes(b"\x93NUMPY")
    with pytest.raises(InputError, match="truncated"):
        read_npy(path)


def test_huge_claimed_shape_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "liar.npy"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    path.write_bytes(_raw_npy(header, b"\0" * 16))
    with pytest.raises(InputError, match=r"header says 8000000000000 bytes of data, file has 16"):
        read_npy(path)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "two.npy"
    path.write_bytes(_npy_bytes(np.arange(3.0)) + _npy_bytes(np.arange(2.0)))
    with pytest.raises(InputError, match="unexpected bytes after the array data"):
        read_npy(path)


def test_pickled_objects_are_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="contains pickled Python objects; refusing to unpickle"):
        read_npy(path)
    with pytest.raises(InputError, match="pickled"):
        read_npy_header(path)
    with pytest.raises(InputError, match="pickled"):
        read_npy_bytes(path.read_bytes())
    assert not marker.exists()
    # The trap is real: a trusting reader does run it.
    np.load(path, allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (np.zeros(3, dtype=np.complex128), "complex128 arrays are not supported"),
        (np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]), "structured arrays"),
        (np.array(["a", "b"]), "str32 arrays are not supported"),
        (np.zeros(2, dtype="datetime64[s]"), "not supported"),
    ],
)
def test_unsupported_dtypes(tmp_path: Path, arr: np.ndarray, message: str) -> None:
    path = tmp_path / "x.npy"
    np.save(path, arr)
    with pytest.raises(InputError, match=message):
        read_npy(path)


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "text.npy"
    path.write_text("this is not numpy at all\n")
    with pytest.raises(InputError, match=r"not a .npy file \(bad magic\)"):
        read_npy(path)
    with pytest.raises(InputError, match=r"<stdin>: not a .npy input \(bad magic\)"):
        read_npy_bytes(b"hello")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="bad magic: it is empty"):
        read_npy(path)


def test_npz_passed_as_npy_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    with open(path, "wb") as handle:
        np.savez(handle, x=np.arange(3))
    with pytest.raises(InputError, match="looks like a .npz"):
        read_npy(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", "impossible shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 10**30), }", "malformed"),
        (f"{{'descr': '<f8', 'fortran_order': False, 'shape': (0, {2**70}), }}", "impossible"),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 300 + ")" * 300 + "}",
            "corrupt .npy header",
        ),
        ("{'descr': '<f8', 'shape': (1,), }", "corrupt .npy header"),
        ("__import__('os').system('true')", "corrupt .npy header"),
        ("{'descr': 'nonsense', 'fortran_order': False, 'shape': (1,), }", "corrupt .npy header"),
    ],
)
def test_corrupt_headers(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(_raw_npy(header, b"\0" * 8))
    with pytest.raises(InputError, match=message):
        read_npy(path)


def test_unsupported_versions(tmp_path: Path) -> None:
    path = tmp_path / "v3.npy"
    path.write_bytes(
        _raw_npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8, (2, 0)
        ).replace(b"NUMPY\x02", b"NUMPY\x03", 1)
    )
    with pytest.raises(InputError, match="format 3.0"):
        read_npy(path)
    path.write_bytes(path.read_bytes().replace(b"NUMPY\x03", b"NUMPY\x07", 1))
    with pytest.raises(InputError, match="unsupported .npy format version 7.0"):
        read_npy(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_npy(tmp_path / "missing.npy")
    with pytest.raises(InputError, match="is a directory"):
        read_npy(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_npz(tmp_path / "missing.npz")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.npy"
    np.save(path, np.arange(3))
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_npy(path)


def test_read_npy_bytes_checks_like_files() -> None:
    data = _npy_bytes(np.arange(10, dtype=np.int32))
    with pytest.raises(InputError, match=r"^<pipe>: truncated: header says 40 bytes of data"):
        read_npy_bytes(data[:-1], name="<pipe>")
    np.testing.assert_array_equal(read_npy_bytes(bytearray(data)), np.arange(10))


def test_read_from_named_pipe(tmp_path: Path) -> None:
    source = tmp_path / "a.npy"
    np.save(source, np.arange(5))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{source}' > '{fifo}'"])
    try:
        back = read_npy(fifo)
    finally:
        writer.wait(timeout=10)
    np.testing.assert_array_equal(back, np.arange(5))


# --- .npz ----------------------------------------------------------------------------------


def test_npz_round_trip_uncompressed_by_default(tmp_path: Path) -> None:
    arrays = {"conv1": np.ones((2, 3), np.float32), "file": np.arange(3), "allow_pickle": np.eye(2)}
    path = write_npz(tmp_path / "a.npz", arrays)
    with zipfile.ZipFile(path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    back = read_npz(path)
    assert list(back) == list(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)
    with np.load(path) as npz:  # numpy reads what we write
        np.testing.assert_array_equal(npz["conv1"], arrays["conv1"])


def test_npz_compressed(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "c.npz", {"z": np.zeros(10_000)}, compressed=True)
    with zipfile.ZipFile(path) as archive:
        assert archive.infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    assert path.stat().st_size < 10_000
    np.testing.assert_array_equal(read_npz(path)["z"], np.zeros(10_000))


def test_npz_written_by_numpy(tmp_path: Path) -> None:
    path = tmp_path / "np.npz"
    np.savez_compressed(path, a=np.arange(4), b=np.ones((2, 2), np.float32))
    back = read_npz(path)
    assert sorted(back) == ["a", "b"]


def test_npz_from_stream(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(3))
    back = read_npz(io.BytesIO(buffer.getvalue()), name="<stdin>")
    np.testing.assert_array_equal(back["a"], np.arange(3))
    with pytest.raises(InputError, match=r"^<stdin>: not a valid .npz"):
        read_npz(io.BytesIO(b"garbage"), name="<stdin>")


def test_npz_object_member_refused_by_name_and_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    path = tmp_path / "evil.npz"
    np.savez(path, good=np.arange(3), evil=np.array([_Trap(marker)], dtype=object))
    with pytest.raises(InputError, match="array 'evil': contains pickled Python objects"):
        read_npz(path)
    assert not marker.exists()


def _mixed_npz(path: Path, marker: Path) -> Path:
    """Activations next to members no LRN can use, one of them a pickle trap."""
    np.savez(
        path,
        acts=np.ones((2, 3, 4, 4), np.float32),
        labels=np.array(["cat", "dog"]),
        evil=np.array([_Trap(marker)], dtype=object),
        phase=np.ones(3, np.complex64),
        more=np.arange(6, dtype=np.int16),
    )
    return path


def test_npz_keys_read_only_those_members(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    path = _mixed_npz(tmp_path / "m.npz", marker)
    back = read_npz(path, keys=["more", "acts"])
    assert list(back) == ["more", "acts"]  # in the order asked for
    np.testing.assert_array_equal(back["more"], np.arange(6, dtype=np.int16))
    assert read_npz(path, keys=["acts", "acts"]).keys() == {"acts"}
    assert read_npz(path, keys=iter(["acts"])).keys() == {"acts"}
    assert not marker.exists()


def test_npz_unknown_key_lists_the_names(tmp_path: Path) -> None:
    path = _mixed_npz(tmp_path / "m.npz", tmp_path / "marker")
    with pytest.raises(InputError) as exc:
        read_npz(path, keys=["nope"])
    assert str(exc.value) == (
        f"{path}: has no array named 'nope' (it has: acts, labels, evil, phase, more)"
    )


def test_npz_key_naming_an_unsupported_member_still_fails(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    path = _mixed_npz(tmp_path / "m.npz", marker)
    with pytest.raises(InputError, match="array 'labels': str96 arrays are not supported"):
        read_npz(path, keys=["labels"])
    with pytest.raises(InputError, match="array 'evil': contains pickled Python objects"):
        read_npz(path, keys=["evil"])
    assert not marker.exists()


def test_npz_keys_ignore_the_other_members_problems(tmp_path: Path) -> None:
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "not an array")
        archive.writestr("cut.npy", _npy_bytes(np.arange(10.0))[:-8])
        archive.writestr("dup.npy", _npy_bytes(np.arange(2.0)))
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("dup.npy", _npy_bytes(np.arange(3.0)))
        archive.writestr("good.npy", _npy_bytes(np.arange(4.0)))
    np.testing.assert_array_equal(read_npz(path, keys=["good"])["good"], np.arange(4.0))
    with pytest.raises(InputError, match="array 'dup' appears twice"):
        read_npz(path, keys=["dup"])
    with pytest.raises(InputError, match="array 'cut': truncated"):
        read_npz(path, keys=["cut"])
    with pytest.raises(InputError, match="'README.txt' is not a .npy array"):
        read_npz(path)  # all members: every problem counts


def test_npz_on_skip_leaves_out_unsupported_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, acts=np.ones((2, 3), np.float32), labels=np.array(["cat", "dog"]),
             phase=np.ones(3, np.complex64), when=np.array(["2024-01-01"], "datetime64[D]"),
             rec=np.zeros(2, [("a", "<f4")]), more=np.arange(6, dtype=np.int16))
    skipped: list[tuple[str, str]] = []
    back = read_npz(path, on_skip=lambda key, why: skipped.append((key, why)))
    assert list(back) == ["acts", "more"]
    assert [key for key, _ in skipped] == ["labels", "phase", "when", "rec"]
    reasons = dict(skipped)
    assert "not supported" in reasons["labels"] and not reasons["labels"].startswith("array")
    assert reasons["phase"] == "complex64 arrays are not supported"
    assert "structured" in reasons["rec"]
    with pytest.raises(InputError, match="array 'labels'"):
        read_npz(path)  # without on_skip: the whole archive fails, as before


def test_npz_on_skip_never_skips_a_pickle(tmp_path: Path) -> None:
    """An archive holding pickled objects is refused whole, and nothing is unpickled."""
    marker = tmp_path / "unpickled.marker"
    path = _mixed_npz(tmp_path / "m.npz", marker)
    skipped: list[str] = []
    with pytest.raises(InputError, match="array 'evil': contains pickled Python objects; "
                                         "refusing to unpickle"):
        read_npz(path, on_skip=lambda key, why: skipped.append(key))
    assert skipped == ["labels"]
    assert not marker.exists()


def test_npz_on_skip_fails_when_nothing_is_left(tmp_path: Path) -> None:
    one = tmp_path / "one.npz"
    np.savez(one, labels=np.array(["cat", "dog"]))
    with pytest.raises(InputError) as exc:
        read_npz(one, on_skip=lambda *a: None)
    assert str(exc.value) == (f"{one}: array 'labels': str96 arrays are not supported "
                              "(need bool, integer or floating point)")
    two = tmp_path / "two.npz"
    np.savez(two, a=np.ones(2, np.complex64), b=np.ones(2, np.complex128))
    with pytest.raises(InputError) as exc:
        read_npz(two, on_skip=lambda *a: None)
    assert str(exc.value) == (f"{two}: contains no supported arrays ('a': complex64 arrays "
                              "are not supported; 'b': complex128 arrays are not supported)")


def test_pipeline_load_skips_unsupported_members_with_a_note(tmp_path: Path) -> None:
    from lrn_cli.pipeline import ReadOptions, load

    path = tmp_path / "m.npz"
    np.savez(path, acts=np.ones((2, 3, 4, 4), np.float32), labels=np.array(["cat", "dog"]))
    loaded = load(path, ReadOptions(), "across")
    assert [item.key for item in loaded.items] == ["acts"]
    assert loaded.notes[0] == ("array 'labels' skipped: str96 arrays are not supported "
                               "(need bool, integer or floating point)")
    keyed = load(path, ReadOptions(key="acts"), "across")
    assert [item.key for item in keyed.items] == ["acts"]
    assert not any("skipped" in note for note in keyed.notes)
    with pytest.raises(InputError, match="has no array named 'nope' .it has: acts, labels."):
        load(path, ReadOptions(key="nope"), "across")
    data = path.read_bytes()
    from_stdin = load("<stdin>", ReadOptions(), "across", data=data)
    assert [item.key for item in from_stdin.items] == ["acts"]
    with pytest.raises(InputError, match=r"^<stdin>: has no array named 'nope'"):
        load("<stdin>", ReadOptions(key="nope"), "across", data=data)


def test_npz_bad_zip(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 but not really a zip file")
    with pytest.raises(InputError, match=r"not a valid .npz \(zip\) file"):
        read_npz(path)
    path.write_bytes(_npy_bytes(np.arange(3)))
    with pytest.raises(InputError, match=r"not a valid .npz \(zip\) file"):
        read_npz(path)


def test_npz_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    with zipfile.ZipFile(path, "w"):
        pass
    with pytest.raises(InputError, match="contains no arrays"):
        read_npz(path)


def test_npz_member_checks(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cut.npy", _npy_bytes(np.arange(10.0))[:-8])
    with pytest.raises(
        InputError, match="array 'cut': truncated: header says 80 bytes of data, member has 72"
    ):
        read_npz(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(InputError, match="'notes.txt' is not a .npy array"):
        read_npz(path)


def test_npz_corrupt_member_data(tmp_path: Path) -> None:
    path = tmp_path / "crc.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("x.npy", _npy_bytes(np.arange(64, dtype=np.uint8)))
    data = bytearray(path.read_bytes())
    data[data.index(bytes(range(10, 20)))] ^= 0xFF  # flip a data byte: CRC mismatch
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="array 'x' cannot be read"):
        read_npz(path)


# --- writing -------------------------------------------------------------------------------


def test_write_refuses_object_arrays_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="pickling"):
        write_npy(tmp_path / "o.npy", np.array([None], dtype=object))
    with pytest.raises(ParameterError, match="invalid .npz array name"):
        write_npz(tmp_path / "o.npz", {"a/b": np.zeros(1)})
    with pytest.raises(ParameterError, match="no arrays"):
        write_npz(tmp_path / "o.npz", {})
    assert list(tmp_path.iterdir()) == []


def test_write_never_overwrites_silently_or_onto_input(tmp_path: Path) -> None:
    path = write_npy(tmp_path / "a.npy", np.arange(3))
    with pytest.raises(OutputError, match="already exists"):
        write_npy(path, np.arange(4))
    with pytest.raises(OutputError, match="input"):
        write_npz(path, {"a": np.arange(4)}, overwrite=True, protect=[path])
    np.testing.assert_array_equal(read_npy(path), np.arange(3))
    write_npy(path, np.arange(4), overwrite=True)
    np.testing.assert_array_equal(read_npy(path), np.arange(4))
