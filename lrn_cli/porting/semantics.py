"""What an LRN layer computes, independent of any framework's names: the shared vocabulary of
``lrn explain``, ``lrn inspect`` and ``lrn export``.

* :class:`Semantics`: ``y = x * (k' + a'*S)**-beta`` with ``S`` the sum of squares over
  ``[c-lo, c+hi]`` on the channel axis (across) or that box on two spatial axes (within).
  ``taps`` rather than a size, because conventions disagree on what a size means.
* :func:`equivalents`: the parameters of every convention that compute it, or why none do.
* :class:`Difference` and :func:`differences`: how two semantics differ, in words that name
  the converter behaviour known to produce each difference
  (``shared/converter-hazards.md`` section 1).

JSON forms (``as_dict``) are those of ``docs/schema.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as _dc_field
from typing import Any

import numpy as np

from lrn_cli.conventions import (
    CONVENTIONS,
    NoExactTranslation,
    Resolved,
    express,
    get_convention,
    resolve,
)
from lrn_cli.errors import ParameterError


@dataclass(frozen=True)
class Semantics:
    """One LRN, as the kernels see it (see the module docstring)."""

    mode: str
    lo: int
    hi: int
    alpha_eff: float
    k_eff: float
    beta: float
    channel_axis: int | None = 1
    """The summed axis (across mode)."""
    spatial_axes: tuple[int, ...] | None = None
    """The two axes of the box (within mode; :meth:`apply` refuses any other count)."""

    @property
    def taps(self) -> int:
        """Positions summed per axis."""
        return self.lo + self.hi + 1

    @property
    def window(self) -> tuple[int, int]:
        """``(lo, hi)``: the window is ``[c-lo, c+hi]``."""
        return (self.lo, self.hi)

    def resolved(self) -> Resolved:
        """The kernels' constants."""
        return Resolved(lo=self.lo, hi=self.hi, alpha_eff=self.alpha_eff, k_eff=self.k_eff,
                        beta=self.beta, size=self.taps)

    @classmethod
    def of(cls, convention: str, mode: str, size: int, alpha: float, beta: float, k: float,
           *, channel_axis: int | None = 1,
           spatial_axes: tuple[int, int] | None = (2, 3)) -> Semantics:
        """The semantics of ``convention`` with these parameters (``size`` is the width n;
        a TensorFlow radius r is ``n = 2r+1``)."""
        r = resolve(convention, mode, size, alpha, beta, k)
        if mode == "across":
            return cls("across", r.lo, r.hi, r.alpha_eff, r.k_eff, r.beta,
                       channel_axis=channel_axis, spatial_axes=None)
        return cls("within", r.lo, r.hi, r.alpha_eff, r.k_eff, r.beta, channel_axis=None,
                   spatial_axes=tuple(spatial_axes) if spatial_axes is not None else None)

    def as_dict(self) -> dict[str, Any]:
        """The schema's ``semantics`` object."""
        doc: dict[str, Any] = {"mode": self.mode}
        if self.mode == "across":
            doc["channel_axis"] = self.channel_axis
        else:
            doc["spatial_axes"] = list(self.spatial_axes) if self.spatial_axes else None
        doc.update(window=[self.lo, self.hi], taps=self.taps, alpha_eff=self.alpha_eff,
                   k_eff=self.k_eff, beta=self.beta)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Semantics:
        """Read the schema's ``semantics`` object back."""
        lo, hi = (int(v) for v in doc["window"])
        axes = doc.get("spatial_axes")
        return cls(doc["mode"], lo, hi, float(doc["alpha_eff"]), float(doc["k_eff"]),
                   float(doc["beta"]), channel_axis=doc.get("channel_axis"),
                   spatial_axes=tuple(axes) if axes is not None else None)

    def describe(self) -> str:
        """One line: ``across axis 1, window [c-2, c+2] (5 taps), a'=2e-05, k'=1, beta=0.75``."""
        if self.mode == "across":
            where = f"across axis {self.channel_axis}, window [c-{self.lo}, c+{self.hi}]"
        else:
            axes = "" if self.spatial_axes is None else f" on axes {list(self.spatial_axes)}"
            where = f"within{axes}, box [-{self.lo}, +{self.hi}]²"
        return (f"{where} ({self.taps} taps), a'={self.alpha_eff:.6g}, k'={self.k_eff:.6g}, "
                f"beta={self.beta:.6g}")

    def apply(self, x: np.ndarray, *, return_divisor: bool = False):
        """LRN of ``x`` with exactly these semantics, by the library's kernels (any window
        placement, not only the conventions' rules)."""
        from lrn_cli.core import _forward, result_dtype
        from lrn_cli.layouts import axis_index, normalize_axis

        x = np.asarray(x)
        rdtype = result_dtype(x.dtype)
        r = self.resolved()
        if self.lo < 0 or self.hi < 0:
            raise ParameterError(f"window offsets must be >= 0, not [{self.lo}, {self.hi}]")
        if self.mode == "across":
            axis = normalize_axis(self.channel_axis, x.ndim)
            moved, back = x, None
        else:
            if self.spatial_axes is None or len(set(self.spatial_axes)) != 2:
                raise ParameterError("within-channel semantics need two spatial axes")
            sp = tuple(axis_index(a, x.ndim, "spatial_axes") for a in self.spatial_axes)
            moved = np.moveaxis(x, sp, (-2, -1))
            axis, back = None, sp
        y = np.empty_like(moved, dtype=rdtype)
        d = np.empty_like(moved, dtype=rdtype) if return_divisor else None
        if moved.size:
            _forward(moved, y, d, r, self.mode, axis)
        if back is not None:
            y = np.moveaxis(y, (-2, -1), back)
            d = None if d is None else np.moveaxis(d, (-2, -1), back)
        return (y, d) if return_divisor else y


def equivalents(sem: Semantics, *, axis_length: int | None = None,
                ndim: int | None = None) -> dict[str, dict[str, Any]]:
    """Every convention's own parameters for ``sem``, or the reason it cannot express it.

    ``{"<convention>": {"params": {...} | None, "reason": str | None, "notes": [...]}}``.
    ``axis_length`` (the summed axis' length) lets a window that differs only beyond the
    axis count as the same; ``ndim`` lets the notes say when a framework that normalizes
    the last axis (TensorFlow) needs a transpose.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, conv in CONVENTIONS.items():
        try:
            t = express(conv, sem.mode, sem.lo, sem.hi, sem.alpha_eff, sem.k_eff, sem.beta,
                        axis_length=axis_length)
        except NoExactTranslation as exc:
            out[name] = {"params": None, "reason": str(exc), "notes": []}
            continue
        notes = list(t.notes)
        if sem.mode == "across" and ndim is not None and sem.channel_axis is not None:
            last = sem.channel_axis % ndim == ndim - 1
            if conv.channel_last and not last:
                notes.append(f"{conv.title} normalizes the last axis: move axis "
                             f"{sem.channel_axis} last (NCHW -> NHWC) first")
            elif not conv.channel_last and sem.channel_axis % ndim != 1:
                notes.append(f"{conv.title} normalizes axis 1: move axis {sem.channel_axis} "
                             "there (NHWC -> NCHW) first")
        if sem.mode == "within" and ndim is not None and sem.spatial_axes is not None:
            axes = [a % ndim for a in sem.spatial_axes]
            if axes != [ndim - 2, ndim - 1]:
                notes.append(f"{conv.title} boxes the last two axes (H, W of NCHW): move axes "
                             f"{axes} there (NHWC -> NCHW) first")
        out[name] = {"params": t.params, "reason": None, "notes": notes}
    return out


@dataclass(frozen=True)
class Difference:
    """One way a candidate LRN differs from the reference (the schema's ``difference``)."""

    field: str
    """A semantics key (``mode``, ``channel_axis``, ``spatial_axes``, ``window``, ``taps``,
    ``alpha_eff``, ``k_eff``, ``beta``) or ``layer`` (missing on one side)."""
    reference: Any
    candidate: Any
    text: str
    layer: str | None = _dc_field(default=None, compare=False)
    """When comparing model files: the reference layer's name (None: only in the candidate)."""
    candidate_layer: str | None = _dc_field(default=None, compare=False)
    """When comparing model files: the candidate layer's name (None: only in the reference)."""
    hazards: tuple[dict[str, str], ...] = _dc_field(default=(), compare=False)
    """Known converter behaviours (``{"target", "text", "cite"}``) that explain it."""

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"field": self.field, "reference": self.reference,
                               "candidate": self.candidate, "text": self.text}
        if self.layer is not None or self.candidate_layer is not None:
            doc.update(layer=self.layer, candidate_layer=self.candidate_layer,
                       hazards=[dict(h) for h in self.hazards])
        return doc


K_DROPPERS = ("caffe2ncnn, MNN, caffe2onnx, caffe-tensorflow and OpenCV's Caffe importer "
              "drop k")
WITHIN_LOSERS = ("caffe-tensorflow, caffe2onnx and X2Paddle ignore norm_region: "
                 "WITHIN_CHANNEL becomes across-channel")


def _close(a: float, b: float, rtol: float) -> bool:
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))


def _window_text(ref: Semantics, cand: Semantics) -> str:
    (rlo, rhi), (clo, chi) = ref.window, cand.window
    rt, ct = ref.taps, cand.taps
    said = f"window [c-{rlo}, c+{rhi}] ({rt} taps) became [c-{clo}, c+{chi}] ({ct} taps)"
    if rt == ct and abs(rlo - clo) == 1:
        side = "before" if clo > rlo else "after"
        return (f"{said}: the even size placed on the other side (extra tap now {side} c; "
                "PyTorch/Paddle put it before, ONNX/cuDNN after: pytorch/pytorch#75722, "
                "onnx2torch)")
    if rt % 2 == 1 and ct == rt - 1 or ct % 2 == 1 and rt == ct - 1:
        return said + ": an even size summed as n-1 or n+1 taps (onnx-tensorflow and onnx2tf " \
                      "sum n-1, oneDNN n-1, ncnn and Chainer CPU n+1)"
    if _radius_for_size(rt, ct) or _radius_for_size(ct, rt):
        return said + ": radius taken for size or size for radius (tf2onnx #531 -> #602, " \
                      "MNN #192, MMdnn #805/#808)"
    return said


def _radius_for_size(taps: int, other: int) -> bool:
    """``other`` taps is what a radius/size mix-up makes of ``taps``: the width 2r+1 read as
    a radius (2n+1 taps), or the radius r read as a width (about r taps)."""
    radius = (taps - 1) // 2
    return other == 2 * taps + 1 or (other < taps and abs(other - radius) <= 1)


def differences(ref: Semantics, cand: Semantics, *, rtol: float = 1e-12) -> list[Difference]:
    """Every semantic difference between ``ref`` and ``cand``, most telling first, each in
    words that name the converter behaviour known to produce it.  ``rtol``: how close two
    constants must be to count as equal (exact for model files; looser for fitted ones)."""
    out: list[Difference] = []
    if ref.mode != cand.mode:
        text = (f"{ref.mode}-channel became {cand.mode}-channel"
                + (f": {WITHIN_LOSERS}" if ref.mode == "within" else ""))
        out.append(Difference("mode", ref.mode, cand.mode, text))
        return out + _constant_differences(ref, cand, rtol)
    if ref.mode == "across" and ref.channel_axis != cand.channel_axis:
        out.append(Difference(
            "channel_axis", ref.channel_axis, cand.channel_axis,
            f"channels on axis {ref.channel_axis} became axis {cand.channel_axis}: NCHW vs "
            "NHWC (every TF <-> ONNX path transposes; ROCm/MIOpen #2341)"))
    if ref.mode == "within" and ref.spatial_axes != cand.spatial_axes:
        out.append(Difference(
            "spatial_axes", list(ref.spatial_axes or ()), list(cand.spatial_axes or ()),
            f"the box moved from axes {list(ref.spatial_axes or ())} to "
            f"{list(cand.spatial_axes or ())}: a layout change (NCHW vs NHWC)"))
    if ref.window != cand.window:
        out.append(Difference("window", list(ref.window), list(cand.window),
                              _window_text(ref, cand)))
    return out + _constant_differences(ref, cand, rtol)


def _constant_differences(ref: Semantics, cand: Semantics, rtol: float) -> list[Difference]:
    out: list[Difference] = []
    if not _close(ref.alpha_eff, cand.alpha_eff, rtol):
        ratio = cand.alpha_eff / ref.alpha_eff if ref.alpha_eff else math.inf
        text = f"a' {ref.alpha_eff:.6g} became {cand.alpha_eff:.6g} (x{ratio:.4g})"
        modes = {ref.mode, cand.mode}
        n_ref = float(ref.taps)
        if modes == {"across", "within"} and ref.taps == cand.taps and _close(
                ratio, n_ref if ref.mode == "within" else 1 / n_ref, 1e-3):
            text += (": the same alpha, divided by n² within channels and by n across "
                     "(the mode change alone does this)")
            out.append(Difference("alpha_eff", ref.alpha_eff, cand.alpha_eff, text))
            return out + _k_and_beta(ref, cand, rtol)
        for n in {ref.taps, cand.taps}:
            for power, what in ((1, "n"), (2, "n²")):
                f = float(n) ** power
                if n > 1 and _close(ratio, f, 1e-3):
                    text += (f": alpha not divided by {what}={f:g} (TensorFlow/Chainer alpha "
                             "read as Caffe/ONNX alpha; ONNX2TFLite, MarcBS/keras #4)")
                elif n > 1 and _close(ratio, 1 / f, 1e-3):
                    text += (f": alpha divided by {what}={f:g} twice (Caffe/ONNX alpha "
                             "divided again; caffe-tensorflow #173)")
        out.append(Difference("alpha_eff", ref.alpha_eff, cand.alpha_eff, text))
    return out + _k_and_beta(ref, cand, rtol)


def _k_and_beta(ref: Semantics, cand: Semantics, rtol: float) -> list[Difference]:
    out: list[Difference] = []
    if not _close(ref.k_eff, cand.k_eff, rtol):
        text = f"k={cand.k_eff:.6g} instead of {ref.k_eff:.6g}"
        if cand.k_eff == 1.0:
            text += f": {K_DROPPERS} (Caffe within-channel ignores k too)"
        elif cand.k_eff == 2.0 and ref.k_eff == 1.0:
            text += (": k=2 is the default of MXNet, cuDNN, Chainer and the AlexNet paper, "
                     "k=1 that of Caffe, PyTorch, ONNX and TensorFlow (BVLC/caffe#1453): a "
                     "default taken from the other framework")
        out.append(Difference("k_eff", ref.k_eff, cand.k_eff, text))
    if not _close(ref.beta, cand.beta, rtol):
        text = f"beta {ref.beta:.6g} became {cand.beta:.6g}"
        if cand.beta == 0.5 and ref.beta == 0.75:
            text += (": 0.5 is TensorFlow's default beta, 0.75 everyone else's: a beta left "
                     "at TensorFlow's default")
        elif cand.beta == 0.75 and ref.beta == 0.5:
            text += (": 0.75 is the default beta everywhere but TensorFlow (0.5): a beta left "
                     "at the target's default")
        out.append(Difference("beta", ref.beta, cand.beta, text))
    return out


def convention_semantics(convention: str, mode: str, params: dict[str, float],
                         **axes: Any) -> Semantics:
    """The semantics of a layer given in ``convention``'s own parameter names (a TensorFlow
    ``depth_radius`` is turned into the width ``2r+1``)."""
    conv = get_convention(convention)
    names = conv.param_names
    size = int(params[names["size"]])
    if conv.size_is_radius:
        size = 2 * size + 1
    return Semantics.of(conv.name, mode, size, params[names["alpha"]], params[names["beta"]],
                        params[names["k"]], **axes)
