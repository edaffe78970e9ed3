"""Every framework's definition of LRN, as data.

All of them compute ``y = x * D**-beta`` with ``D = k + a' * S`` and
``S[c] = sum(x[j]**2 for j in W(c))`` (zero outside the axis).  A convention is fixed by:

* the window ``W(c) = [c - lo, c + hi]`` for odd and even widths ``n``
  (:data:`WINDOW_RULES`; odd ``n`` is centred in every framework),
* the alpha divisor ``a' = alpha / n**p`` (``p`` is 0, 1 or 2),
* whether ``k`` is used (when it is not, the framework hard-codes 1),
* which modes it defines, whether even ``n`` is rejected, extra limits,
* its own parameter names and defaults.

The kernels only ever see ``lo, hi, a', k'`` and ``beta``: one kernel family for all.
Source of truth: ``shared/lrn-conventions.md`` (sections 2-4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from lrn_cli.errors import ParameterError

MODES = ("across", "within")


@dataclass(frozen=True)
class Defaults:
    """The parameters every ``lrn`` entry point uses when none are given."""

    size: int
    alpha: float
    beta: float
    k: float

    def as_dict(self) -> dict[str, float | int]:
        """``{"size": 5, "alpha": 0.0001, "beta": 0.75, "k": 2.0}``."""
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


#: AlexNet's LRN (Krizhevsky et al. 2012, section 3.3): the defaults of the library, the
#: command line and the ``default`` convention.  The one place they are written.
DEFAULTS = Defaults(size=5, alpha=1e-4, beta=0.75, k=2.0)


def size_from_radius(depth_radius: int) -> int:
    """The window width ``n = 2r + 1`` of a TensorFlow-style ``depth_radius`` r.

    >>> size_from_radius(2)
    5
    """
    return 2 * int(depth_radius) + 1


def radius_from_size(size: int) -> int:
    """The ``depth_radius`` of an odd window width (``(n - 1) // 2``).

    >>> radius_from_size(5)
    2
    """
    return (int(size) - 1) // 2


def window_size(size: int | None, depth_radius: int | None) -> int | None:
    """The width given either as ``size`` or as ``depth_radius`` (``None``: neither).

    Raises
    ------
    ParameterError
        If both are given and disagree.

    Examples
    --------
    >>> window_size(None, 2), window_size(7, None), window_size(None, None)
    (5, 7, None)
    """
    if depth_radius is None:
        return size
    if size is not None and size != size_from_radius(depth_radius):
        raise ParameterError("give size or depth_radius, not both")
    return size_from_radius(depth_radius)


def settings_text(mode: str, convention: str, size: int, alpha: float, beta: float,
                  k: float, *, omit: str | None = None) -> str:
    """One line naming a run's LRN, as every table title and panel writes it.

    ``omit`` leaves one parameter out (``"size"``, ``"alpha"``, ``"beta"`` or ``"k"``: the
    one a sweep varies).

    >>> settings_text("across", "default", 5, 1e-4, 0.75, 2.0)
    'across, default, n=5, alpha=0.0001, beta=0.75, k=2'
    >>> settings_text("within", "caffe", 3, 1e-4, 0.75, 1.0, omit="beta")
    'within, caffe, n=3, alpha=0.0001, k=1'
    """
    values = {"size": ("n", size), "alpha": ("alpha", alpha), "beta": ("beta", beta),
              "k": ("k", k)}
    return ", ".join([mode, convention, *(f"{label}={value:g}"
                                          for name, (label, value) in values.items()
                                          if name != omit)])

#: Where a window of ``n`` taps sits around its centre: ``n -> (lo, hi)``.
#: All rules agree for odd ``n``; they differ only for even ``n``.
WINDOW_RULES: dict[str, Callable[[int], tuple[int, int]]] = {
    # the extra tap before c (PyTorch, Paddle 2.x, cuda-convnet): [c-n/2, c+n/2-1]
    "extra-before": lambda n: (n // 2, (n - 1) // 2),
    # the extra tap after c (ONNX, cuDNN, MatConvNet, Paddle legacy): [c-n/2+1, c+n/2]
    "extra-after": lambda n: ((n - 1) // 2, n // 2),
    # oneDNN's reference: [c-(n-1)//2, c+(n-1)//2], n-1 taps for even n, still divided by n
    "shrink": lambda n: ((n - 1) // 2, (n - 1) // 2),
    # AlexNet paper read literally, Chainer CPU: [c-n/2, c+n/2], n+1 taps for even n
    "widen": lambda n: (n // 2, n // 2),
}

WINDOW_RULE_TEXT = {
    "extra-before": "[c-n/2, c+n/2-1] (extra tap before c)",
    "extra-after": "[c-n/2+1, c+n/2] (extra tap after c)",
    "shrink": "[c-(n-1)/2, c+(n-1)/2] (n-1 taps, still divided by n)",
    "widen": "[c-n/2, c+n/2] (n+1 taps)",
}


@dataclass(frozen=True)
class ModeRule:
    """How one framework computes one mode."""

    even_window: str | None
    """Key of :data:`WINDOW_RULES` used for even ``n``; ``None`` = even ``n`` is rejected."""
    alpha_power: int
    """``a' = alpha / n**alpha_power`` (0: alpha as is, 1: alpha/n, 2: alpha/n²)."""
    uses_k: bool
    """False when the framework ignores ``k`` and hard-codes 1 in its place."""


@dataclass(frozen=True)
class Convention:
    """One framework's LRN, with its names and defaults."""

    name: str
    title: str
    modes: dict[str, ModeRule]
    param_names: dict[str, str]
    """Our parameter (size, alpha, beta, k) -> the framework's own name."""
    defaults: dict[str, float | int | None]
    """The framework's own defaults (``None``: the framework has no default)."""
    size_is_radius: bool = False
    """True when the framework takes ``depth_radius r`` and the window is ``2r+1``."""
    channel_last: bool = False
    """True when the framework normalizes the last axis (TensorFlow) rather than axis 1."""
    limits: dict[str, float] = field(default_factory=dict)
    """Extra limits: ``size_max``, ``beta_min``, ``k_min``, ``alpha_positive``,
    ``beta_positive``."""
    notes: tuple[str, ...] = ()
    source: str = ""

    def rule(self, mode: str) -> ModeRule:
        """Return the rule for ``mode`` or raise a clear error when the framework lacks it."""
        if mode not in MODES:
            raise ParameterError(f"mode must be 'across' or 'within', not {mode!r}")
        if mode not in self.modes:
            have = ", ".join(self.modes)
            raise ParameterError(
                f"{self.title} has no {mode}-channel LRN (it defines: {have}); "
                f"use --convention default or one that defines it"
            )
        return self.modes[mode]


@dataclass(frozen=True)
class Resolved:
    """What the kernels need: window offsets and effective constants."""

    lo: int
    hi: int
    alpha_eff: float
    k_eff: float
    beta: float
    size: int

    @property
    def taps(self) -> int:
        """Number of positions summed per axis."""
        return self.lo + self.hi + 1


def _across(even, power, k=True):
    return ModeRule(even, power, k)


_TORCH_NAMES = {"size": "size", "alpha": "alpha", "beta": "beta", "k": "k"}

CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "default",
            "lrn default",
            {"across": _across("extra-before", 1), "within": ModeRule("extra-before", 2, True)},
            _TORCH_NAMES,
            dict(DEFAULTS.as_dict()),
            notes=(
                "across: PyTorch semantics; within: centred window, alpha/n², k used "
                "(oneDNN for odd n; even n puts the extra tap before, like PyTorch and "
                "cuda-convnet)",
                "defaults are AlexNet's (n=5, alpha=1e-4, beta=0.75, k=2)",  # = DEFAULTS
            ),
        ),
        Convention(
            "pytorch",
            "PyTorch F.local_response_norm",
            {"across": _across("extra-before", 1)},
            _TORCH_NAMES,
            {"size": None, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
            source="torch/nn/functional.py local_response_norm",
        ),
        Convention(
            "tensorflow",
            "TensorFlow tf.nn.local_response_normalization",
            {"across": _across(None, 0)},
            {"size": "depth_radius", "alpha": "alpha", "beta": "beta", "k": "bias"},
            {"size": 5, "alpha": 1.0, "beta": 0.5, "k": 1.0},
            size_is_radius=True,
            channel_last=True,
            notes=("window is 2*depth_radius+1 (always odd); alpha is not divided by n",),
            source="tensorflow/core/kernels/lrn_op.cc",
        ),
        Convention(
            "caffe",
            "Caffe LRN layer",
            {"across": _across(None, 1), "within": ModeRule(None, 2, False)},
            {"size": "local_size", "alpha": "alpha", "beta": "beta", "k": "k"},
            {"size": 5, "alpha": 1.0, "beta": 0.75, "k": 1.0},
            notes=("WITHIN_CHANNEL ignores k (PowerLayer shift is hard-coded to 1)",),
            source="caffe/src/caffe/layers/lrn_layer.cpp",
        ),
        Convention(
            "onnx",
            "ONNX LRN operator (spec)",
            {"across": _across("extra-after", 1)},
            {"size": "size", "alpha": "alpha", "beta": "beta", "k": "bias"},
            {"size": None, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
            notes=("onnxruntime's CPU kernel rejects even size: use --convention onnxruntime",),
            source="onnx/defs/nn/defs.cc LRN",
        ),
        Convention(
            "onnxruntime",
            "onnxruntime CPU LRN",
            {"across": _across(None, 1)},
            {"size": "size", "alpha": "alpha", "beta": "beta", "k": "bias"},
            {"size": None, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
            limits={"alpha_positive": 1, "beta_positive": 1},
            notes=("float32 only in onnxruntime itself",),
            source="onnxruntime/core/providers/cpu/nn/lrn.cc",
        ),
        Convention(
            "opencv",
            "OpenCV dnn LRN (model from a Caffe prototxt)",
            {"across": _across(None, 1, False), "within": ModeRule(None, 2, False)},
            {"size": "local_size", "alpha": "alpha", "beta": "beta", "k": "bias"},
            {"size": 5, "alpha": 1.0, "beta": 0.75, "k": 1.0},
            notes=("the Caffe importer drops lrn_param.k: k is always 1, in both modes",),
            source="opencv/modules/dnn/src/layers/lrn_layer.cpp; caffe_importer.cpp",
        ),
        Convention(
            "mxnet",
            "MXNet LRN",
            {"across": _across(None, 1)},
            {"size": "nsize", "alpha": "alpha", "beta": "beta", "k": "knorm"},
            {"size": None, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
            source="mxnet/src/operator/nn/lrn-inl.h",
        ),
        Convention(
            "onednn",
            "oneDNN lrn_across_channels / lrn_within_channel",
            {"across": _across("shrink", 1), "within": ModeRule("shrink", 2, True)},
            {"size": "local_size", "alpha": "alpha", "beta": "beta", "k": "k"},
            {"size": None, "alpha": None, "beta": None, "k": None},
            notes=("even n sums n-1 taps but still divides by n",),
            source="oneDNN/src/cpu/ref_lrn.cpp",
        ),
        Convention(
            "cudnn",
            "cuDNN cudnnLRNCrossChannelForward",
            {"across": _across("extra-after", 1)},
            {"size": "lrnN", "alpha": "lrnAlpha", "beta": "lrnBeta", "k": "lrnK"},
            {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
            limits={"size_max": 16, "beta_min": 0.01, "k_min": 1e-5},
            source="cudnn.h (lrnN in [1,16], lrnBeta >= 0.01, lrnK >= 1e-5)",
        ),
        Convention(
            "cuda-convnet",
            "cuda-convnet(2) cmrnorm / rnorm",
            {"across": _across("extra-before", 1), "within": ModeRule("extra-before", 2, True)},
            {"size": "size", "alpha": "scale", "beta": "pow", "k": "minDiv"},
            {"size": None, "alpha": None, "beta": None, "k": 1.0},
            source="cuda-convnet2/layer.py NormLayerParser; cudaconv3/src/conv_util.cu",
        ),
        Convention(
            "chainer",
            "Chainer F.local_response_normalization (CPU)",
            {"across": _across("widen", 0)},
            {"size": "n", "alpha": "alpha", "beta": "beta", "k": "k"},
            {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
            notes=("alpha is not divided by n; even n sums n+1 taps (CPU path)",),
            source="chainer/functions/normalization/local_response_normalization.py",
        ),
        Convention(
            "paddle",
            "Paddle 2.x paddle.nn.functional.local_response_norm",
            {"across": _across("extra-before", 1)},
            _TORCH_NAMES,
            {"size": None, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
            source="paddle/nn/functional/norm.py",
        ),
        Convention(
            "paddle-legacy",
            "Paddle legacy lrn op",
            {"across": _across("extra-after", 0)},
            {"size": "n", "alpha": "alpha", "beta": "beta", "k": "k"},
            {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
            notes=("alpha is not divided by n",),
            source="paddle/phi/kernels/cpu/lrn_kernel.cc",
        ),
        Convention(
            "ncnn",
            "ncnn LRN layer (CPU, src/layer/lrn.cpp)",
            {"across": _across("widen", 1), "within": ModeRule("extra-before", 2, True)},
            {"size": "local_size", "alpha": "alpha", "beta": "beta", "k": "bias"},
            {"size": 5, "alpha": 1.0, "beta": 0.75, "k": 1.0},
            notes=(
                "across sums channels [c-n/2, c+n/2]: n+1 taps for even n, still alpha/n",
                "within pads n/2 before and n-n/2-1 after (extra tap before), alpha/n²",
                "param 4=bias is k (default 1); older ncnn had no bias and always used 1",
            ),
            source="Tencent/ncnn src/layer/lrn.cpp",
        ),
        Convention(
            "alexnet",
            "AlexNet paper (Krizhevsky et al. 2012, section 3.3, read literally)",
            {"across": _across("widen", 0)},
            {"size": "n", "alpha": "alpha", "beta": "beta", "k": "k"},
            {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
            notes=(
                "alpha is not divided by n; even n sums n+1 taps",
                "Krizhevsky's own cuda-convnet config is Caffe semantics with k=2, not this",
            ),
        ),
    )
}

DEFAULT_CONVENTION = "default"

_ALIASES = {"torch": "pytorch", "tf": "tensorflow", "ort": "onnxruntime", "cv2": "opencv",
            "dnnl": "onednn", "mkldnn": "onednn", "cudaconvnet": "cuda-convnet"}


def get_convention(name: str | Convention) -> Convention:
    """Look up a convention by name (case-insensitive, common aliases accepted).

    Examples
    --------
    >>> from lrn_cli import get_convention
    >>> tf = get_convention("TF")
    >>> tf.name, tf.size_is_radius, tf.param_names["size"]
    ('tensorflow', True, 'depth_radius')
    """
    if isinstance(name, Convention):
        return name
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    try:
        return CONVENTIONS[key]
    except KeyError:
        known = ", ".join(CONVENTIONS)
        raise ParameterError(f"unknown convention {name!r}; known: {known}") from None


def _check_finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be finite, not {value}")
    return value


def resolve(
    convention: str | Convention,
    mode: str,
    size: int,
    alpha: float,
    beta: float,
    k: float,
) -> Resolved:
    """Validate parameters against ``convention`` and reduce them to kernel constants.

    ``size`` is always the window width ``n`` here (convert a TensorFlow radius first with
    ``2*r + 1``).  Raises :class:`~lrn_cli.errors.ParameterError` naming the framework when
    it would refuse the parameters (even ``n``, cuDNN's ranges, onnxruntime's positivity).
    """
    conv = get_convention(convention)
    rule = conv.rule(mode)
    if isinstance(size, bool) or not isinstance(size, (int,)) and not (
        hasattr(size, "__index__")
    ):
        raise ParameterError(f"size must be an integer, not {size!r}")
    size = int(size)
    if size < 1:
        raise ParameterError(f"size must be >= 1, not {size}")
    alpha = _check_finite("alpha", alpha)
    beta = _check_finite("beta", beta)
    k = _check_finite("k", k)
    if alpha < 0:
        raise ParameterError(f"alpha must be >= 0, not {alpha}")
    if k < 0:
        raise ParameterError(f"k must be >= 0, not {k}")
    if size % 2 == 0 and rule.even_window is None:
        if conv.size_is_radius:
            raise ParameterError(
                f"{conv.title} takes depth_radius r and always uses an odd window 2r+1; "
                f"size {size} is even"
            )
        raise ParameterError(f"{conv.title} rejects even window sizes (size={size})")
    limits = conv.limits
    if "size_max" in limits and size > limits["size_max"]:
        raise ParameterError(f"{conv.title} needs size <= {int(limits['size_max'])}, not {size}")
    if "beta_min" in limits and beta < limits["beta_min"]:
        raise ParameterError(f"{conv.title} needs beta >= {limits['beta_min']}, not {beta}")
    if "k_min" in limits and k < limits["k_min"]:
        raise ParameterError(f"{conv.title} needs k >= {limits['k_min']}, not {k}")
    if limits.get("alpha_positive") and alpha <= 0:
        raise ParameterError(f"{conv.title} needs alpha > 0, not {alpha}")
    if limits.get("beta_positive") and beta <= 0:
        raise ParameterError(f"{conv.title} needs beta > 0, not {beta}")
    lo, hi = WINDOW_RULES[rule.even_window or "extra-before"](size)
    alpha_eff = alpha / float(size) ** rule.alpha_power
    k_eff = k if rule.uses_k else 1.0
    return Resolved(lo=lo, hi=hi, alpha_eff=alpha_eff, k_eff=k_eff, beta=beta, size=size)


def window_text(conv: Convention, mode: str) -> str:
    """Human description of the window placement (for ``lrn conventions``)."""
    rule = conv.rule(mode)
    odd = "[c-(n-1)/2, c+(n-1)/2]"
    if conv.size_is_radius:
        return "[c-r, c+r], n = 2r+1"
    even = WINDOW_RULE_TEXT[rule.even_window] if rule.even_window else "rejected"
    return f"odd n: {odd}; even n: {even}"


def alpha_text(rule: ModeRule, mode: str) -> str:
    """Human description of the alpha divisor."""
    return {0: "alpha", 1: "alpha/n", 2: "alpha/n²"}[rule.alpha_power]


@dataclass(frozen=True)
class Translation:
    """The parameters that make ``target`` compute what ``source`` computes."""

    source: str
    target: str
    mode: str
    params: dict[str, float | int]
    """Keyed by the target framework's own parameter names."""
    notes: tuple[str, ...] = ()


class NoExactTranslation(ParameterError):
    """No parameters of the target framework reproduce the source exactly."""


def translate(
    source: str | Convention,
    target: str | Convention,
    *,
    mode: str = "across",
    size: int,
    alpha: float,
    beta: float,
    k: float,
) -> Translation:
    """Find ``target`` parameters that compute exactly what ``source`` computes.

    ``size`` is the source's window width ``n`` (for TensorFlow pass ``2r+1``).  The window
    offsets, ``a'`` and the effective ``k`` must all match; when they cannot, raise
    :class:`NoExactTranslation` saying why.

    Examples
    --------
    >>> from lrn_cli import translate
    >>> t = translate("tensorflow", "caffe", size=5, alpha=2e-5, beta=0.75, k=1.0)
    >>> t.params
    {'local_size': 5, 'alpha': 0.0001, 'beta': 0.75, 'k': 1.0}
    >>> t.notes[0][:42]
    'layout: TensorFlow tf.nn.local_response_no'
    """
    src = get_convention(source)
    want = resolve(src, mode, size, alpha, beta, k)
    found = express(target, mode, want.lo, want.hi, want.alpha_eff, want.k_eff, want.beta,
                    what=src.title)
    notes = list(found.notes)
    dst = get_convention(target)
    if src.channel_last != dst.channel_last:
        where = {True: "the last axis (NHWC)", False: "axis 1 (NCHW)"}
        notes.append(
            f"layout: {src.title} normalizes {where[src.channel_last]}; {dst.title} normalizes "
            f"{where[dst.channel_last]}: transpose the tensor"
        )
    return Translation(src.name, dst.name, mode, found.params, tuple(notes))


def express(
    target: str | Convention,
    mode: str,
    lo: int,
    hi: int,
    alpha_eff: float,
    k_eff: float,
    beta: float,
    *,
    axis_length: int | None = None,
    what: str = "this LRN",
) -> Translation:
    """Parameters of ``target`` that compute the window ``[c-lo, c+hi]`` with ``a'``, ``k'``
    and ``beta`` exactly (the inverse of :func:`resolve`).

    ``axis_length``: the length of the summed axis, when known; offsets beyond it reach
    nothing, so a window that differs only there is the same LRN.  ``alpha`` is chosen so
    that ``target`` divides it back to ``alpha_eff`` bit for bit where a double allows it;
    otherwise a note says how many ulps it is off.  Raises :class:`NoExactTranslation`
    saying why when no parameters do it.
    """
    dst = get_convention(target)
    try:
        rule = dst.rule(mode)
    except ParameterError as exc:
        raise NoExactTranslation(str(exc)) from None
    taps = lo + hi + 1

    def window(n: int) -> tuple[int, int]:
        return WINDOW_RULES[rule.even_window or "extra-before"](n)

    def clip(w: tuple[int, int]) -> tuple[int, int]:
        if axis_length is None:
            return w
        return (min(w[0], axis_length - 1), min(w[1], axis_length - 1))

    allowed = [n for n in (taps, taps + 1, taps - 1)
               if n >= 1 and (n % 2 == 1 or rule.even_window is not None)]
    candidates = [n for n in allowed if window(n) == (lo, hi)]
    if not candidates and axis_length is not None:
        candidates = [n for n in range(1, 2 * max(axis_length, taps) + 2)
                      if (n % 2 == 1 or rule.even_window is not None)
                      and clip(window(n)) == clip((lo, hi))]
    if not candidates:
        even_note = "rejects even sizes" if rule.even_window is None else (
            f"places even windows as {WINDOW_RULE_TEXT[rule.even_window]}"
        )
        raise NoExactTranslation(
            f"{what} sums [c-{lo}, c+{hi}] ({taps} taps); "
            f"{dst.title} has no size giving that window (it {even_note})"
        )
    n = candidates[0]
    notes: list[str] = []
    if rule.uses_k:
        k_out = k_eff
    elif k_eff != 1.0:
        raise NoExactTranslation(
            f"{dst.title} ignores k in {mode} mode (always 1) but {what} computes "
            f"with k={k_eff:g}"
        )
    else:
        k_out = 1.0
        notes.append(f"{dst.title} ignores k in {mode} mode; it is 1, as required")
    alpha_out, ulps = _alpha_reading_back(alpha_eff, n, rule.alpha_power)
    if ulps:
        notes.append(
            f"alpha={alpha_out!r} reads back as a'={alpha_out / float(n) ** rule.alpha_power!r}, "
            f"{ulps} ulp from {alpha_eff!r}: no double does better"
        )
    size_out: int = radius_from_size(n) if dst.size_is_radius else n
    params = {
        dst.param_names["size"]: size_out,
        dst.param_names["alpha"]: alpha_out,
        dst.param_names["beta"]: beta,
        dst.param_names["k"]: k_out,
    }
    try:
        resolve(dst, mode, n, alpha_out, beta, k_out)
    except ParameterError as exc:
        raise NoExactTranslation(
            f"the exact parameters break {dst.title}'s limits: {exc}"
        ) from None
    return Translation("", dst.name, mode, params, tuple(notes))


def _alpha_reading_back(alpha_eff: float, n: int, power: int) -> tuple[float, int]:
    """The ``alpha`` whose ``alpha / n**power`` is ``alpha_eff`` (or nearest), and the ulps
    by which it misses (0 when exact)."""
    divisor = float(n) ** power
    guess = alpha_eff * divisor
    best, best_err = guess, math.inf
    for step in (0, 1, -1, 2, -2, 3, -3, 4, -4):  # the nearest doubles, closest first
        cand = guess
        for _ in range(abs(step)):
            cand = math.nextafter(cand, math.inf if step > 0 else -math.inf)
        err = abs(cand / divisor - alpha_eff)
        if err == 0:
            return cand, 0
        if err < best_err:
            best, best_err = cand, err
    return best, max(1, round(best_err / math.ulp(alpha_eff)))
