"""Option names settled across commands: the renamed ones, their old spellings (kept for one
release with a note on stderr), and ``--png-compression`` on every command that writes PNGs."""

from __future__ import annotations

import zlib
from pathlib import Path

import click
import numpy as np
import pytest
from PIL import Image

from lrn_cli.cli import cli
from lrn_cli.cli.options import RENAMED_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
CONV2 = ROOT / "samples" / "arrays" / "conv2_relu_nchw.npy"
CAMERA = ROOT / "samples" / "images" / "camera_gray.png"
DEPRECATED = "is deprecated, use"


@pytest.fixture
def acts(npy):
    rng = np.random.default_rng(3)
    return npy("acts.npy", rng.random((1, 7, 6, 5), dtype=np.float32))


def _shown_channels(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if "more channel" in line)


@pytest.mark.parametrize("command", ["apply", "stats", "compare"])
def test_show_channels_and_its_old_name(lrn, acts, command):
    args = [command, acts] + ([acts] if command == "compare" else [])
    new = lrn(*args, "--show-channels", 2)
    old = lrn(*args, "--channels", 2)
    assert new.exit_code == old.exit_code == 0, old.stderr
    assert DEPRECATED not in new.stderr
    assert "warning: --channels is deprecated, use --show-channels" in old.stderr
    assert new.stdout == old.stdout
    assert "5 more channel" in _shown_channels(new.stdout)
    both = lrn(*args, "--channels", 2, "--show-channels", 3)
    assert both.exit_code == 2
    assert "give --show-channels or --channels (its old name), not both" in both.stderr


def test_output_suffix_and_its_old_name(lrn, tmp_path, acts):
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "a.npy", np.load(acts))
    new = lrn("apply", folder, "-o", tmp_path / "new", "--output-suffix", "npz", "-q")
    old = lrn("apply", folder, "-o", tmp_path / "old", "--format", "npz", "-q")
    assert new.exit_code == old.exit_code == 0, old.stderr
    assert (tmp_path / "new" / "a.npz").is_file() and (tmp_path / "old" / "a.npz").is_file()
    assert "warning: --format is deprecated, use --output-suffix" in old.stderr
    assert DEPRECATED not in new.stderr


def test_panel_channel_and_its_old_name(lrn, tmp_path):
    args = ["sweep", CONV2, "--param", "beta", "0.5,1", "-q"]
    new = lrn(*args, "--panel", tmp_path / "new.png", "--panel-channel", 3)
    old = lrn(*args, "--panel", tmp_path / "old.png", "--channel", 3)
    assert new.exit_code == old.exit_code == 0, old.stderr
    assert "warning: --channel is deprecated, use --panel-channel" in old.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "new.png")),
                          np.asarray(Image.open(tmp_path / "old.png")))
    assert lrn(*args, "--panel", tmp_path / "c0.png", "--panel-channel", 0).exit_code == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "new.png")),
                              np.asarray(Image.open(tmp_path / "c0.png")))


def test_channel_count_and_its_old_name(lrn, tmp_path):
    onnx = pytest.importorskip("onnx")
    new = lrn("export", "onnx", "--channel-count", 96, "-o", tmp_path / "new.onnx", "-q")
    old = lrn("export", "onnx", "--channels", 96, "-o", tmp_path / "old.onnx", "-q")
    assert new.exit_code == old.exit_code == 0, old.stderr
    assert "warning: --channels is deprecated, use --channel-count" in old.stderr
    for path in ("new.onnx", "old.onnx"):
        dims = onnx.load(tmp_path / path).graph.input[0].type.tensor_type.shape.dim
        assert dims[1].dim_value == 96, path
    r = lrn("export", "pytorch", "--channels", 3, "-o", tmp_path / "x.py")
    assert r.exit_code == 2 and "--channel-count is for onnx" in r.stderr


def test_every_rename_is_listed_and_hidden(lrn):
    """The table of renames says the truth: each new name is in --help, no old one is."""
    for where, new in RENAMED_OPTIONS.items():
        command, old = where.split()
        help_text = lrn(command, "--help").stdout
        assert new in help_text, (command, new)
        assert f"{old} " not in help_text.replace(new, ""), (command, old)
        cmd = cli.get_command(click.Context(cli), command)
        option_names = {name for p in cmd.params for name in p.opts}
        assert {old, new} <= option_names


def _idat_level(path: Path) -> int:
    """The zlib level a PNG's first IDAT stream says it was written with (FLEVEL bits)."""
    data = path.read_bytes()
    at = data.index(b"IDAT") + 4
    return data[at + 1] >> 6  # 0: fastest (levels 0-1), 1: fast (2-5), 2: default (6), 3: best


@pytest.mark.parametrize("bits", ["8", "16"])
def test_png_compression_apply_output(lrn, tmp_path, bits):
    out = {level: tmp_path / f"l{level}.png" for level in (1, 6, 9)}
    for level, path in out.items():
        r = lrn("apply", CAMERA, "-o", path, "--bits", bits, "--png-compression", level, "-q")
        assert r.exit_code == 0, r.stderr
    default = tmp_path / "default.png"
    assert lrn("apply", CAMERA, "-o", default, "--bits", bits, "-q").exit_code == 0
    pixels = {level: np.asarray(Image.open(p)) for level, p in out.items()}
    assert all(np.array_equal(pixels[1], px) for px in pixels.values())  # same pixels
    assert default.read_bytes() == out[6].read_bytes()  # 6 is the default
    assert [_idat_level(out[level]) for level in (1, 6, 9)] == [0, 2, 3]
    assert out[9].stat().st_size < out[1].stat().st_size


def test_png_compression_panels(lrn, tmp_path):
    panels = {}
    for level in (1, 9):
        apply_panel = tmp_path / f"apply{level}.png"
        sweep_panel = tmp_path / f"sweep{level}.png"
        norms_panel = tmp_path / f"norms{level}.png"
        assert lrn("apply", CAMERA, "--panel", apply_panel, "--png-compression", level,
                   "-q").exit_code == 0
        assert lrn("sweep", CAMERA, "--param", "beta", "0.5,1", "--panel", sweep_panel,
                   "--png-compression", level, "-q").exit_code == 0
        r = lrn("norms", CAMERA, "--methods", "lrn,l2", "--panel", norms_panel,
                "--png-compression", level, "-q")
        assert r.exit_code == 0, r.stderr
        panels[level] = (apply_panel, sweep_panel, norms_panel)
    for fast, small in zip(panels[1], panels[9], strict=True):
        assert (_idat_level(fast), _idat_level(small)) == (0, 3)
        assert np.array_equal(np.asarray(Image.open(fast)), np.asarray(Image.open(small)))


def test_png_compression_norms_outputs(lrn, tmp_path):
    r = lrn("norms", CAMERA, "--methods", "l2", "-o", tmp_path, "--png-compression", 0, "-q")
    assert r.exit_code == 0, r.stderr
    (written,) = tmp_path.glob("*_l2.png")
    assert _idat_level(written) == 0
    raw = zlib.decompressobj()
    data = written.read_bytes()
    at = data.index(b"IDAT") + 4
    assert raw.decompress(data[at:at + 64])  # a valid zlib stream (stored blocks)


@pytest.mark.parametrize("level", ["-1", "10", "x"])
def test_png_compression_range(lrn, level):
    r = lrn("apply", CAMERA, "--png-compression", level)
    assert r.exit_code == 2
    assert "--png-compression" in r.stderr
