"""What converters and runtimes do to an LRN layer: a data table, each row citing the source
file or issue it was read from (``shared/converter-hazards.md``, checked against the sources).

A row is ``{"target", "text", "cite"}`` plus a predicate: only rows whose predicate holds for
a layer (its format, its parameters as written, its semantics) are listed for it.  Converter
rows also say which formats they convert between and which semantics fields they change, so
that ``lrn inspect --against`` can name the converter behind a difference.

Rows read from source but never run say so in their text ("read from source").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrn_cli.errors import ParameterError

if TYPE_CHECKING:
    from lrn_cli.porting.models import RawLayer


@dataclass(frozen=True)
class Ctx:
    """What a predicate sees: the file's format and the layer as read."""

    format: str
    layer: RawLayer

    @property
    def sem(self):
        return self.layer.semantics

    @property
    def n(self) -> int:
        """The window width as the file writes it."""
        return self.layer.size

    @property
    def taps(self) -> int:
        return self.sem.taps

    @property
    def k(self) -> float:
        return self.sem.k_eff

    @property
    def across(self) -> bool:
        return self.sem.mode == "across"

    @property
    def within(self) -> bool:
        return self.sem.mode == "within"

    @property
    def radius(self) -> int:
        return (self.taps - 1) // 2

    def defaulted(self, *names: str) -> list[str]:
        return [n for n in names if n in self.layer.defaulted]


@dataclass(frozen=True)
class Hazard:
    """One row of the table."""

    target: str
    text: str | Callable[[Ctx], str]
    cite: str
    applies: Callable[[Ctx], bool]
    converts: tuple[str, str | None] | None = None
    """``(from format, to format)`` for a converter (``None``: a format ``inspect`` does not
    read)."""
    changes: tuple[str, ...] = ()
    """The semantics fields the converter changes when the row applies."""

    def render(self, ctx: Ctx) -> dict[str, str]:
        text = self.text(ctx) if callable(self.text) else self.text
        return {"target": self.target, "text": text, "cite": self.cite}


def _g(x: float) -> str:
    return f"{x:.6g}"


ORT_LRN = "microsoft/onnxruntime onnxruntime/core/providers/cpu/nn/lrn.h, lrn.cc"
TRT = ("NVIDIA TensorRT NvInfer.h (INetworkDefinition::addLRN, ILRNLayer limits); "
       "onnx/onnx-tensorrt builtin_op_importers.cpp (LRN -> addLRN(size, alpha, beta, bias))")
NCNN_CPU = "Tencent/ncnn src/layer/lrn.cpp"
NCNN_VK = ("Tencent/ncnn src/layer/vulkan/lrn_vulkan.cpp; src/layer/vulkan/shader/"
           "lrn_square_pad.comp, lrn_norm.comp, lrn_*_pack4.comp")

HAZARDS: tuple[Hazard, ...] = (
    # -- runtimes --------------------------------------------------------------------------
    Hazard("onnxruntime",
           lambda c: f"refuses an even size ({c.taps} taps): ORT_ENFORCE(size_ % 2 == 1) in "
                     "the CPU kernel's constructor, so the session does not load",
           ORT_LRN, lambda c: c.across and c.taps % 2 == 0),
    Hazard("onnxruntime", "refuses alpha <= 0 and beta <= 0 (ORT_ENFORCE at session creation)",
           ORT_LRN, lambda c: c.sem.alpha_eff <= 0 or c.sem.beta <= 0),
    Hazard("onnxruntime", "has no within-channel LRN (the ONNX operator sums channels only)",
           "onnx/onnx onnx/defs/nn/defs.cc (LRN)", lambda c: c.within),
    Hazard("onnxruntime",
           lambda c: f"the CPU LRN kernel is registered for float32 only: this {c.layer.dtype} "
                     "input has no kernel",
           ORT_LRN, lambda c: c.layer.dtype not in (None, "float32")),
    Hazard("onnxruntime",
           lambda c: f"the CPU kernel takes 4-D input (N, C, H, W); this input is "
                     f"{c.layer.ndim}-D",
           ORT_LRN, lambda c: c.across and c.layer.ndim not in (None, 4)),
    Hazard("onnxruntime",
           "sums squares in float32 with a running window (add the entering channel, subtract "
           "the leaving one): on mixed magnitudes up to 1.8e-4 relative error against a "
           "float64 reference (measured for this project)",
           ORT_LRN, lambda c: c.across and c.taps > 1),
    Hazard("TensorRT",
           lambda c: f"ILRNLayer needs an odd window in [1, 15]; this one has {c.taps} taps: "
                     "the engine does not build",
           TRT, lambda c: c.across and (c.taps % 2 == 0 or c.taps > 15)),
    Hazard("TensorRT",
           lambda c: f"ILRNLayer needs beta in [0.01, 1e5]; this one is {_g(c.sem.beta)}",
           TRT, lambda c: c.across and not 0.01 <= c.sem.beta <= 1e5),
    Hazard("TensorRT",
           lambda c: f"ILRNLayer needs k in [1e-5, 1e10]; this one is {_g(c.k)}",
           TRT, lambda c: c.across and not 1e-5 <= c.k <= 1e10),
    Hazard("TensorRT",
           lambda c: f"on DLA the window must be 3, 5, 7 or 9 ({c.taps} taps): the layer "
                     "falls back to the GPU",
           TRT, lambda c: c.across and c.taps % 2 == 1 and c.taps <= 15
           and c.taps not in (3, 5, 7, 9)),
    Hazard("TensorRT", "has no within-channel LRN (ILRNLayer is cross-channel): the layer "
                       "cannot be imported", TRT, lambda c: c.within),
    Hazard("OpenVINO",
           lambda c: f"the ONNX frontend passes size {c.n} unchanged; OpenVINO's LRN then sums "
                     f"[c-(n-1)/2, c+(n-1)/2] ({c.n - 1} taps, still alpha/n) in its reference "
                     "implementation and its CPU plugin (oneDNN), where ONNX means "
                     f"[c-n/2+1, c+n/2] ({c.n} taps); its LRN-1 spec text says [c-n/2, c+n/2] "
                     f"({c.n + 1} taps). Checked against the source, not run",
           "openvinotoolkit/openvino src/frontends/onnx/frontend/src/op/lrn.cpp; "
           "src/core/reference/include/openvino/reference/lrn.hpp; "
           "src/plugins/intel_cpu/src/nodes/lrn.cpp; docs/.../normalization/lrn-1.rst",
           lambda c: c.format == "onnx" and c.n % 2 == 0),
    Hazard("OpenVINO",
           lambda c: f"through a TensorFlow graph (depth_radius r = {c.radius}, odd) the "
                     f"TensorFlow frontend builds size 2(r-1)+1 = {c.taps - 2} with alpha*size: "
                     "two taps narrower, a' unchanged (even r is exact)",
           "openvinotoolkit/openvino src/frontends/tensorflow_common/src/op/lrn.cpp "
           "(translate_lrn_op; PR #15145, #15628)",
           lambda c: c.across and c.taps % 2 == 1 and c.radius % 2 == 1),
    Hazard("OpenVINO",
           lambda c: f"the CPU plugin hands bias to oneDNN through an int (LrnKey::k, from "
                     f"which prepareParams builds the primitive; Lrn::k is an int too): k = "
                     f"{_g(c.k)} runs as {int(c.k)} (read from source, not run)",
           "openvinotoolkit/openvino src/plugins/intel_cpu/src/nodes/lrn.h, lrn.cpp",
           lambda c: c.k != int(c.k)),
    Hazard("OpenVINO",
           lambda c: f"the Model Optimizer's Caffe front end hard-coded k = 1 before PR #716: "
                     f"IRs made by older versions from this prototxt run k = 1, not {_g(c.k)}",
           "openvinotoolkit/openvino PR #716",
           lambda c: c.format == "caffe" and c.across and c.k != 1.0,
           converts=("caffe", None), changes=("k_eff",)),
    Hazard("OpenVINO",
           lambda c: f"the Model Optimizer's Caffe front end passes k: "
                     f"{_g(float(c.layer.params.get('k', 1.0)))} on as bias for WITHIN_CHANNEL "
                     "too (region 'same'), where Caffe ignores k: the IR runs k = "
                     f"{_g(float(c.layer.params.get('k', 1.0)))}, not 1 (read from source, "
                     "not run)",
           "openvinotoolkit/openvino tools/mo/openvino/tools/mo/front/caffe/lrn_ext.py",
           lambda c: c.format == "caffe" and c.within
           and float(c.layer.params.get("k", 1.0)) != 1.0,
           converts=("caffe", None), changes=("k_eff",)),
    Hazard("CoreML",
           "the NeuralNetwork LRN layer is across-channel only; coremltools' Caffe converter "
           "refused WITHIN_CHANNEL (that converter is gone since coremltools 5)",
           "apple/coremltools caffeconverter/Caffe/LRN.cpp", lambda c: c.within),
    Hazard("CoreML", "coremltools' Caffe converter refused k <= 0",
           "apple/coremltools caffeconverter/Caffe/LRN.cpp", lambda c: c.k <= 0),
    Hazard("ncnn",
           lambda c: f"the Vulkan path sums {c.n} taps [c-n/2, c+n/2-1] (lrn_square_pad pads "
                     "n/2 before and n-n/2-1 after, lrn_norm sums local_size), the CPU path "
                     f"{c.n + 1} [c-n/2, c+n/2]: GPU and CPU results differ for even "
                     "local_size",
           f"{NCNN_VK}; {NCNN_CPU}",
           lambda c: c.format == "ncnn" and c.across and c.n % 2 == 0
           and "legacy" not in c.layer.flags),
    Hazard("ncnn",
           lambda c: f"ncnn revisions from before the 4=bias parameter compute 1 + a'S "
                     f"(pow(1.f + alpha_div_size * ssptr[i], -beta)): k = {_g(c.k)} runs as 1 "
                     "there, and a .param carries no version",
           "Tencent/ncnn src/layer/lrn.cpp (revision 15ad4dfb, before bias)",
           lambda c: c.k != 1.0 and "legacy" not in c.layer.flags),
    Hazard("ncnn",
           "the x86 (AVX) and ARM (NEON) paths raise to -beta with pow_ps (exp/log "
           "approximations of avx_mathfun.h / neon_mathfun.h), the generic and within paths "
           "with libm pow: results differ in the last bits between machines",
           "Tencent/ncnn src/layer/x86/lrn_x86.cpp; src/layer/arm/lrn_arm.cpp",
           lambda c: c.across and "legacy" not in c.layer.flags),
    Hazard("ncnn",
           "on Vulkan, fp16 storage rounds the input and output to half precision, and with "
           "fp16 arithmetic the pack-1 shader sums the squares in half precision (afp in "
           "lrn_norm.comp): about 3 significant digits (half's unit roundoff is 4.9e-4)",
           NCNN_VK, lambda c: "legacy" not in c.layer.flags),
    Hazard("ncnn",
           "a .param without the 7767517 line is a 2017 file: current ncnn cannot load it; the "
           "2017 loader summed [c-n/2, c+n-1] across, divided alpha by n in both modes and had "
           "no bias (that is what is shown)",
           "Tencent/ncnn src/layer/lrn.cpp @b7db8be4 (load_param with fscanf \"%d %d %f %f\")",
           lambda c: "legacy" in c.layer.flags),
    Hazard("OpenCV",
           lambda c: f"the Caffe importer reads lrn_param 'bias', not Caffe's 'k': k = {_g(c.k)} "
                     "runs as 1, in both modes",
           "opencv/opencv modules/dnn/src/caffe/caffe_importer.cpp; "
           "modules/dnn/src/layers/lrn_layer.cpp",
           lambda c: c.format == "caffe" and c.k != 1.0),
    Hazard("OpenCV", lambda c: f"refuses even sizes ({c.taps} taps): \"only positive odd "
                               "values\"",
           "opencv/opencv modules/dnn/src/layers/lrn_layer.cpp",
           lambda c: c.taps % 2 == 0),
    Hazard("OpenCV", "OpenCV 5 has no Caffe importer (cv2.dnn.readNetFromCaffe is gone): "
                     "load a conversion of this model instead",
           "opencv/opencv 5.x modules/dnn (caffe importer removed)",
           lambda c: c.format == "caffe"),
    Hazard("PyTorch", "nn.LocalResponseNorm is across-channel only (within-channel was "
                      "proposed in PR #4667 and never added)",
           "pytorch/pytorch PR #4667", lambda c: c.within),
    Hazard("PyTorch", "F.local_response_norm raises on float16 input on CPU",
           "pytorch/pytorch#171948", lambda c: c.layer.dtype == "float16"),
    Hazard("TensorFlow", "tf.nn.local_response_normalization is across-channel only (last "
                         "axis)",
           "tensorflow/tensorflow tensorflow/core/kernels/lrn_op.cc", lambda c: c.within),
    Hazard("TensorFlow",
           lambda c: f"on GPU (cuDNN) TensorFlow allows depth_radius <= 7; r = {c.radius} runs "
                     "on the CPU only",
           "tensorflow/tensorflow tensorflow/core/kernels/lrn_op.cc (OP_REQUIRES on GPU)",
           lambda c: c.across and c.taps % 2 == 1 and c.radius > 7),
    Hazard("MXNet", "rejects even sizes (CHECK_EQ(nsize % 2, 1))",
           "apache/mxnet#11281; src/operator/nn/lrn-inl.h",
           lambda c: c.across and c.taps % 2 == 0),
    Hazard("MXNet", "has no within-channel LRN", "apache/mxnet#4317", lambda c: c.within),
    Hazard("cuDNN",
           lambda c: f"cudnnLRNCrossChannelForward needs lrnN in [1, 16], lrnBeta >= 0.01 and "
                     f"lrnK >= 1e-5 (here {c.taps}, {_g(c.sem.beta)}, {_g(c.k)}); Caffe falls "
                     "back to its own engine when local_size > 16",
           "cudnn.h (cudnnSetLRNDescriptor); BVLC/caffe src/caffe/layer_factory.cpp",
           lambda c: c.across and (c.taps > 16 or c.sem.beta < 0.01 or c.k < 1e-5)),
    Hazard("Caffe",
           "engine CUDNN (or DEFAULT in a Caffe built with cuDNN) sends WITHIN_CHANNEL to "
           "CuDNNLCNLayer (cudnnDivisiveNormalizationForward, k passed): cuDNN's divisive "
           "normalization is NOT verified to match Caffe's own WITHIN_CHANNEL",
           "BVLC/caffe src/caffe/layer_factory.cpp (GetLRNLayer); "
           "src/caffe/layers/cudnn_lcn_layer.cu",
           lambda c: "cudnn-lcn" in c.layer.flags),
    Hazard("Caffe",
           "k is absent, so Caffe runs k = 1 (the caffe.proto default), not the AlexNet "
           "paper's 2",
           "BVLC/caffe#1453; src/caffe/proto/caffe.proto (LRNParameter)",
           lambda c: c.format == "caffe" and c.across and bool(c.defaulted("k"))),
    Hazard("onnx.reference",
           "onnx's reference implementation (1.23) loops over the batch axis instead of the "
           "channels: right only when N == C (fixed upstream by PR #8331)",
           "onnx/onnx#7805", lambda c: c.across),
    # -- converters ------------------------------------------------------------------------
    Hazard("caffe2ncnn",
           lambda c: f"writes 0=region 1=local_size 2=alpha 3=beta and never 4=bias: k = "
                     f"{_g(c.k)} becomes 1",
           "Tencent/ncnn tools/caffe/caffe2ncnn.cpp",
           lambda c: c.format == "caffe" and c.across and c.k != 1.0,
           converts=("caffe", "ncnn"), changes=("k_eff",)),
    Hazard("onnx2ncnn",
           lambda c: "reads an absent alpha as 1 and an absent beta as 0.5 (its "
                     "get_node_attr_f defaults), not ONNX's 1e-4 and 0.75: this node leaves "
                     f"{' and '.join(c.defaulted('alpha', 'beta'))} to the default",
           "Tencent/ncnn tools/onnx/onnx2ncnn.cpp",
           lambda c: c.format == "onnx" and bool(c.defaulted("alpha", "beta")),
           converts=("onnx", "ncnn"), changes=("alpha_eff", "beta")),
    Hazard("onnx2ncnn",
           lambda c: f"passes size {c.n} as local_size: ncnn's CPU sums {c.n + 1} taps "
                     f"[c-n/2, c+n/2] (its Vulkan path {c.n}, extra tap before), ONNX {c.n} "
                     "with the extra tap after",
           f"Tencent/ncnn tools/onnx/onnx2ncnn.cpp; {NCNN_CPU}",
           lambda c: c.format == "onnx" and c.n % 2 == 0,
           converts=("onnx", "ncnn"), changes=("window", "taps")),
    Hazard("onnx2ncnn",
           lambda c: f"older revisions print alpha with %f (6 decimals): "
                     f"{c.layer.params.get('alpha')!r} is written as "
                     f"{float(c.layer.params.get('alpha', 0)):.6f}",
           "Tencent/ncnn tools/onnx/onnx2ncnn.cpp @044cf76 (fprintf \" 2=%f\")",
           lambda c: c.format == "onnx" and round(float(c.layer.params.get("alpha", 0)), 6)
           != float(c.layer.params.get("alpha", 0)),
           converts=("onnx", "ncnn"), changes=("alpha_eff",)),
    Hazard("MNN",
           lambda c: f"the Caffe converter copies alpha, beta, localSize and regionType, not "
                     f"k: k = {_g(c.k)} becomes 1",
           "alibaba/MNN tools/converter/source/caffe/LRN.cpp",
           lambda c: c.format == "caffe" and c.across and c.k != 1.0,
           converts=("caffe", None), changes=("k_eff",)),
    Hazard("caffe-tensorflow",
           "map_lrn emits lrn(local_size/2, alpha/local_size, beta): k is dropped (bias 1) and "
           "norm_region is ignored (WITHIN_CHANNEL becomes across-channel)",
           "ethereon/caffe-tensorflow kaffe/tensorflow/transformer.py (map_lrn)",
           lambda c: c.format == "caffe" and (c.within or c.k != 1.0),
           converts=("caffe", None), changes=("k_eff", "mode")),
    Hazard("caffe2onnx",
           "bias is hard-coded 1.0 and norm_region is ignored: k is dropped and WITHIN_CHANNEL "
           "becomes across-channel",
           "htshinichi/caffe-onnx src/OPs/LRN.py; asiryan/caffe2onnx",
           lambda c: c.format == "caffe" and (c.within or c.k != 1.0),
           converts=("caffe", "onnx"), changes=("k_eff", "mode")),
    Hazard("X2Paddle",
           "caffe2fluid divides alpha by local_size; old revisions hard-code k = 1 and every "
           "revision ignores WITHIN_CHANNEL",
           "PaddlePaddle/X2Paddle x2paddle/op_mapper/caffe_op_mapper.py and "
           "op_mapper/dygraph/caffe2paddle/caffe_op_mapper.py (LRN; k 1.0 in old revisions, "
           "params.k later; norm_region never read)",
           lambda c: c.format == "caffe" and (c.within or c.k != 1.0),
           converts=("caffe", None), changes=("k_eff", "mode")),
    Hazard("onnx2caffe",
           lambda c: f"writes alpha, beta and local_size, not bias: k = {_g(c.k)} becomes 1",
           "onlyxool/x2caffe pto2caffe/onnx2caffe/op/lrn.py",
           lambda c: c.format == "onnx" and c.k != 1.0,
           converts=("onnx", "caffe"), changes=("k_eff",)),
    Hazard("onnx2caffe",
           lambda c: f"size {c.n} is even: the Caffe layer it writes is refused by Caffe",
           "onlyxool/x2caffe pto2caffe/onnx2caffe/op/lrn.py; BVLC/caffe lrn_layer.cpp",
           lambda c: c.format == "onnx" and c.n % 2 == 0),
    Hazard("onnx2torch",
           lambda c: f"nn.LocalResponseNorm(size={c.n}) puts the extra tap before c "
                     "([c-n/2, c+n/2-1]); ONNX puts it after",
           "ENOT-AutoDL/onnx2torch onnx2torch/node_converters/lrn.py; pytorch/pytorch#75722",
           lambda c: c.format == "onnx" and c.n % 2 == 0,
           converts=("onnx", None), changes=("window",)),
    Hazard("onnx-tensorflow",
           lambda c: f"depth_radius floor((n-1)/2) = {(c.n - 1) // 2}: {c.n - 1} taps, alpha "
                     f"still divided by {c.n}",
           "onnx/onnx-tensorflow onnx_tf/handlers/backend/lrn.py",
           lambda c: c.format == "onnx" and c.n % 2 == 0,
           converts=("onnx", None), changes=("window", "taps")),
    Hazard("onnx2tf",
           lambda c: f"depth_radius floor((n-1)/2) = {(c.n - 1) // 2}: {c.n - 1} taps, alpha "
                     f"still divided by {c.n}",
           "PINTO0309/onnx2tf onnx2tf/ops/LRN.py",
           lambda c: c.format == "onnx" and c.n % 2 == 0,
           converts=("onnx", None), changes=("window", "taps")),
    Hazard("tf2onnx",
           lambda c: f"size {c.n} is even, which tf2onnx never writes (it writes 2r+1): a "
                     "tf2onnx from before PR #602 wrote the radius r as size",
           "onnx/tensorflow-onnx#531 -> PR #602; tf2onnx/onnx_opset/math.py (class LRN)",
           lambda c: c.format == "onnx" and "producer:tf2onnx" in c.layer.flags
           and c.n % 2 == 0),
    Hazard("ONNX2TFLite",
           lambda c: f"one revision used radius size//2 with alpha not divided by size: a' "
                     f"{c.n}x too strong",
           "Pop-korn/ONNX2TFLite src/converter/builtin/CvtLRN.py @039f744",
           lambda c: c.format == "onnx" and c.n > 1,
           converts=("onnx", None), changes=("alpha_eff",)),
    Hazard("MMdnn", "the size parameter of LRN is handled inconsistently between MMdnn's "
                    "frontends (radius vs size, bias vs k)",
           "microsoft/MMdnn#805, #808", lambda c: c.across),
    Hazard("Caffe->PyTorch ports",
           "the 'LRN' module copied into many Caffe-to-PyTorch ports (AvgPool on x², "
           "div.mul(alpha).add(1.0).pow(beta)) hard-codes k = 1",
           "jiecaoyu/pytorch_imagenet networks/model_list/alexnet.py",
           lambda c: c.format == "caffe" and c.k != 1.0,
           converts=("caffe", None), changes=("k_eff",)),
)

TARGETS: tuple[str, ...] = tuple(dict.fromkeys(h.target for h in HAZARDS))
_ALIASES = {"trt": "tensorrt", "ort": "onnxruntime", "cv2": "opencv", "coremltools": "coreml",
            "torch": "pytorch", "tf": "tensorflow", "onnx-tf": "onnx-tensorflow",
            "caffe2fluid": "x2paddle", "x2caffe": "onnx2caffe"}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def resolve_targets(names: Iterable[str] | None) -> tuple[str, ...] | None:
    """Canonical target names for ``names`` (case-insensitive, a few aliases); ``None`` for
    all.  Raises :class:`ParameterError` naming the known targets for an unknown one."""
    if names is None:
        return None
    by_key = {_key(t): t for t in TARGETS}
    out = []
    for name in names:
        key = _key(name)
        key = _ALIASES.get(key, key)
        if key not in by_key:
            raise ParameterError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        out.append(by_key[key])
    return tuple(dict.fromkeys(out))


def hazards_for(fmt: str, layer: RawLayer,
                targets: Iterable[str] | None = None) -> list[dict[str, str]]:
    """The rows that apply to ``layer`` (from a ``fmt`` file), narrowed to ``targets``."""
    wanted = resolve_targets(targets)
    ctx = Ctx(fmt, layer)
    out = []
    for row in HAZARDS:
        if wanted is not None and row.target not in wanted:
            continue
        if _holds(row, ctx):
            out.append(row.render(ctx))
    return out


def _holds(row: Hazard, ctx: Ctx) -> bool:
    try:
        return bool(row.applies(ctx))
    except (ArithmeticError, ValueError, TypeError):  # an odd value no row was written for
        return False


def explaining(field: str, ref_fmt: str, cand_fmt: str,
               ref_layer: RawLayer) -> list[dict[str, str]]:
    """Converter rows that turn a ``ref_fmt`` layer into a ``cand_fmt`` one and change
    ``field``, and that apply to ``ref_layer``."""
    ctx = Ctx(ref_fmt, ref_layer)
    out = []
    for row in HAZARDS:
        if row.converts is None or field not in row.changes:
            continue
        src, dst = row.converts
        if src == ref_fmt and dst == cand_fmt and _holds(row, ctx):
            out.append(row.render(ctx))
    return out


def table() -> list[dict[str, Any]]:
    """The table as data (without predicates), for documentation."""
    return [{"target": h.target, "cite": h.cite, "converts": list(h.converts or ()) or None,
             "changes": list(h.changes)} for h in HAZARDS]
