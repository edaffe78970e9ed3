"""Folder discovery finds every format Pillow can open (so nothing is silently skipped, and a
decompression bomb in an unusual format is refused, not ignored), except formats whose reader
runs another program (EPS: Ghostscript), which are read only when asked for by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import error_lines, invoke
from PIL import Image

from lrn_cli.batch import default_patterns, discover
from lrn_cli.images import readable_image_suffixes

EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\n"
       b"newpath 0 0 moveto 4 4 lineto stroke\nshowpage\n%%EOF\n")


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "icon.ico", sizes=[(8, 8)])
    Image.fromarray(rgb[..., 0].astype(np.float32) / 255, mode="F").save(folder / "depth.pfm")
    Image.fromarray(rgb).save(folder / "anim.apng", format="PNG")
    (folder / "drawing.eps").write_bytes(EPS)
    return folder


def test_every_openable_format_is_discovered_but_eps(tmp_path: Path) -> None:
    suffixes = readable_image_suffixes()
    assert {".png", ".ico", ".pfm", ".apng", ".qoi", ".tga"} <= suffixes
    assert ".eps" not in suffixes and ".ps" not in suffixes
    assert ".h5" not in suffixes and ".grib" not in suffixes  # stub plugins cannot decode
    assert ".pdf" not in suffixes  # save-only
    found, problems = discover([str(_folder(tmp_path))])
    assert problems == []
    assert sorted(Path(s.path).name for s in found) == ["anim.apng", "depth.pfm", "icon.ico"]
    assert "*.eps" not in default_patterns()


def test_folder_with_ico_and_pfm_is_processed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path)
    r = invoke(["apply", "in", "-o", "out", "-q"])
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "anim.png", "depth.png", "icon.png"]
    assert not (tmp_path / "out" / "drawing.png").exists()


def test_a_bomb_in_an_unusual_format_is_refused_not_ignored(tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # 8x8 = 64 > 2 x 20: a "bomb" now
    r = invoke(["apply", "in", "-o", "out", "-q"])
    assert r.exit_code == 1
    errors = error_lines(r.stderr)
    assert len(errors) == 3 and all("decompression bomb" in e for e in errors), errors
    assert any("icon.ico" in e for e in errors)


def test_eps_is_read_only_when_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "drawing.eps").write_bytes(EPS)
    found, _ = discover(["in"], patterns=("*.eps",))
    assert [Path(s.path).name for s in found] == ["drawing.eps"]
    # EPS data under another name is never handed to Ghostscript
    (tmp_path / "fake.png").write_bytes(EPS)
    r = invoke(["apply", "fake.png", "-o", "fake_out.png"])
    assert r.exit_code == 1
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: fake.png: not an image Pillow can read")
    assert "EPS data, read only from a file named for it" in line
    assert not (tmp_path / "fake_out.png").exists()


def test_open_never_tries_eps_for_other_names() -> None:
    from lrn_cli.images import _open_formats

    assert "EPS" not in (_open_formats("fake.png") or [])
    assert _open_formats("drawing.eps") is None  # every format, EPS included


def test_the_default_match_needs_pillow_only_for_unusual_suffixes(tmp_path: Path) -> None:
    """Folders of usual files (and their .json/.txt sidecars) are matched without Pillow's
    plugin list (a parent-side cost before the workers start); it decides the same as the
    patterns for every name."""
    import fnmatch
    import subprocess
    import sys

    from conftest import ROOT, clean_env

    from lrn_cli.discovery import _NEVER_IMAGES, _default_match, _matches

    def by_fnmatch(rel: str, patterns) -> bool:  # what _matches did before it was compiled
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name.lower(), p.lower()) or fnmatch.fnmatch(rel, p)
                   for p in patterns)

    names = ["a.png", "B.PNG", "c.Npy", "s/d.TIF", "e.pfm", "f.ICO", "g.eps", "h.txt",
             "noext", ".png.bak", "i.tar.gz", "img_0042.png", "s/t/u.webp",
             *(f"x{s.upper()}" for s in sorted(_NEVER_IMAGES))]
    assert not _NEVER_IMAGES & readable_image_suffixes()
    for patterns in (default_patterns(), ("*.PNG", "s/*"), ("img_00[0-3]?.png", "*/t/*")):
        assert [_matches(n, patterns) for n in names] == [by_fnmatch(n, patterns)
                                                          for n in names], patterns
    assert [_default_match(n) for n in names] == [by_fnmatch(n, default_patterns())
                                                  for n in names]
    for name in ("a.png", "b.npy", "labels.json"):
        (tmp_path / name).write_bytes(b"")
    code = ("import sys; from lrn_cli.discovery import discover; "
            f"print(len(discover([{str(tmp_path)!r}])[0]), 'PIL' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=clean_env(), cwd=ROOT, check=True)
    assert done.stdout.split() == ["2", "False"]
