"""``lrn apply`` on real folder trees: discovery, per-file failures, manifest, parallel runs,
stdin, dry runs, reruns and Ctrl-C.

Most runs go through Click's test runner in this process with ``-j 1`` (``LRN_JOBS=1``), so no
worker pool is spawned from pytest; parallel runs, stdin and signals go through a real
``python -m lrn_cli`` subprocess.  Every test that writes checks that no input changed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pty
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import pythonpath_with
from PIL import Image

from lrn_cli.cli import cli

CORES = os.cpu_count() or 1
SUMMARY = re.compile(
    r"(?P<interrupted>interrupted: )?(?P<processed>\d+) processed, (?P<skipped>\d+) skipped, "
    r"(?P<failed>\d+) failed in (?P<seconds>[\d.]+) s \((?P<rate>[\d.]+) files/s\)"
    r"(?:, (?P<not_started>\d+) not started)?"
)
#: Environment variables that change what the CLI prints (colour, width); unset for every run.
NOISY_ENV = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM", "TTY_COMPATIBLE",
             "TTY_INTERACTIVE", "CLICOLOR", "CLICOLOR_FORCE", "PY_COLORS", "LRN_JOBS")
STAT_COLUMNS = ("in_mean", "out_mean", "in_std", "out_std", "in_rms_contrast",
                "out_rms_contrast", "gain_min", "gain_max")


# --------------------------------------------------------------------------- file makers


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def png_with_header(width: int, height: int, idat: bytes, *, color_type: int = 0) -> bytes:
    """A PNG with a well-formed IHDR (8-bit) and the given IDAT payload, CRCs correct."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def bomb_png() -> bytes:
    """40000 x 40000 gray (1.6 G pixels, ~9x Pillow's limit) in a few dozen bytes."""
    return png_with_header(40000, 40000, zlib.compress(b"\x00" * 64))


def corrupt_png() -> bytes:
    """Signature, IHDR and CRCs fine; the image data is not a zlib stream."""
    return png_with_header(16, 16, b"this is not deflate data" * 4, color_type=2)


class _OpensAFile:
    """Unpickling this creates ``marker``: proof that a reader ran a pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def rgb(rng: np.random.Generator, h: int = 24, w: int = 32) -> Image.Image:
    """Smooth gradient plus noise: content LRN visibly changes, compressible like a photo."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1),
                     np.full((h, w), 128.0)], axis=-1)
    noisy = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


@dataclass
class Tree:
    """An input folder and what ``lrn apply`` should make of each file in it."""

    root: Path  # the folder to pass to lrn (relative to the working directory)
    ok: dict[str, str]  # input (as lrn prints it) -> output relative to the output folder
    failed: dict[str, str]  # input (as lrn prints it) -> text its error must contain
    ignored: tuple[str, ...] = ()


def make_clean_tree(base: Path, name: str = "photos") -> Tree:
    """Images and arrays only, all readable: nested dirs, spaces and non-ASCII names."""
    rng = np.random.default_rng(20240601)
    root = base / name
    (root / "sub dir" / "deep").mkdir(parents=True)
    (root / "ünï cödé").mkdir()
    (root / "acts").mkdir()
    rgb(rng).save(root / "a.png")
    rgb(rng, 20, 28).save(root / "b.jpg", quality=92)
    rgb(rng).convert("L").save(root / "gray.png")
    rgb(rng, 16, 16).save(root / "sub dir" / "c d.png")
    rgb(rng, 18, 22).save(root / "sub dir" / "deep" / "e.png")
    rgb(rng, 12, 14).save(root / "ünï cödé" / "é ß.png")
    np.save(root / "acts" / "conv.npy", rng.standard_normal((2, 8, 6, 6)).astype(np.float32))
    np.savez(root / "acts" / "pair.npz", a=rng.standard_normal((1, 6, 5, 5)).astype(np.float32),
             b=rng.random((4, 7, 7)).astype(np.float64))
    (root / "notes.txt").write_text("not an input: no image or array suffix\n")
    p = name
    ok = {
        f"{p}/a.png": "a.png",
        f"{p}/b.jpg": "b.png",
        f"{p}/gray.png": "gray.png",
        f"{p}/sub dir/c d.png": "sub dir/c d.png",
        f"{p}/sub dir/deep/e.png": "sub dir/deep/e.png",
        f"{p}/ünï cödé/é ß.png": "ünï cödé/é ß.png",
        f"{p}/acts/conv.npy": "acts/conv.npy",
        f"{p}/acts/pair.npz": "acts/pair.npz",
    }
    return Tree(root=Path(name), ok=ok, failed={}, ignored=(f"{p}/notes.txt",))


def make_tree(base: Path, name: str = "photos") -> Tree:
    """The clean tree plus every kind of bad input the issue lists."""
    tree = make_clean_tree(base, name)
    root = base / name
    bad = root / "bad"
    bad.mkdir()
    rng = np.random.default_rng(7)
    (bad / "corrupt.png").write_bytes(corrupt_png())
    jpeg = io.BytesIO()
    rgb(rng, 64, 64).save(jpeg, format="JPEG", quality=90)
    (bad / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (bad / "text.png").write_text("I am a text file with an image suffix\n")
    (bad / "bomb.png").write_bytes(bomb_png())
    marker = base / "UNPICKLED"
    np.save(bad / "pickled.npy", np.array([_OpensAFile(str(marker)), 1], dtype=object),
            allow_pickle=True)
    assert not marker.exists()
    arr = io.BytesIO()
    np.save(arr, np.ones((2, 3, 8, 8), np.float32))
    (root / "acts" / "truncated.npy").write_bytes(arr.getvalue()[:-100])
    os.mkfifo(bad / "fifo.png")
    os.symlink("missing.png", bad / "broken.png")
    os.symlink("self.png", bad / "self.png")
    os.symlink("..", root / "sub dir" / "loop")  # back to the input folder itself
    p = name
    tree.failed = {
        f"{p}/bad/corrupt.png": "corrupt",
        f"{p}/bad/truncated.jpg": "truncated",
        f"{p}/bad/text.png": "not an image",
        f"{p}/bad/bomb.png": "too large",
        f"{p}/bad/pickled.npy": "pickled",
        f"{p}/acts/truncated.npy": "truncated",
        f"{p}/bad/fifo.png": "not a regular file",
        f"{p}/bad/broken.png": "broken symlink",
        f"{p}/bad/self.png": "symbolic links",
        f"{p}/sub dir/loop": "symlink loop",
    }
    return tree


def make_many(base: Path, n: int, size: int = 256) -> Path:
    """``n`` noisy RGB PNGs: each takes LRN + PNG encoding some tens of milliseconds."""
    root = base / "many"
    root.mkdir()
    rng = np.random.default_rng(99)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i:03d}.png", compress_level=1)
    return root


# --------------------------------------------------------------------------- helpers


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (links not followed, FIFOs not opened)."""
    digests = {}
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(dirpath) / name
            if stat.S_ISREG(path.lstat().st_mode):
                digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def lrn(*args: str, env: dict | None = None, input: bytes | None = None):
    """``lrn apply ARGS`` in this process (one job at a time unless ``-j`` says otherwise)."""
    runner = CliRunner()
    clean = {**dict.fromkeys(NOISY_ENV), "LRN_JOBS": "1", **(env or {})}
    return runner.invoke(cli, ["apply", *args], env=clean, input=input,
                         catch_exceptions=False)


def lrn_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOISY_ENV}
    env.update(extra)
    return env


def hooked_env(workdir: Path, sitecustomize: str, name: str = "hook") -> dict[str, str]:
    """An environment whose Python processes (workers too) run ``sitecustomize`` first."""
    hook = workdir / name
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(sitecustomize)
    return lrn_env(PYTHONPATH=pythonpath_with(str(hook)))


def lrn_proc(*args: str, cwd: Path, input: bytes | None = None, env: dict | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m lrn_cli apply ARGS`` as a real process."""
    return subprocess.run([sys.executable, "-m", "lrn_cli", "apply", *args], cwd=cwd,
                          input=input, capture_output=True, timeout=timeout,
                          env=env or lrn_env(), check=False)


def summary(stderr: str) -> dict[str, int | bool]:
    matches = list(SUMMARY.finditer(stderr))
    assert matches, f"no summary line in:\n{stderr}"
    m = matches[-1]
    return {"interrupted": bool(m["interrupted"]), "processed": int(m["processed"]),
            "skipped": int(m["skipped"]), "failed": int(m["failed"]),
            "not_started": int(m["not_started"] or 0)}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def outputs(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def read_output(path: Path) -> np.ndarray:
    """Load an output completely (raises on a partial file)."""
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return np.concatenate([z[k].ravel() for k in z.files])
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def manifest_rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from ``tmp_path`` with relative paths, as a user would (short messages)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tree(workdir: Path) -> Tree:
    return make_tree(workdir)


@pytest.fixture
def clean_tree(workdir: Path) -> Tree:
    return make_clean_tree(workdir)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_many(tmp_path_factory.mktemp("many"), 60)


# --------------------------------------------------------------------------- the whole tree


def test_tree_processes_good_files_reports_each_bad_one_and_exits_1(tree: Tree,
                                                                  workdir: Path) -> None:
    before = snapshot(tree.root)
    result = lrn(str(tree.root), "-o", "out", "--manifest", "manifest.csv")
    assert result.exit_code == 1, result.output
    assert not (workdir / "UNPICKLED").exists(), "a pickle in an .npy file was executed"
    assert snapshot(tree.root) == before

    # outputs mirror the tree, stems kept, images as .png, arrays as they came
    assert outputs(workdir / "out") == set(tree.ok.values())
    for rel in tree.ok.values():
        assert read_output(workdir / "out" / rel).size > 0
    with Image.open(workdir / "out" / "gray.png") as im:
        assert im.mode == "L" and im.size == (32, 24)
    with Image.open(workdir / "out" / "b.png") as im:
        assert im.mode == "RGB" and im.size == (28, 20)
    with np.load(workdir / "out" / "acts" / "pair.npz") as z:
        assert sorted(z.files) == ["a", "b"]
        assert z["a"].shape == (1, 6, 5, 5) and z["b"].dtype == np.float64

    # one error line per bad input, saying what is wrong with it
    errors = error_lines(result.stderr)
    assert len(errors) == len(tree.failed), "\n".join(errors)
    for source, why in tree.failed.items():
        mine = [e for e in errors if e.startswith(f"error: {source}: ")]
        assert len(mine) == 1, (source, errors)
        assert why in mine[0], mine[0]
    assert "Traceback" not in result.output
    for ignored in tree.ignored:
        assert ignored not in result.output

    counts = summary(result.stderr)
    assert counts == {"interrupted": False, "processed": len(tree.ok), "skipped": 0,
                      "failed": len(tree.failed), "not_started": 0}


def test_manifest_csv_has_a_row_per_input_with_status_output_error_and_stats(
        tree: Tree, workdir: Path) -> None:
    result = lrn(str(tree.root), "-o", "out", "--manifest", "manifest.csv")
    assert result.exit_code == 1
    rows = manifest_rows(workdir / "manifest.csv")
    by_input: dict[str, list[dict]] = {}
    for row in rows:
        by_input.setdefault(row["file"], []).append(row)
    assert set(by_input) == set(tree.ok) | set(tree.failed)
    assert [r["array"] for r in by_input[f"{tree.root}/acts/pair.npz"]] == ["a", "b"]
    for source, rel in tree.ok.items():
        for row in by_input[source]:
            assert row["status"] == "ok"
            assert row["error"] == ""
            assert Path(row["output"]) == Path("out") / rel
            assert (workdir / row["output"]).is_file()
            for column in STAT_COLUMNS:
                float(row[column])  # present and numeric
            assert float(row["seconds"]) >= 0
    for source, why in tree.failed.items():
        (row,) = by_input[source]
        assert row["status"] == "failed"
        assert row["output"] == ""
        assert why in row["error"]
        assert all(row.get(column, "") == "" for column in STAT_COLUMNS)
    # LRN divides by D >= k = 2: the output is smaller than the input
    a = by_input[f"{tree.root}/a.png"][0]
    assert 0 < float(a["out_mean"]) < float(a["in_mean"])
    assert 0 < float(a["gain_min"]) <= float(a["gain_max"]) < 1


def test_manifest_jsonl_rows_parse_and_match_the_statuses(tree: Tree, workdir: Path) -> None:
    result = lrn(str(tree.root), "-o", "out", "--manifest", "m.jsonl", "--quiet")
    assert result.exit_code == 1
    rows = manifest_rows(workdir / "m.jsonl")
    statuses = {row["file"]: row["status"] for row in rows}
    assert statuses == {**dict.fromkeys(tree.ok, "ok"), **dict.fromkeys(tree.failed, "failed")}
    for row in rows:
        if row["status"] == "ok":
            assert (workdir / row["output"]).is_file()
            assert row["error"] is None
            for column in STAT_COLUMNS:
                assert isinstance(row[column], float), (column, row)
        else:
            assert row["output"] is None
            assert row["error"].startswith(row["file"] + ": ")
    # --quiet keeps errors and the summary (something failed), drops the notes
    assert "note:" not in result.stderr
    assert len(error_lines(result.stderr)) == len(tree.failed)
    assert summary(result.stderr)["failed"] == len(tree.failed)


def test_unreadable_file_is_reported_and_skipped(clean_tree: Tree, workdir: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading the file")
    locked = workdir / clean_tree.root / "locked.png"
    rgb(np.random.default_rng(3)).save(locked)
    locked.chmod(0)
    try:
        result = lrn(str(clean_tree.root), "-o", "out")
    finally:
        locked.chmod(0o644)
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"error: {clean_tree.root}/locked.png: ")
    assert "permission denied" in line
    assert summary(result.stderr)["processed"] == len(clean_tree.ok)


def test_clean_tree_exits_0_and_prints_an_aggregate_table(clean_tree: Tree,
                                                          workdir: Path) -> None:
    before = snapshot(clean_tree.root)
    result = lrn(str(clean_tree.root), "-o", "out")
    assert result.exit_code == 0, result.output
    assert snapshot(clean_tree.root) == before
    n_arrays = len(clean_tree.ok) + 1  # pair.npz has two
    assert f"{len(clean_tree.ok)} files (across" in result.stdout
    for source in clean_tree.ok:
        assert source in result.stdout
    assert re.search(r"^\s*mean\s", result.stdout, re.M)
    assert n_arrays == len([ln for ln in result.stdout.splitlines()
                            if ln.strip().startswith(str(clean_tree.root))])
    assert summary(result.stderr)["processed"] == len(clean_tree.ok)
    assert result.stdout.count("statistic") == 0  # no per-file tables for many files


def test_three_files_or_fewer_get_full_comparison_tables(clean_tree: Tree) -> None:
    root = clean_tree.root
    result = lrn(f"{root}/a.png", f"{root}/gray.png", "-o", "out")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("statistic") == 2
    assert f"{root}/a.png (HWC, across" in result.stdout
    assert "files (across" not in result.stdout


def test_json_document_structure(tree: Tree) -> None:
    result = lrn(str(tree.root), "-o", "out", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert list(doc) == ["schema", "settings", "files", "summary"]
    assert doc["settings"] == {"mode": "across", "size": 5, "alpha": 1e-4, "beta": 0.75,
                               "k": 2.0, "convention": "default"}
    assert {k: doc["summary"][k] for k in ("processed", "skipped", "failed")} == {
        "processed": len(tree.ok), "skipped": 0, "failed": len(tree.failed)}
    assert doc["summary"]["seconds"] > 0
    files = {f["file"]: f for f in doc["files"]}
    assert set(files) == set(tree.ok) | set(tree.failed)
    for source, rel in tree.ok.items():
        f = files[source]
        assert f["status"] == "ok" and f["error"] is None
        assert Path(f["output"]) == Path("out") / rel
        for array in f["arrays"]:
            assert list(array) == ["array", "layout", "channel_axis", "in", "out",
                                   "divisor", "gain"]
    assert [a["array"] for a in files[f"{tree.root}/acts/pair.npz"]["arrays"]] == ["a", "b"]
    assert files[f"{tree.root}/a.png"]["arrays"][0]["layout"] == "HWC"
    for source, why in tree.failed.items():
        assert files[source]["status"] == "failed"
        assert files[source]["output"] is None and files[source]["arrays"] == []
        assert why in files[source]["error"]


# --------------------------------------------------------------------------- planning


def test_dry_run_prints_the_plan_and_writes_nothing(clean_tree: Tree, workdir: Path) -> None:
    before = snapshot(workdir)
    result = lrn(str(clean_tree.root), "-o", "out", "--dry-run", "--manifest", "m.csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sorted(lines) == sorted(f"{src} -> {Path('out') / rel}"
                                   for src, rel in clean_tree.ok.items())
    assert "nothing written" in result.stderr
    assert not (workdir / "out").exists()
    assert not (workdir / "m.csv").exists()
    assert snapshot(workdir) == before


def test_dry_run_still_refuses_what_a_real_run_would(tree: Tree, workdir: Path) -> None:
    result = lrn(str(tree.root), "-o", "out", "--dry-run")
    assert result.exit_code == 1  # the symlink loop, the FIFO and the broken links
    assert not (workdir / "out").exists()
    refused = {s for s, why in tree.failed.items()
               if why in ("not a regular file", "broken symlink", "symbolic links",
                          "symlink loop")}
    assert {e.split(": ")[1] for e in error_lines(result.stderr)} == refused
    # files that only decoding can judge are listed: a dry run does not open them
    assert f"{tree.root}/bad/bomb.png -> out/bad/bomb.png" in result.stdout


def test_skip_existing_finishes_only_what_is_missing(clean_tree: Tree, workdir: Path) -> None:
    first = lrn(str(clean_tree.root), "-o", "out")
    assert first.exit_code == 0
    made = {rel: (workdir / "out" / rel).stat().st_mtime_ns for rel in clean_tree.ok.values()}
    (workdir / "out" / "sub dir" / "c d.png").unlink()

    again = lrn(str(clean_tree.root), "-o", "out", "--skip-existing", "--manifest", "m.csv")
    assert again.exit_code == 0, again.output
    assert summary(again.stderr) == {"interrupted": False, "processed": 1,
                                     "skipped": len(clean_tree.ok) - 1, "failed": 0,
                                     "not_started": 0}
    assert (workdir / "out" / "sub dir" / "c d.png").is_file()
    for rel, mtime in made.items():
        if rel != "sub dir/c d.png":
            assert (workdir / "out" / rel).stat().st_mtime_ns == mtime, f"{rel} was rewritten"
    assert f"{clean_tree.root}/a.png: skipped" in again.stderr
    statuses = {row["file"]: row["status"] for row in manifest_rows(workdir / "m.csv")}
    assert statuses.pop(f"{clean_tree.root}/sub dir/c d.png") == "ok"
    assert set(statuses.values()) == {"skipped"}


def test_rerun_without_skip_existing_refuses_to_overwrite(clean_tree: Tree,
                                                          workdir: Path) -> None:
    assert lrn(str(clean_tree.root), "-o", "out").exit_code == 0
    before = snapshot(workdir / "out")
    again = lrn(str(clean_tree.root), "-o", "out")
    assert again.exit_code == 1
    errors = error_lines(again.stderr)
    assert len(errors) == len(clean_tree.ok)
    assert all("already exists" in e for e in errors)
    assert snapshot(workdir / "out") == before
    assert lrn(str(clean_tree.root), "-o", "out", "--overwrite").exit_code == 0


def test_manifest_of_a_resumed_run_keeps_the_output_of_skipped_inputs(
        clean_tree: Tree, workdir: Path) -> None:
    assert lrn(str(clean_tree.root), "-o", "out").exit_code == 0
    again = lrn(str(clean_tree.root), "-o", "out", "--skip-existing", "--manifest", "m.csv")
    assert again.exit_code == 0
    for row in manifest_rows(workdir / "m.csv"):
        assert row["status"] == "skipped"
        assert (workdir / row["output"]).is_file(), row


def test_two_inputs_mapping_to_one_output_are_refused(workdir: Path) -> None:
    rng = np.random.default_rng(5)
    (workdir / "a").mkdir()
    rgb(rng).save(workdir / "a" / "x.png")
    rgb(rng, 10, 12).save(workdir / "a" / "x.jpg")
    rgb(rng).save(workdir / "a" / "y.png")
    before = snapshot(workdir / "a")
    result = lrn("a", "-o", "out")
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    # sorted order: x.jpg claims out/x.png first, x.png is refused and named
    assert line.startswith("error: a/x.png: would write out/x.png, like a/x.jpg")
    assert outputs(workdir / "out") == {"x.png", "y.png"}
    with Image.open(workdir / "out" / "x.png") as im:  # the JPEG's result, not overwritten
        assert im.size == (12, 10)
    assert snapshot(workdir / "a") == before
    assert summary(result.stderr)["processed"] == 2


def test_same_name_from_two_input_folders_collides(clean_tree: Tree, workdir: Path) -> None:
    other = workdir / "other"
    other.mkdir()
    rgb(np.random.default_rng(8)).save(other / "a.png")
    result = lrn("other", str(clean_tree.root / "a.png"), "-o", "out")
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"error: {clean_tree.root}/a.png: would write out/a.png, like "
                           "other/a.png")


def test_output_inside_the_input_tree_is_refused_unless_allowed(clean_tree: Tree,
                                                                workdir: Path) -> None:
    before = snapshot(clean_tree.root)
    inside = clean_tree.root / "sub dir" / "normalized"
    result = lrn(str(clean_tree.root), "-o", str(inside))
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "inside the input folder" in line and "--allow-input-tree" in line
    assert not (workdir / inside).exists()
    assert snapshot(clean_tree.root) == before

    # through a symlink to the input folder too
    os.symlink(clean_tree.root.name, workdir / "alias")
    result = lrn(str(clean_tree.root), "-o", "alias/out")
    assert result.exit_code == 1 and "inside the input folder" in result.stderr
    assert snapshot(clean_tree.root) == before

    allowed = lrn(str(clean_tree.root), "-o", str(inside), "--allow-input-tree")
    assert allowed.exit_code == 0, allowed.output
    assert outputs(workdir / inside) == set(clean_tree.ok.values())
    for rel, digest in before.items():  # the originals are untouched
        assert hashlib.sha256((workdir / clean_tree.root / rel).read_bytes()).hexdigest() \
            == digest


def test_output_into_the_input_folder_never_overwrites_an_input(clean_tree: Tree,
                                                                workdir: Path) -> None:
    before = snapshot(clean_tree.root)
    root = str(clean_tree.root)
    result = lrn(root, "-o", root, "--allow-input-tree", "--overwrite")
    assert result.exit_code == 1
    assert snapshot(clean_tree.root).items() >= before.items()  # inputs unchanged
    errors = error_lines(result.stderr)
    # every input except the JPEG would be written onto itself
    assert len(errors) == len(clean_tree.ok) - 1
    assert all("is an input file" in e for e in errors)
    assert (workdir / clean_tree.root / "b.png").is_file()


def test_glob_and_exclude_select_files(clean_tree: Tree, workdir: Path) -> None:
    root = clean_tree.root
    result = lrn(str(root), "-o", "out", "--glob", "*.PNG", "--exclude", "sub dir/*",
                 "--json")
    assert result.exit_code == 0, result.output
    inputs = {f["file"] for f in json.loads(result.stdout)["files"]}
    assert inputs == {f"{root}/a.png", f"{root}/gray.png", f"{root}/ünï cödé/é ß.png"}
    assert outputs(workdir / "out") == {"a.png", "gray.png", "ünï cödé/é ß.png"}

    arrays = lrn(str(root), "-o", "out2", "--glob", "*.np?", "--exclude", "pair*", "--json")
    assert arrays.exit_code == 0
    assert [f["file"] for f in json.loads(arrays.stdout)["files"]] == [f"{root}/acts/conv.npy"]

    nothing = lrn(str(root), "-o", "out3", "--glob", "*.tif")
    assert nothing.exit_code == 0
    assert not (workdir / "out3").exists()


def test_fail_fast_stops_at_the_first_failure(workdir: Path) -> None:
    rng = np.random.default_rng(11)
    root = workdir / "ff"
    root.mkdir()
    for i in range(6):
        rgb(rng).save(root / f"{i}.png")
    (root / "2.png").write_bytes(b"broken")  # the third in sorted order
    full = lrn("ff", "-o", "all")
    assert full.exit_code == 1
    assert summary(full.stderr)["processed"] == 5

    result = lrn("ff", "-o", "out", "--fail-fast")
    assert result.exit_code == 1
    counts = summary(result.stderr)
    assert counts["failed"] == 1
    assert counts["processed"] == 2
    assert outputs(workdir / "out") == {"0.png", "1.png"}
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: ff/2.png: ")


def test_fail_fast_with_a_refused_input_runs_nothing(tree: Tree, workdir: Path) -> None:
    result = lrn(str(tree.root), "-o", "out", "--fail-fast")
    assert result.exit_code == 1
    assert summary(result.stderr)["processed"] == 0
    assert not (workdir / "out").exists()


def test_output_folder_that_is_a_file_is_a_usage_error(clean_tree: Tree,
                                                       workdir: Path) -> None:
    (workdir / "taken").write_text("x")
    result = lrn(str(clean_tree.root), "-o", "taken")
    assert result.exit_code == 2
    assert "is a file" in result.stderr
    assert (workdir / "taken").read_text() == "x"


def test_a_single_file_input_writes_the_named_file(clean_tree: Tree, workdir: Path) -> None:
    result = lrn(f"{clean_tree.root}/acts/conv.npy", "-o", "single.npy")
    assert result.exit_code == 0, result.output
    y = np.load(workdir / "single.npy")
    assert y.shape == (2, 8, 6, 6) and y.dtype == np.float32


# --------------------------------------------------------------------------- bugs (walker)


def test_link_to_a_sibling_folder_is_not_a_loop(workdir: Path) -> None:
    root = workdir / "dup"
    (root / "zdir").mkdir(parents=True)
    rgb(np.random.default_rng(2)).save(root / "zdir" / "x.png")
    os.symlink("zdir", root / "alias")  # sorts before zdir
    result = lrn("dup", "-o", "out")
    assert "dup/zdir: symlink loop" not in result.stderr
    assert (workdir / "out" / "zdir" / "x.png").is_file()


def test_link_to_a_parent_of_the_input_folder_is_refused_as_a_loop(tree: Tree,
                                                                   workdir: Path) -> None:
    sub = tree.root / "sub dir"  # holds loop -> .. (the parent of the folder given)
    result = lrn(str(sub), "-o", "out")
    assert f"{sub}/loop" in "\n".join(error_lines(result.stderr))
    assert outputs(workdir / "out") == {"c d.png", "deep/e.png"}


def _problems(inputs: list[str]) -> dict[str, str]:
    from lrn_cli import batch

    _sources, problems = batch.discover(inputs)
    return {p.path: p.reason for p in problems}


def _found(inputs: list[str]) -> set[str]:
    from lrn_cli import batch

    sources, _problems = batch.discover(inputs)
    return {s.rel for s in sources}


def test_walker_skips_a_link_into_the_tree_naming_the_link(workdir: Path) -> None:
    (workdir / "t" / "real").mkdir(parents=True)
    rgb(np.random.default_rng(1)).save(workdir / "t" / "real" / "x.png")
    os.symlink("real", workdir / "t" / "a-link")  # sorts first
    os.symlink("../real", workdir / "t" / "real" / "up-and-back")  # the folder itself: a loop
    assert _found(["t"]) == {"real/x.png"}
    assert _problems(["t"]) == {
        "t/a-link": "skipped: links to t/real, which is processed under its own name",
        "t/real/up-and-back": "symlink loop (points to an enclosing folder)",
    }


def test_walker_follows_a_link_out_of_the_tree_once(workdir: Path) -> None:
    rng = np.random.default_rng(2)
    (workdir / "elsewhere" / "deep").mkdir(parents=True)
    rgb(rng).save(workdir / "elsewhere" / "deep" / "y.png")
    (workdir / "t").mkdir()
    rgb(rng).save(workdir / "t" / "x.png")
    os.symlink("../elsewhere", workdir / "t" / "ext")
    os.symlink("../elsewhere", workdir / "t" / "ext2")
    os.symlink("../../t", workdir / "elsewhere" / "deep" / "back")  # into the input folder
    os.symlink("..", workdir / "elsewhere" / "deep" / "up")  # loops through the link
    assert _found(["t"]) == {"x.png", "ext/deep/y.png"}
    assert _problems(["t"]) == {
        "t/ext/deep/back": "symlink loop (points to an enclosing folder)",
        "t/ext/deep/up": "symlink loop (points to an enclosing folder)",
        "t/ext2": "skipped: already visited via t/ext",
    }


def test_walker_given_a_link_to_a_folder_walks_it(workdir: Path) -> None:
    (workdir / "real" / "sub").mkdir(parents=True)
    rgb(np.random.default_rng(3)).save(workdir / "real" / "sub" / "x.png")
    os.symlink("real", workdir / "given")
    os.symlink("..", workdir / "real" / "sub" / "loop")
    assert _found(["given"]) == {"sub/x.png"}
    assert _problems(["given"]) == {
        "given/sub/loop": "symlink loop (points to an enclosing folder)"}


def test_report_says_how_many_were_not_started_after_a_stop() -> None:
    from lrn_cli.batch import Report

    report = Report(processed=2, failed=1, not_started=3)
    report.finish()
    counts = summary(str(report))
    assert counts == {"interrupted": False, "processed": 2, "skipped": 0, "failed": 1,
                      "not_started": 3}
    assert "not started" not in str(Report(processed=2))


def _array_jobs(base: Path, n: int, *, missing: tuple[int, ...] = ()) -> list:
    from lrn_cli import batch

    rng = np.random.default_rng(6)
    jobs = []
    for i in range(n):
        src = base / f"in{i:02d}.npy"
        if i not in missing:
            np.save(src, rng.standard_normal((1, 4, 8, 8)).astype(np.float32))
        jobs.append(batch.Job(str(src), str(base / "out" / src.name)))
    return jobs


@pytest.mark.parametrize("workers", [1, 2])
def test_run_jobs_returns_how_many_were_not_started_after_a_stop(tmp_path: Path,
                                                                 workers: int) -> None:
    from lrn_cli import batch
    from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions

    jobs = _array_jobs(tmp_path, 12, missing=(1,))
    reported = []

    def on_result(result) -> bool:  # --fail-fast
        reported.append(result)
        return result.status != "failed"

    not_started = batch.run_jobs(jobs, Settings(), ReadOptions(), WriteOptions(),
                                 workers=workers, on_result=on_result)
    assert [r.source for r in reported if r.status == "failed"] == [jobs[1].source]
    assert len({r.source for r in reported}) == len(reported)
    assert len(reported) + not_started == len(jobs)
    if workers == 1:
        assert not_started == 10
    else:  # the failure comes back first; at most the jobs in flight still run
        assert not_started > 0
    written = {job.source for job in jobs if Path(job.output).exists()}
    assert written == {r.source for r in reported if r.status == "ok"}


def test_serial_ctrl_c_while_recording_waits_for_the_record(tmp_path: Path) -> None:
    from lrn_cli import batch
    from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions

    jobs = _array_jobs(tmp_path, 5)
    steps = []

    def on_result(result) -> bool:
        steps.append(f"start {Path(result.source).name}")
        if len(steps) == 3:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C while recording the second
        steps.append(f"end {Path(result.source).name}")
        return True

    with pytest.raises(KeyboardInterrupt) as info:
        batch.run_jobs(jobs, Settings(), ReadOptions(), WriteOptions(), workers=1,
                       on_result=on_result)
    assert steps == ["start in00.npy", "end in00.npy", "start in01.npy", "end in01.npy"]
    assert info.value.not_started == 3


ALWAYS_KILLED_WORKER = """
import sys
if "--multiprocessing-fork" in sys.argv:
    import os, signal
    import lrn_cli.batch as _batch
    def _dies(job, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    _batch._run_one = _dies
"""


def test_workers_that_always_die_fail_the_files_without_hanging(clean_tree: Tree,
                                                                workdir: Path) -> None:
    result = lrn_proc(str(clean_tree.root), "-o", "out", "-j", "2", cwd=workdir,
                      env=hooked_env(workdir, ALWAYS_KILLED_WORKER), timeout=180)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err
    errors = error_lines(err)
    assert len(errors) == len(clean_tree.ok)
    assert any("worker process died while processing it (killed by SIGKILL" in e
               for e in errors), errors
    assert summary(err)["failed"] == len(clean_tree.ok)
    assert not (workdir / "out").exists() or outputs(workdir / "out") == set()


# --------------------------------------------------------------------------- other bugs


def test_each_error_is_one_line_even_with_long_paths(workdir: Path) -> None:
    deep = workdir / "in" / ("long folder name " * 4).strip() / ("another long one " * 4).strip()
    deep.mkdir(parents=True)
    (deep / "broken image file.png").write_bytes(corrupt_png())
    result = lrn("in", "-o", "out")  # stderr is not a terminal, as in a log file
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert line.endswith(")"), result.stderr  # "...(Pillow: broken data stream ...)"
    assert "truncated or corrupt image data" in line


def _interrupt_after(n: int):
    """A stand-in for batch.run_jobs: run ``n`` jobs for real, then Ctrl-C."""
    from lrn_cli import batch

    def run_jobs(jobs, settings, ropts, wopts, *, workers, on_result, protect=(),
                 want_traceback=False):
        for job in jobs[:n]:
            on_result(batch._run_one(job, settings, ropts, wopts, protect, want_traceback))
        raise KeyboardInterrupt

    return run_jobs


def test_interrupt_summary_and_manifest_in_process(clean_tree: Tree, workdir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from lrn_cli import batch

    monkeypatch.setattr(batch, "run_jobs", _interrupt_after(3))
    result = lrn(str(clean_tree.root), "-o", "out", "--manifest", "m.jsonl")
    assert result.exit_code == 130
    counts = summary(result.stderr)
    assert counts == {"interrupted": True, "processed": 3, "skipped": 0, "failed": 0,
                      "not_started": len(clean_tree.ok) - 3}
    assert len(outputs(workdir / "out")) == 3
    rows = manifest_rows(workdir / "m.jsonl")
    assert {r["status"] for r in rows} == {"ok"} and len({r["file"] for r in rows}) == 3


def test_interrupt_counts_not_started_with_refused_outputs(clean_tree: Tree, workdir: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from lrn_cli import batch

    (workdir / "out").mkdir()
    (workdir / "out" / "a.png").write_bytes(b"from an earlier run")
    (workdir / "out" / "gray.png").write_bytes(b"from an earlier run")
    monkeypatch.setattr(batch, "run_jobs", _interrupt_after(2))
    result = lrn(str(clean_tree.root), "-o", "out")
    assert result.exit_code == 130
    counts = summary(result.stderr)
    assert (counts["processed"], counts["failed"]) == (2, 2)
    total = len(clean_tree.ok)
    assert counts["processed"] + counts["failed"] + counts["not_started"] == total


def test_interrupt_while_publishing_still_counts_the_file(clean_tree: Tree, workdir: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from lrn_cli import atomic

    calls = []
    fsync_directory = atomic._fsync_directory

    def interrupted_on_second(directory) -> None:
        calls.append(directory)
        fsync_directory(directory)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C just after the second output got its name

    monkeypatch.setattr(atomic, "_fsync_directory", interrupted_on_second)
    result = lrn(str(clean_tree.root), "-o", "out", "--manifest", "m.csv")
    assert result.exit_code == 130
    written = outputs(workdir / "out")
    assert len(written) == 2
    counts = summary(result.stderr)
    assert counts["processed"] == len(written)
    assert counts["processed"] + counts["not_started"] == len(clean_tree.ok)
    assert len(manifest_rows(workdir / "m.csv")) == len(written)


# --------------------------------------------------------------------------- real processes


PROBE = """
import sys
if "--multiprocessing-fork" in sys.argv:  # a spawned worker of lrn's pool
    import os, signal
    import lrn_cli.batch as _batch
    _run_one = _batch._run_one
    def _probe(job, *args, **kwargs):
        import numba
        with open({log!r}, "a") as fh:
            ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            fh.write(f"{{os.getpid()}} {{numba.get_num_threads()}} {{ignored}}\\n")
        return _run_one(job, *args, **kwargs)
    _batch._run_one = _probe
"""


def test_parallel_run_equals_serial_run_byte_for_byte(clean_tree: Tree, workdir: Path) -> None:
    before = snapshot(clean_tree.root)
    log = workdir / "probe.log"
    probe_env = hooked_env(workdir, PROBE.format(log=str(log)), "probe")

    serial = lrn_proc(str(clean_tree.root), "-o", "serial", "-j", "1", "--manifest",
                      "serial.csv", cwd=workdir)
    parallel = lrn_proc(str(clean_tree.root), "-o", "parallel", "-j", "2", "--manifest",
                        "parallel.csv", cwd=workdir, env=probe_env)
    assert serial.returncode == 0, serial.stderr.decode()
    assert parallel.returncode == 0, parallel.stderr.decode()
    assert snapshot(clean_tree.root) == before

    a, b = snapshot(workdir / "serial"), snapshot(workdir / "parallel")
    assert set(a) == set(clean_tree.ok.values())
    assert a == b, "outputs differ between -j 1 and -j 2"

    def comparable(path: Path) -> list[dict]:
        rows = manifest_rows(path)
        for row in rows:
            row.pop("seconds")
            row["output"] = Path(row["output"]).relative_to(path.stem).as_posix()
        return sorted(rows, key=lambda r: (r["file"], r["array"]))

    assert comparable(workdir / "serial.csv") == comparable(workdir / "parallel.csv")

    # the jobs ran in workers that ignore Ctrl-C and share the cores without oversubscribing
    probes = [line.split() for line in log.read_text().splitlines()]
    assert len(probes) == len(clean_tree.ok)
    assert {threads for _pid, threads, _ign in probes} == {str(max(1, CORES // 2))}
    assert {ignored for _pid, _threads, ignored in probes} == {"True"}
    # no progress bar or colour when stderr is not a terminal
    err = parallel.stderr.decode()
    assert "\x1b[" not in err and "━" not in err
    assert summary(err)["processed"] == len(clean_tree.ok)


def test_stdin_npy_to_file_and_to_stdout(clean_tree: Tree, workdir: Path) -> None:
    data = (workdir / clean_tree.root / "acts" / "conv.npy").read_bytes()
    to_file = lrn_proc("-", "-o", "from_stdin.npy", cwd=workdir, input=data)
    assert to_file.returncode == 0, to_file.stderr.decode()
    y = np.load(workdir / "from_stdin.npy", allow_pickle=False)
    to_stdout = lrn_proc("-", "-o", "-", cwd=workdir, input=data)
    assert to_stdout.returncode == 0, to_stdout.stderr.decode()
    np.testing.assert_array_equal(np.load(io.BytesIO(to_stdout.stdout), allow_pickle=False), y)
    assert y.shape == (2, 8, 6, 6)
    reference = lrn(f"{clean_tree.root}/acts/conv.npy", "-o", "ref.npy")
    assert reference.exit_code == 0
    assert (workdir / "ref.npy").read_bytes() == (workdir / "from_stdin.npy").read_bytes()


def test_stdin_with_a_folder_into_an_output_folder(clean_tree: Tree, workdir: Path) -> None:
    png = (workdir / clean_tree.root / "a.png").read_bytes()
    result = lrn_proc("-", f"{clean_tree.root}/sub dir", "-o", "out", cwd=workdir, input=png)
    assert result.returncode == 0, result.stderr.decode()
    assert outputs(workdir / "out") == {"stdin.npy", "c d.png", "deep/e.png"}
    from_stdin = np.load(workdir / "out" / "stdin.npy")
    assert from_stdin.shape == (24, 32, 3)  # an image on stdin: HWC floats


def test_stdin_garbage_is_one_failed_input(workdir: Path) -> None:
    result = lrn_proc("-", "-o", "x.npy", cwd=workdir, input=b"definitely not an array")
    assert result.returncode == 1
    (line,) = error_lines(result.stderr.decode())
    assert line.startswith("error: <stdin>: ")
    assert not (workdir / "x.npy").exists()


def _wait_for_outputs(proc: subprocess.Popen, out: Path, count: int,
                      timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.is_dir() and len(list(out.glob("*.png"))) >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"lrn ended before it could be interrupted: {proc.returncode}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no outputs appeared")


@pytest.mark.parametrize(("jobs", "whole_group"), [("2", False), ("2", True), ("1", False)],
                         ids=["j2-parent", "j2-process-group", "j1"])
def test_ctrl_c_stops_cleanly(many: Path, tmp_path: Path, jobs: str, whole_group: bool) -> None:
    """SIGINT mid-run: exit 130, an 'interrupted' summary, only complete outputs.

    ``whole_group`` is what a terminal's Ctrl-C does (workers get the signal too).
    """
    before = snapshot(many)
    out = tmp_path / "out"
    total = len(before)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrn_cli", "apply", str(many), "-o", str(out), "-j", jobs,
         "--manifest", str(tmp_path / "m.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lrn_env(),
        start_new_session=whole_group)
    try:
        _wait_for_outputs(proc, out, 6)
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = stderr.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    counts = summary(err)
    assert counts["interrupted"]
    assert counts["failed"] == 0
    # >= 4 of the 6 seen: a file whose output just appeared may be lost from the count
    # (test_interrupt_while_publishing_still_counts_the_file, ..._reports_every_finished_file)
    assert 4 <= counts["processed"] < total
    assert counts["processed"] + counts["not_started"] == total

    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]
    written = sorted(out.glob("*.png"))
    for path in written:
        assert read_output(path).shape == (256, 256, 3)
    # Normally equal; a Ctrl-C landing while the parent records a result can drop finished
    # files from the count (see test_interrupt_reports_every_finished_file), hence the slack.
    assert counts["processed"] <= len(written) <= counts["processed"] + 2 * int(jobs)
    rows = manifest_rows(tmp_path / "m.csv")
    assert {r["status"] for r in rows} == {"ok"}
    assert {Path(r["output"]).name for r in rows} <= {p.name for p in written}
    assert snapshot(many) == before
    assert b"files (across" in stdout  # the table of what was done


def test_interrupt_reports_every_finished_file(tmp_path: Path) -> None:
    """Ctrl-C while the parent records one result must not lose the other finished ones."""
    from lrn_cli import batch
    from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions

    rng = np.random.default_rng(4)
    jobs = []
    for i in range(12):
        src = tmp_path / f"in{i:02d}.npy"
        np.save(src, rng.standard_normal((1, 8, 16, 16)).astype(np.float32))
        jobs.append(batch.Job(str(src), str(tmp_path / "out" / src.name)))
    first_four = [Path(job.output) for job in jobs[:4]]
    reported: list[str] = []

    def on_result(result) -> bool:
        reported.append(result.source)
        if len(reported) == 1:  # let the next three finish while we are busy here
            deadline = time.monotonic() + 60
            while not all(p.exists() for p in first_four) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)  # and their results reach this process
            return True
        raise KeyboardInterrupt  # Ctrl-C while recording the second result

    with pytest.raises(KeyboardInterrupt):
        batch.run_jobs(jobs, Settings(), ReadOptions(), WriteOptions(), workers=2,
                       on_result=on_result)
    assert all(p.exists() for p in first_four)
    written = {job.source for job in jobs if Path(job.output).exists()}
    assert written <= set(reported), f"written but never reported: {written - set(reported)}"


SIGINT_AT_WORKER_START = """
import sys
if "--multiprocessing-fork" in sys.argv:  # a spawned worker, before lrn's initializer
    import os, signal
    import multiprocessing.spawn as _spawn
    _main = _spawn._main
    def _interrupted_main(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C that reaches this worker
        return _main(*args, **kwargs)
    _spawn._main = _interrupted_main
"""

KILLED_WORKER = """
import sys
if "--multiprocessing-fork" in sys.argv:
    import os, signal
    import lrn_cli.batch as _batch
    _run_one = _batch._run_one
    def _dies_on_one_file(job, *args, **kwargs):
        if job.source.endswith("c d.png"):
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return _run_one(job, *args, **kwargs)
    _batch._run_one = _dies_on_one_file
"""


def test_sigint_reaching_a_starting_worker_does_not_break_the_run(clean_tree: Tree,
                                                                  workdir: Path) -> None:
    result = lrn_proc(str(clean_tree.root), "-o", "out", "-j", "2", cwd=workdir,
                      env=hooked_env(workdir, SIGINT_AT_WORKER_START))
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert result.returncode == 0, err
    assert outputs(workdir / "out") == set(clean_tree.ok.values())


def test_a_killed_worker_fails_its_files_not_the_batch(clean_tree: Tree, workdir: Path) -> None:
    result = lrn_proc(str(clean_tree.root), "-o", "out", "-j", "2", "--manifest", "m.csv",
                      cwd=workdir, env=hooked_env(workdir, KILLED_WORKER))
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert result.returncode == 1
    assert any(e.startswith(f"error: {clean_tree.root}/sub dir/c d.png: ")
               for e in error_lines(err))
    counts = summary(err)
    total = len(clean_tree.ok)
    assert counts["processed"] + counts["failed"] == total
    assert counts["failed"] <= 4  # at most the jobs in flight (2 per worker) are lost
    assert len({r["file"] for r in manifest_rows(workdir / "m.csv")}) == total


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run lrn with stderr on a pseudo-terminal; return the exit code and what it showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lrn_cli", "apply", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env=lrn_env(COLUMNS="200", TERM="xterm"))
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), shown
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("quiet", [False, True], ids=["bar", "quiet"])
def test_progress_bar_on_a_terminal_only_without_quiet(tree: Tree, workdir: Path,
                                                        quiet: bool) -> None:
    code, shown = _run_on_a_terminal(
        [str(tree.root), "-o", "out", "-j", "1", *(["--quiet"] if quiet else [])], workdir)
    assert code == 1
    text = shown.decode("utf-8", "replace")
    refused = ("not a regular file", "broken symlink", "symbolic links", "symlink loop")
    total = len(tree.ok) + sum(why not in refused for why in tree.failed.values())
    has_bar = f"/{total}" in text and "━" in text
    assert has_bar is not quiet, text[-2000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    # errors (still one per bad input) and the summary survive the bar
    for source in tree.failed:
        assert f"error: {source}: " in plain
    assert summary(plain)["processed"] == len(tree.ok)
