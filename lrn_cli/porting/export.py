"""``lrn export``: the exact LRN as a standalone ONNX model, PyTorch module or TensorFlow
function, for layers the framework's own op cannot express (within-channel mode, even sizes,
the extra tap on the other side, ``k`` ignored, ``alpha`` not divided ...).

Everything is built from a :class:`~lrn_cli.porting.semantics.Semantics` (window
``[c-lo, c+hi]``, ``a'``, ``k'``, ``beta``, mode): that is what makes every convention, mode
and window placement exact.  The tensor layout (``NCHW`` or ``NHWC``, 4-D) is chosen here and
replaces the semantics' own axes.

* :func:`export` writes a file (atomically) and returns an :class:`Exported`.
* :func:`export_onnx_model` (``onnx.ModelProto``), :func:`pytorch_source` and
  :func:`tensorflow_source` (``str``) build the artefacts without writing them.
* :func:`verify` runs a written artefact in its own framework against the library's kernels.

The generated Python needs only its framework: no file access, no imports of ``lrn_cli``.
Window sums add the squares themselves (zero-padded slice sums, or pooling of ``x²`` in
ONNX), never differences of running sums, so data spanning many decades stays exact to a
few float32 ulps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrn_cli.conventions import DEFAULTS
from lrn_cli.errors import ParameterError
from lrn_cli.porting.semantics import Semantics

TARGETS = ("onnx", "pytorch", "tensorflow")
LAYOUTS = ("NCHW", "NHWC")
DEFAULT_LAYOUT = {"onnx": "NCHW", "pytorch": "NCHW", "tensorflow": "NHWC"}
SUFFIX = {"onnx": ".onnx", "pytorch": ".py", "tensorflow": ".py"}
_TARGET_ALIASES = {"torch": "pytorch", "tf": "tensorflow"}

__all__ = [
    "DEFAULT_LAYOUT",
    "LAYOUTS",
    "TARGETS",
    "Exported",
    "NativeRefused",
    "export",
    "export_onnx_model",
    "laid_out",
    "own_op",
    "probe_input",
    "pytorch_source",
    "run_artefact",
    "semantics_from",
    "tensorflow_source",
    "verify",
]


class NativeRefused(ParameterError):
    """``native=True`` asked for a framework op that does not compute these semantics."""


def target_name(target: str) -> str:
    """``onnx``, ``pytorch`` or ``tensorflow`` (``torch`` and ``tf`` accepted)."""
    key = str(target).strip().lower()
    key = _TARGET_ALIASES.get(key, key)
    if key not in TARGETS:
        raise ParameterError(f"unknown export target {target!r}; known: {', '.join(TARGETS)}")
    return key


def layout_name(layout: str | None, target: str) -> str:
    """The layout in upper case, the target's default when ``None``."""
    if layout is None:
        return DEFAULT_LAYOUT[target]
    name = str(layout).strip().upper()
    if name not in LAYOUTS:
        raise ParameterError(f"export works on 4-D tensors: layout NCHW or NHWC, not {layout!r}")
    return name


def laid_out(sem: Semantics, layout: str) -> Semantics:
    """``sem`` with the axes of a 4-D ``layout``: channels on 1 (NCHW) or 3 (NHWC), the
    within-channel box on (2, 3) or (1, 2).  Checks the constants as it goes."""
    check_semantics(sem)
    layout = layout_name(layout, "onnx")
    if sem.mode == "across":
        axis = 1 if layout == "NCHW" else 3
        return Semantics("across", sem.lo, sem.hi, sem.alpha_eff, sem.k_eff, sem.beta,
                         channel_axis=axis, spatial_axes=None)
    box = (2, 3) if layout == "NCHW" else (1, 2)
    return Semantics("within", sem.lo, sem.hi, sem.alpha_eff, sem.k_eff, sem.beta,
                     channel_axis=None, spatial_axes=box)


def check_semantics(sem: Semantics) -> None:
    """Raise :class:`ParameterError` unless ``sem`` is something the exports can compute."""
    if sem.mode not in ("across", "within"):
        raise ParameterError(f"mode must be 'across' or 'within', not {sem.mode!r}")
    for name in ("lo", "hi"):
        value = getattr(sem, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ParameterError(f"window offset {name} must be an integer >= 0, not {value!r}")
    for name in ("alpha_eff", "k_eff", "beta"):
        value = getattr(sem, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ParameterError(f"{name} must be a finite number, not {value!r}")
    if sem.alpha_eff < 0 or sem.k_eff < 0:
        raise ParameterError(f"a' and k' must be >= 0, not {sem.alpha_eff!r} and {sem.k_eff!r}")


def semantics_from(convention: str = "default", mode: str = "across", size: int | None = None,
                   alpha: float = DEFAULTS.alpha, beta: float = DEFAULTS.beta,
                   k: float = DEFAULTS.k, *,
                   depth_radius: int | None = None) -> tuple[Semantics, dict[str, Any]]:
    """The semantics of a convention's parameters (as ``lrn apply`` takes them) and an
    ``origin`` record saying where they came from.  The convention's own limits apply
    (Caffe has no even sizes): :class:`ParameterError`."""
    from lrn_cli.conventions import get_convention, radius_from_size, window_size

    conv = get_convention(convention)
    if size is not None and depth_radius is not None:
        raise ParameterError("give size or depth_radius, not both")
    given = window_size(size, depth_radius)
    n = DEFAULTS.size if given is None else int(given)
    sem = Semantics.of(conv.name, mode, n, alpha, beta, k)
    names = conv.param_names
    own = {names["size"]: radius_from_size(n) if conv.size_is_radius else n,
           names["alpha"]: float(alpha), names["beta"]: float(beta), names["k"]: float(k)}
    return sem, {"convention": conv.name, "mode": mode, "params": own}


# ---------------------------------------------------------------------------- text helpers


def safe_text(text: object, limit: int = 200) -> str:
    """``text`` on one line of printable characters (control characters escaped), at most
    ``limit`` long: fit for a comment or a docstring of generated code, whatever a model
    file named its layer."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and ch not in "\u2028\u2029":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    joined = "".join(out)
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def number(value: float) -> str:
    """A float as Python reads it back exactly (``repr``)."""
    return repr(float(value))


def origin_text(origin: Mapping[str, Any] | None) -> str:
    """One line: ``convention caffe, within, local_size=3, alpha=5e-05, beta=0.75, k=1``
    or ``layer 'norm1' of model.onnx (convention onnx: size=5, ...)``."""
    if not origin:
        return "semantics given directly"
    params = origin.get("params") or {}
    plist = ", ".join(f"{safe_text(key, 40)}={_param(value)}" for key, value in params.items())
    conv = origin.get("convention")
    if origin.get("file") is not None:
        said = f"layer '{safe_text(origin.get('layer'), 80)}' of {safe_text(origin['file'])}"
        if conv:
            said += f" ({safe_text(conv, 40)}" + (f": {plist})" if plist else ")")
        return said
    if conv:
        mode = origin.get("mode")
        return f"convention {safe_text(conv, 40)}" + (f", {mode}" if mode else "") + \
            (f", {plist}" if plist else "")
    return "semantics given directly"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.10g}"
    return safe_text(value, 60)


def what_text(sem: Semantics, layout: str) -> list[str]:
    """The lines saying what the export computes (header comments, doc strings)."""
    lo, hi, taps = sem.lo, sem.hi, sem.taps
    if sem.mode == "across":
        axis = "axis 1" if layout == "NCHW" else "axis 3 (last)"
        window = [f"S = sum of x**2 over channels [c-{lo}, c+{hi}] ({taps} taps) on {axis}, "
                  "zero beyond the axis"]
    else:
        axes = "axes 2, 3" if layout == "NCHW" else "axes 1, 2"
        window = [f"S = sum of x**2 over the box [h-{lo}, h+{hi}] x [w-{lo}, w+{hi}] "
                  f"({taps}x{taps} taps) of each channel,",
                  f"    H and W on {axes}, zero beyond the plane"]
    return [
        "y = x * (k' + a' * S) ** -beta",
        *window,
        f"a' = {number(sem.alpha_eff)}, k' = {number(sem.k_eff)}, beta = {number(sem.beta)}, "
        f"layout {layout}",
    ]


#: The constants block at the top of every generated Python file.
_CONSTANTS = '''LAYOUT = "{layout}"
MODE = "{mode}"
SUMMED_AXES = {axes}  # {axes_text}
LO, HI = {lo}, {hi}  # window [i-{lo}, i+{hi}] on each summed axis ({taps} taps)
ALPHA = {alpha}  # a': alpha as the convention divides it
K = {k}  # k': what the convention adds
BETA = {beta}
'''


def summed_axes(sem: Semantics, layout: str) -> tuple[tuple[int, ...], str]:
    """The axes the window runs over and their names, in ``layout``."""
    if sem.mode == "across":
        return ((1,), "channels") if layout == "NCHW" else ((3,), "channels")
    return ((2, 3), "H and W") if layout == "NCHW" else ((1, 2), "H and W")


def fill_body(template: str, sem: Semantics, layout: str) -> str:
    """A generated file's body: ``template`` with ``{constants}`` and the semantics filled in
    (the PyTorch and TensorFlow files share the constants and their names)."""
    axes, axes_text = summed_axes(sem, layout)
    filled = template.replace("{constants}", _CONSTANTS, 1)
    return filled.format(layout=layout, mode=sem.mode, axes=repr(axes), axes_text=axes_text,
                         lo=sem.lo, hi=sem.hi, taps=sem.taps, alpha=number(sem.alpha_eff),
                         k=number(sem.k_eff), beta=number(sem.beta),
                         mode_title=sem.mode.capitalize() + "-channel")


def header(framework: str, command: str, sem: Semantics, layout: str,
           origin: Mapping[str, Any], extra: str) -> str:
    """The comment that opens a generated ``.py`` file: what it computes, where it came
    from, the ``lrn`` version."""
    lines = [f"Local Response Normalization for {framework}, exported by lrn {lrn_version()} "
             f"(`lrn export {command}`)."]
    lines += ["  " + line for line in what_text(sem, layout)]
    lines.append(f"From: {origin_text(origin)}.")
    lines.append(extra)
    import textwrap

    out = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()))
        out += textwrap.wrap(line, width=96, initial_indent="", subsequent_indent=indent + "    ",
                             break_long_words=False, break_on_hyphens=False) or [""]
    return "".join(f"# {line}\n" for line in out)


def lrn_version() -> str:
    from lrn_cli import __version__

    return __version__


def own_op(target: str, sem: Semantics, layout: str) -> dict[str, Any] | None:
    """The target framework's own LRN call computing exactly ``sem`` in ``layout``, if there
    is one: ``{"call": "torch.nn.LocalResponseNorm(size=5, ...)", "params": {...}}``."""
    from lrn_cli.conventions import NoExactTranslation, express

    convention, axis, call = {
        "pytorch": ("pytorch", 1, "torch.nn.LocalResponseNorm"),
        "tensorflow": ("tensorflow", 3, "tf.nn.local_response_normalization"),
        "onnx": ("onnxruntime", 1, "ONNX LRN"),
    }[target]
    if sem.mode != "across" or (1 if layout == "NCHW" else 3) != axis:
        return None
    try:
        found = express(convention, "across", sem.lo, sem.hi, sem.alpha_eff, sem.k_eff,
                        sem.beta)
    except NoExactTranslation:
        return None
    if any("ulp" in note for note in found.notes):
        return None  # close, not exact
    args = ", ".join(f"{key}={value!r}" for key, value in found.params.items())
    return {"call": f"{call}({args})", "params": dict(found.params)}


# ---------------------------------------------------------------------------- builders


def export_onnx_model(sem: Semantics, *, layout: str = "NCHW", native: bool = False,
                      origin: Mapping[str, Any] | None = None, channels: int | None = None,
                      input_name: str = "x", output_name: str = "y"):
    """The ONNX model (opset 13, float32, symbolic batch and spatial sizes): standard ops
    only, or one ``LRN`` node with ``native=True`` where that node computes exactly ``sem``
    (else :class:`NativeRefused`).  Needs the ``onnx`` package."""
    from lrn_cli.porting.export_onnx import build_model

    layout = layout_name(layout, "onnx")
    return build_model(laid_out(sem, layout), layout=layout, native=native,
                       origin=dict(origin or {}), channels=channels, input_name=input_name,
                       output_name=output_name)


def pytorch_source(sem: Semantics, *, layout: str = "NCHW",
                   origin: Mapping[str, Any] | None = None) -> str:
    """Python source defining ``class LRN(torch.nn.Module)`` (and ``lrn(x)``) for ``sem``."""
    from lrn_cli.porting.export_torch import source

    layout = layout_name(layout, "pytorch")
    return source(laid_out(sem, layout), layout=layout, origin=dict(origin or {}))


def tensorflow_source(sem: Semantics, *, layout: str = "NHWC",
                      origin: Mapping[str, Any] | None = None) -> str:
    """Python source defining ``def lrn(x)`` on a ``tf.Tensor`` for ``sem``."""
    from lrn_cli.porting.export_tf import source

    layout = layout_name(layout, "tensorflow")
    return source(laid_out(sem, layout), layout=layout, origin=dict(origin or {}))


@dataclass(frozen=True)
class Exported:
    """What :func:`export` built (and wrote, when given a path)."""

    target: str
    semantics: Semantics
    """With the axes of ``layout``."""
    layout: str
    native: bool
    origin: dict[str, Any]
    path: Path | None = None
    content: bytes = field(default=b"", repr=False)
    """The file's bytes (UTF-8 source, or the serialized ONNX model)."""
    ops: tuple[str, ...] = ()
    """ONNX node types, in graph order (empty for Python targets)."""
    input_name: str = "x"
    output_name: str = "y"

    def as_dict(self) -> dict[str, Any]:
        """The schema's ``export`` fields (``docs/schema.md``)."""
        doc: dict[str, Any] = {
            "target": self.target,
            "output": None if self.path is None else str(self.path),
            "layout": self.layout,
            "native": self.native,
            "semantics": self.semantics.as_dict(),
            "description": self.semantics.describe(),
            "origin": self.origin,
            "bytes": len(self.content),
            "lrn_version": lrn_version(),
        }
        if self.target == "onnx":
            doc.update(opset=13, ops=list(self.ops), input_name=self.input_name,
                       output_name=self.output_name)
        return doc


def export(target: str, semantics: Semantics | Mapping[str, Any] | None = None, *,
           convention: str = "default", mode: str = "across", size: int | None = None,
           alpha: float = DEFAULTS.alpha, beta: float = DEFAULTS.beta, k: float = DEFAULTS.k,
           depth_radius: int | None = None, layout: str | None = None,
           path: str | os.PathLike[str] | None = None, native: bool = False,
           overwrite: bool = False, channels: int | None = None,
           origin: Mapping[str, Any] | None = None, input_name: str = "x",
           output_name: str = "y", protect: Iterable[str | os.PathLike[str]] = ()) -> Exported:
    """Build the exact LRN layer for ``target`` and write it to ``path`` (if given).

    Parameters
    ----------
    target : {"onnx", "pytorch", "tensorflow"}
        What to write: an ``.onnx`` model, or a ``.py`` file for PyTorch or TensorFlow.
    semantics : Semantics or dict, optional
        What the layer computes (a dict in the schema's ``semantics`` form is read with
        :meth:`Semantics.from_dict`).  Without it, the convention parameters below give it,
        exactly as :func:`lrn_cli.lrn` reads them (``size`` is a width; TensorFlow users may
        give ``depth_radius``).
    convention, mode, size, alpha, beta, k, depth_radius
        The layer in a convention's terms (ignored when ``semantics`` is given).
    layout : {"NCHW", "NHWC"}, optional
        Of the 4-D tensors the layer takes; default NCHW for onnx and pytorch, NHWC for
        tensorflow.  It replaces the axes ``semantics`` may carry.
    path : path-like, optional
        Where to write (atomically, never over an input in ``protect``, an existing file only
        with ``overwrite``).  Without it nothing is written.
    native : bool
        onnx only: one ``LRN`` node, where it computes exactly these semantics and
        onnxruntime runs it (odd centred window, NCHW, across, alpha > 0, beta > 0); else
        :class:`NativeRefused` saying why.
    channels : int, optional
        onnx only: fix the channel dimension (default symbolic, like batch and spatial).
    origin : dict, optional
        Where the semantics came from, recorded in the artefact (default: the convention
        parameters, or "given directly").
    input_name, output_name : str
        onnx only: the graph's tensor names.

    Returns
    -------
    Exported
        The target, semantics, layout, the bytes and (when written) the path.

    Raises
    ------
    ParameterError
        Parameters the convention refuses, a bad layout or target, a refused ``native``.
    OutputError
        When ``path`` cannot be written.
    """
    target = target_name(target)
    lay = layout_name(layout, target)
    if semantics is None:
        sem, found = semantics_from(convention, mode, size, alpha, beta, k,
                                    depth_radius=depth_radius)
        origin = found if origin is None else origin
    else:
        sem = semantics if isinstance(semantics, Semantics) else Semantics.from_dict(
            dict(semantics))
    origin = dict(origin or {})
    if target != "onnx" and native:
        raise NativeRefused(f"--native is for onnx: {target} has no within-channel or even "
                            "LRN of its own, and its own op is what this layer replaces")
    if target != "onnx" and channels is not None:
        raise ParameterError("channels is for onnx (the Python layers take any channel count)")
    sem = laid_out(sem, lay)
    ops: tuple[str, ...] = ()
    if target == "onnx":
        model = export_onnx_model(sem, layout=lay, native=native, origin=origin,
                                  channels=channels, input_name=input_name,
                                  output_name=output_name)
        content = model.SerializeToString()
        ops = tuple(node.op_type for node in model.graph.node)
    elif target == "pytorch":
        content = pytorch_source(sem, layout=lay, origin=origin).encode("utf-8")
    else:
        content = tensorflow_source(sem, layout=lay, origin=origin).encode("utf-8")
    written = None
    if path is not None:
        from lrn_cli.atomic import atomic_write

        written = atomic_write(path, lambda handle: handle.write(content),
                               overwrite=overwrite, protect=list(protect))
    return Exported(target, sem, lay, bool(native), origin, written, content, ops,
                    input_name, output_name)


# ---------------------------------------------------------------------------- verify


def probe_input(shape: tuple[int, ...], seed: int = 0, *, low: float = 1e-4,
               high: float = 1e4):
    """float32 data with magnitudes spread log-uniformly over ``low..high`` and random signs:
    what exposes a running sum that cancels or a misplaced window."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mag = np.exp(rng.uniform(math.log(low), math.log(high), size=shape))
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


def run_artefact(target: str, path: str | os.PathLike[str], x):
    """Run a written export on the NumPy array ``x`` in its framework; NumPy result.

    ``.py`` files are loaded as modules (they are code: run only files you wrote).
    Raises :class:`ImportError` when the framework is not installed.
    """
    import importlib.util

    import numpy as np

    target = target_name(target)
    if target == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(os.fspath(path), opts,
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return session.run(None, {name: np.asarray(x, dtype=np.float32)})[0]
    if target == "pytorch":
        import torch
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ start-up chatter
        import tensorflow  # noqa: F401 - fail early with ImportError
    import importlib.machinery

    name = f"_lrn_export_{os.getpid()}"
    loader = importlib.machinery.SourceFileLoader(name, os.fspath(path))  # any suffix
    spec = importlib.util.spec_from_loader(name, loader)
    if spec is None or spec.loader is None:
        raise ParameterError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if target == "pytorch":
        with torch.no_grad():
            return module.LRN()(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    return np.asarray(module.lrn(x))


def verify(exported: Exported, *, shape: tuple[int, int, int, int] | None = None,
           seed: int = 0) -> dict[str, Any]:
    """Run the written artefact in its own framework on float32 data spanning 1e-4..1e4 and
    compare it with the library's kernels (computed in float64 on the same values).

    Returns ``{"shape": [...], "max_rel_error": e, "tolerance": 1e-5, "ok": bool}``; the
    error is ``max |got - want| / |want|`` over the elements.  Raises :class:`ImportError`
    when the framework is missing.
    """
    import numpy as np

    if exported.path is None:
        raise ParameterError("verify needs a written export (give a path)")
    if shape is None:
        shape = (2, 7, 9, 8) if exported.layout == "NCHW" else (2, 9, 8, 7)
    x = probe_input(tuple(shape), seed)
    want = exported.semantics.apply(x.astype(np.float64))
    got = np.asarray(run_artefact(exported.target, exported.path, x), dtype=np.float64)
    if got.shape != want.shape:
        raise ParameterError(f"the export returned shape {got.shape}, expected {want.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(got == want, 0.0, np.abs(got - want) / np.abs(want))
    worst = float(np.max(err)) if err.size else 0.0
    if not math.isfinite(worst):
        worst = math.inf
    return {"shape": list(shape), "max_rel_error": worst, "tolerance": 1e-5,
            "ok": bool(worst <= 1e-5)}
