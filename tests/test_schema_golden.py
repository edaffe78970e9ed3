"""Golden files pin the machine-readable output of every command (``docs/schema.md``).

Each case runs the real CLI (in-process, ``conftest.invoke``) on the bundled ``samples/`` in a
scratch folder where ``samples`` links to the repository's, so paths are the relative ones a
user would see.  Each output (stdout, a ``--manifest``, a ``--stats-out`` file) is normalised
(:func:`normalise`) and compared with ``tests/golden_schema/<case>.<ext>``.

Normalisation, the same for JSON, ``.jsonl`` and CSV:

* times: every ``seconds`` field (key or column) becomes ``"<seconds>"``;
* numbers: floats are rounded to 6 significant digits (what the golden files pin is the
  schema and the figures to that precision, not the last bits of a sum);
* paths: the scratch folder becomes ``<tmp>`` and the repository ``<repo>`` (neither should
  appear: the commands use relative paths);
* versions: a string equal to ``lrn_cli.__version__``, or any value of a key ending in
  ``version`` other than ``schema``, becomes ``"<version>"``.

A change of the output is deliberate: regenerate with

    LRN_UPDATE_GOLDEN=1 python -m pytest tests/test_schema_golden.py

review ``git diff tests/golden_schema``, raise ``SCHEMA_VERSION`` (``lrn_cli/schema.py``) if a
field was renamed, removed or changed meaning, and list it in the changelog of
``docs/schema.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, SAMPLES, invoke

import lrn_cli
from lrn_cli.schema import SCHEMA_VERSION

GOLDEN = Path(__file__).resolve().parent / "golden_schema"
UPDATE = os.environ.get("LRN_UPDATE_GOLDEN") == "1"
DIGITS = 6

ARR = "samples/arrays/tf_example_nhwc.npy"
GRAY = "samples/images/camera_gray.png"
RGBA = "samples/images/chelsea_rgba.png"


@dataclass(frozen=True)
class Case:
    """One command: its arguments, exit code, and the files it writes besides stdout."""

    name: str
    args: tuple[str, ...]
    stdout: str  # "json" | "csv"
    exit_code: int = 0
    files: tuple[tuple[str, str], ...] = ()  # (file the command writes, golden suffix)


CASES = (
    # a failed input is in the batch on purpose: its row shows the failure's fields
    Case("apply_json", ("apply", ARR, "pair.npz", GRAY, RGBA, "samples/missing.npy", "-o",
                        "out_json", "--json", "--manifest", "manifest.jsonl", "--stats-out",
                        "stats.csv"), "json", 1,
         (("manifest.jsonl", "manifest.jsonl"), ("stats.csv", "stats_out.csv"))),
    Case("apply_csv", ("apply", ARR, "pair.npz", GRAY, RGBA, "samples/missing.npy", "-o",
                       "out_csv", "--csv", "--manifest", "manifest.csv", "--stats-out",
                       "stats.json"), "csv", 1,
         (("manifest.csv", "manifest.csv"), ("stats.json", "stats_out.json"))),
    Case("stats_json", ("stats", ARR, "pair.npz", GRAY, "--layout", "NHWC", "--json"), "json"),
    Case("stats_csv", ("stats", ARR, "pair.npz", GRAY, "--layout", "NHWC", "--csv"), "csv"),
    Case("compare_json", ("compare", "lrn_of_arr.npy", ARR, "--layout", "NHWC", "--json"),
         "json", 1),
    Case("compare_csv", ("compare", "lrn_of_arr.npy", ARR, "--layout", "NHWC", "--csv"),
         "csv", 1),
    Case("sweep_json", ("sweep", ARR, "--layout", "NHWC", "--param", "beta", "0.5,1",
                        "--json"), "json"),
    Case("sweep_csv", ("sweep", ARR, "--layout", "NHWC", "--param", "beta", "0.5,1", "--csv"),
         "csv"),
    Case("conventions_json", ("conventions", "--json"), "json"),
    Case("conventions_show_json", ("conventions", "caffe", "--json"), "json"),
    Case("conventions_translate_json", ("conventions", "translate", "--from", "tensorflow",
                                        "--to", "caffe", "--depth-radius", "2", "--alpha",
                                        "2e-5", "--json"), "json"),
    Case("norms_json", ("norms", ARR, "--layout", "NHWC", "-o", "out_norms", "--json"), "json"),
    Case("norms_csv", ("norms", ARR, "--layout", "NHWC", "--csv"), "csv"),
    Case("inspect_json", ("inspect", "samples/models/vgg_cnn_m.prototxt",
                          "samples/models/zf_v1.prototxt", "samples/models/vgg_cnn_m.param",
                          "--json"), "json"),
    Case("inspect_against_json", ("inspect", "samples/models/vgg_cnn_m.prototxt", "--against",
                                  "samples/models/vgg_cnn_m.param", "--json"), "json", 1),
    Case("explain_json", ("explain", ARR, "lrn_of_arr.npy", "--json"), "json"),
    Case("explain_pair_json", ("explain", ARR, "lrn_of_arr.npy", "lrn_of_arr.npy", "--json"),
         "json"),
)


def golden_names() -> Iterator[str]:
    """Every golden file the cases produce."""
    for case in CASES:
        yield f"{case.name}.{case.stdout}"
        for _written, suffix in case.files:
            yield f"{case.name}.{suffix}"


# --------------------------------------------------------------------------- normalising


@dataclass(frozen=True)
class Context:
    tmp: str

    def text(self, s: str) -> str:
        if s == lrn_cli.__version__:
            return "<version>"
        return s.replace(self.tmp, "<tmp>").replace(str(ROOT), "<repo>")


def _round(v: float) -> float:
    return v if not math.isfinite(v) or v == 0 else float(f"{v:.{DIGITS}g}")


def _normalise_json(obj: Any, ctx: Context, key: str | None = None) -> Any:
    if key == "seconds" and isinstance(obj, (int, float)):
        return "<seconds>"
    if key is not None and key.endswith("version") and key != "schema":
        return "<version>"
    if isinstance(obj, dict):
        return {k: _normalise_json(v, ctx, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalise_json(v, ctx) for v in obj]
    if isinstance(obj, float):
        return _round(obj)
    if isinstance(obj, str):
        return ctx.text(obj)
    return obj


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _normalise_cell(column: str, cell: str, ctx: Context) -> str:
    if column == "seconds" and cell:
        return "<seconds>"
    if column.endswith("version") and column != "schema" and cell:
        return "<version>"
    try:
        int(cell)
        return cell
    except ValueError:
        pass
    try:
        return repr(_round(float(cell)))
    except ValueError:
        return ctx.text(cell)


def normalise(text: str, kind: str, ctx: Context) -> str:
    """``text`` (a JSON document, ``.jsonl`` rows or CSV) with times, float noise, paths and
    versions normalised as the module docstring says."""
    if kind == "json":
        return _json_text(_normalise_json(json.loads(text), ctx))
    if kind == "jsonl":
        return "".join(json.dumps(_normalise_json(json.loads(line), ctx), ensure_ascii=False)
                       + "\n" for line in text.splitlines())
    assert kind == "csv", kind
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows[1:]:
        writer.writerow([_normalise_cell(c, v, ctx) for c, v in zip(header, row, strict=True)])
    return buf.getvalue()


# --------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """golden file name -> (normalised output, kind), for every case (run once)."""
    work = tmp_path_factory.mktemp("golden")
    (work / "samples").symlink_to(SAMPLES)
    x = np.load(SAMPLES / "arrays" / "tf_example_nhwc.npy")
    np.savez(work / "pair.npz", a=x, b=x[..., :2] * 2)
    np.save(work / "lrn_of_arr.npy", lrn_cli.lrn(x, channel_axis=-1))
    ctx = Context(str(work))
    found: dict[str, tuple[str, str]] = {}
    here = os.getcwd()
    os.chdir(work)
    try:
        for case in CASES:
            result = invoke(list(case.args))
            assert result.exit_code == case.exit_code, (case.name, result.stderr)
            found[f"{case.name}.{case.stdout}"] = (
                normalise(result.stdout, case.stdout, ctx), case.stdout)
            for written, suffix in case.files:
                kind = suffix.rsplit(".", 1)[1]
                found[f"{case.name}.{suffix}"] = (
                    normalise((work / written).read_text(encoding="utf-8"), kind, ctx), kind)
                (work / written).unlink()
    finally:
        os.chdir(here)
    return found


@pytest.mark.parametrize("name", list(golden_names()))
def test_output_matches_golden_file(outputs, name):
    text, _kind = outputs[name]
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: LRN_UPDATE_GOLDEN=1 python -m pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed; if on purpose: LRN_UPDATE_GOLDEN=1 python -m pytest "
        "tests/test_schema_golden.py, and see docs/schema.md")


def test_no_stale_golden_files():
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(golden_names())


# --------------------------------------------------------------------------- the rules


def _documents(outputs) -> Iterator[tuple[str, Any]]:
    """(name, JSON document or row) of every JSON output and ``.jsonl`` row."""
    for name, (text, kind) in outputs.items():
        if kind == "json":
            yield name, json.loads(text)
        elif kind == "jsonl":
            for line in text.splitlines():
                yield name, json.loads(line)


def _keys(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_schema_is_the_first_key_of_every_document_row_and_csv(outputs):
    for name, doc in _documents(outputs):
        assert isinstance(doc, dict) and list(doc)[0] == "schema", name
        assert doc["schema"] == SCHEMA_VERSION, name
    for name, (text, kind) in outputs.items():
        if kind == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0][0] == "schema", name
            assert {row[0] for row in rows[1:]} == {str(SCHEMA_VERSION)}, name


#: Names schema 1 retired (docs/schema.md, changelog): none may come back.
RETIRED = {"input", "a", "b", "d_min", "d_max", "d_mean"}


def test_one_naming_scheme(outputs):
    """No retired name; ``file``-like keys hold paths (text), never statistics; the flat
    statistics columns are ``in_``/``out_``/``divisor_``/``gain_`` prefixed, never suffixed."""
    for name, doc in _documents(outputs):
        for key, value in _keys(doc):
            assert key not in RETIRED, (name, key)
            assert not key.endswith(("_in", "_out")), (name, key)
            if key in ("file", "a_file", "b_file", "output"):
                assert value is None or isinstance(value, str), (name, key, value)
    for name, (text, kind) in outputs.items():
        if kind != "csv":
            continue
        header = next(csv.reader(io.StringIO(text)))
        assert not RETIRED & set(header), name
        assert not [c for c in header if c.endswith(("_in", "_out"))], (name, header)


def test_apply_json_csv_and_manifest_share_the_flat_names(outputs):
    """The manifest's statistics columns are the apply CSV's (its scope "all" row)."""
    csv_header = next(csv.reader(io.StringIO(outputs["apply_csv.csv"][0])))
    manifest_header = next(csv.reader(io.StringIO(outputs["apply_csv.manifest.csv"][0])))
    stats = [c for c in csv_header if c.startswith(("in_", "out_", "divisor_", "gain_"))]
    assert stats and [c for c in manifest_header if c in stats] == stats
    row = json.loads(outputs["apply_json.manifest.jsonl"][0].splitlines()[0])
    assert [k for k in row if k in stats] == stats


#: Keys whose children are a convention's own parameter names (or convention names, in
#: ``equivalents``), not schema fields.
_OPEN_OBJECTS = {"params", "limits", "equivalents"}


def _field_names(obj: Any, parent: str | None = None) -> Iterator[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if parent not in _OPEN_OBJECTS:
                yield k
            yield from _field_names(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _field_names(v, parent)


def test_docs_define_every_field(outputs):
    """Every key and column of every output is named in docs/schema.md (a flat statistics
    column by its rule: ``in_``/``out_``/``divisor_``/``gain_`` and a named figure)."""
    import re

    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    fields: set[str] = set()
    for _name, doc in _documents(outputs):
        fields |= set(_field_names(doc))
    for _name, (out, kind) in outputs.items():
        if kind == "csv":
            fields |= set(next(csv.reader(io.StringIO(out))))
    flat = re.compile(r"(?:in|out|divisor|gain)_(.+)")
    undefined = {f for f in fields - named
                 if not ((m := flat.fullmatch(f)) and m.group(1) in named)}
    assert undefined == set()
