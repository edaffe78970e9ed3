"""``lrn inspect`` as a library: the LRN layers of model files, what each computes in every
framework's terms, what each known converter and runtime will do to it, and how a converted
model differs from its source.

>>> report = inspect_model("deploy.prototxt")                       # doctest: +SKIP
>>> report.layers[0].semantics.describe()                           # doctest: +SKIP
"across axis 1, window [c-2, c+2] (5 taps), a'=0.0001, k'=2, beta=0.75"
>>> compare_models("deploy.prototxt", "converted.param")           # doctest: +SKIP
[Difference(field='k_eff', reference=2.0, candidate=1.0, ...)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lrn_cli.porting.models import ModelFile, RawLayer, read_model
from lrn_cli.porting.semantics import Difference, Semantics, differences, equivalents

#: Constants count as equal between two model files to float32 precision: every format
#: stores them as float32 (Caffe's and ONNX's protobuf floats, ncnn's float params).
RTOL = 1e-6


@dataclass
class LayerReport:
    """One LRN layer of a model file."""

    name: str
    inputs: list[str]
    outputs: list[str]
    convention: str
    """The convention whose rules the file's runtime follows (``onnx``, ``caffe``, ``ncnn``)."""
    params: dict[str, Any]
    """The parameters in the file's own names (absent ones at their defaults)."""
    semantics: Semantics
    equivalents: dict[str, dict[str, Any]]
    """Every convention's parameters for these semantics, or why it has none
    (:func:`lrn_cli.porting.semantics.equivalents`)."""
    hazards: list[dict[str, str]]
    """``{"target", "text", "cite"}`` for each known converter/runtime behaviour that
    applies (narrowed by ``targets``)."""
    defaulted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    line: int | None = None
    where: str | None = None
    raw: RawLayer | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The schema's ``layer`` object (``docs/schema.md``, ``## inspect``)."""
        return {"name": self.name, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "convention": self.convention, "params": dict(self.params),
                "defaulted": list(self.defaulted), **self.semantics.as_dict(),
                "equivalents": self.equivalents, "hazards": [dict(h) for h in self.hazards],
                "line": self.line, "where": self.where, "notes": list(self.notes)}


@dataclass
class ModelReport:
    """Every LRN layer of one model file."""

    path: str
    format: str
    layers: list[LayerReport]
    notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> LayerReport:
        """The layer called ``name`` (else the one whose output tensor is ``name``);
        :class:`~lrn_cli.errors.ParameterError` when none, or more than one, is."""
        from lrn_cli.errors import ParameterError

        for hits in ([lay for lay in self.layers if lay.name == name],
                     [lay for lay in self.layers if name in lay.outputs]):
            if len(hits) == 1:
                return hits[0]
            if hits:  # a train_val prototxt: one layer per phase under one name
                where = ", ".join(str(lay.line) for lay in hits if lay.line is not None)
                raise ParameterError(
                    f"{self.path}: {len(hits)} LRN layers match {name!r}"
                    + (f" (lines {where})" if where else "")
                    + ": the name does not say which one; keep one of them in the file")

        known = ", ".join(repr(lay.name) for lay in self.layers) or "none"
        raise ParameterError(f"{self.path}: no LRN layer named {name!r} (its LRN layers: "
                             f"{known})")

    def as_dict(self) -> dict[str, Any]:
        """The schema's ``model`` object (the path is ``file``, as everywhere in the
        schema)."""
        return {"file": self.path, "format": self.format,
                "layers": [layer.as_dict() for layer in self.layers],
                "notes": list(self.notes)}


def _report(model: ModelFile, targets: Iterable[str] | None) -> ModelReport:
    from lrn_cli.porting.hazards import hazards_for

    layers = []
    for raw in model.layers:
        eq = equivalents(raw.semantics, axis_length=raw.axis_length, ndim=raw.ndim)
        layers.append(LayerReport(
            name=raw.name, inputs=list(raw.inputs), outputs=list(raw.outputs),
            convention=raw.convention, params=dict(raw.params), semantics=raw.semantics,
            equivalents=eq, hazards=hazards_for(model.format, raw, targets),
            defaulted=list(raw.defaulted), notes=list(raw.notes), line=raw.line,
            where=raw.where, raw=raw))
    return ModelReport(model.path, model.format, layers, list(model.notes))


def inspect_model(path, targets: Iterable[str] | None = None) -> ModelReport:
    """Read the LRN layers of the model file at ``path`` and say what each computes.

    Parameters
    ----------
    path
        An ONNX model, a Caffe ``.prototxt`` or an ncnn ``.param`` (detected from content).
    targets
        Converter/runtime names (:data:`lrn_cli.porting.hazards.TARGETS`, case-insensitive)
        to narrow the hazards to; ``None`` lists every one that applies.

    Returns
    -------
    ModelReport
        ``layers`` in file order; a model without LRN has none.

    Raises
    ------
    InputError
        The file cannot be read or is malformed (message names the file, and the line for
        text formats).
    ParameterError
        An unknown target name.
    """
    from lrn_cli.porting.hazards import resolve_targets

    wanted = resolve_targets(targets)  # an unknown target fails before the file is read
    return _report(read_model(path), wanted)


@dataclass(frozen=True)
class Pair:
    """A reference layer and the candidate layer it was matched with (either may be
    None: missing on that side)."""

    reference: LayerReport | None
    candidate: LayerReport | None
    by: str
    """``name``, ``output``, ``order`` or ``missing``."""


def match_layers(ref: ModelReport, cand: ModelReport) -> list[Pair]:
    """Match layers by node name, else by output tensor name, else by order."""
    rl, cl = ref.layers, cand.layers
    taken: set[int] = set()
    chosen: dict[int, tuple[int, str]] = {}
    names: dict[str, int] = {}
    for j, layer in enumerate(cl):
        if _named(layer):
            names.setdefault(layer.name, j)
    for i, layer in enumerate(rl):
        same = names.get(layer.name) if _named(layer) else None
        if same is not None and same not in taken:
            chosen[i] = (same, "name")
            taken.add(same)
    for i, layer in enumerate(rl):
        if i in chosen:
            continue
        for j, other in enumerate(cl):
            if j not in taken and set(layer.outputs) & set(other.outputs):
                chosen[i] = (j, "output")
                taken.add(j)
                break
    rest_c = [j for j in range(len(cl)) if j not in taken]
    for i in range(len(rl)):
        if i not in chosen and rest_c:
            chosen[i] = (rest_c.pop(0), "order")
    pairs = [Pair(rl[i], cl[chosen[i][0]], chosen[i][1]) if i in chosen
             else Pair(rl[i], None, "missing") for i in range(len(rl))]
    pairs += [Pair(None, cl[j], "missing") for j in rest_c]
    return pairs


def _named(layer: LayerReport) -> bool:
    return layer.raw is None or layer.raw.named


def compare_reports(ref: ModelReport, cand: ModelReport,
                    targets: Iterable[str] | None = None) -> list[Difference]:
    """Every difference between the LRN layers of two reports (see :func:`compare_models`);
    ``targets`` narrows the hazards that explain them."""
    from lrn_cli.porting.hazards import explaining, resolve_targets

    wanted = resolve_targets(targets)

    out: list[Difference] = []
    for pair in match_layers(ref, cand):
        r, c = pair.reference, pair.candidate
        if r is None or c is None:
            present = r or c
            assert present is not None
            side, other = (("reference", cand.path) if r is not None
                           else ("candidate", ref.path))
            text = (f"LRN layer {present.name!r} (output {', '.join(present.outputs) or '-'}) "
                    f"of the {side} has no counterpart in {other}")
            if r is not None:
                text += ": dropped or fused by the conversion?"
            out.append(Difference("layer", r.name if r else None, c.name if c else None, text,
                                  layer=r.name if r else None,
                                  candidate_layer=c.name if c else None))
            continue
        for d in differences(r.semantics, c.semantics, rtol=RTOL):
            explained: tuple[dict[str, str], ...] = ()
            if r.raw is not None:
                explained = tuple(h for h in explaining(d.field, ref.format, cand.format,
                                                        r.raw)
                                  if wanted is None or h["target"] in wanted)
            out.append(dataclasses.replace(d, layer=r.name, candidate_layer=c.name,
                                           hazards=explained))
    return out


def compare_models(reference_path, candidate_path,
                   targets: Iterable[str] | None = None) -> list[Difference]:
    """How the LRN layers of ``candidate_path`` (a conversion) differ from those of
    ``reference_path`` (its source).

    Layers are matched by node name, else by output tensor name, else by order; a layer
    missing on one side is a difference with ``field="layer"``.  Constants are compared to
    float32 precision (:data:`RTOL`).  Each difference carries the known converter
    behaviours that explain it (``hazards``), where one does.  An exact conversion gives
    an empty list.  ``targets`` narrows those hazards as in :func:`inspect_model`.
    """
    return compare_reports(inspect_model(reference_path, targets),
                           inspect_model(candidate_path, targets), targets)
