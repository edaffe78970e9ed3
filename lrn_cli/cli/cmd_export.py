"""``lrn export``: write the exact LRN layer as an ONNX model, a PyTorch module or a
TensorFlow function."""

from __future__ import annotations

import sys

import click

from lrn_cli.cli.options import lrn_params, renamed, settings_from

_PARAM_OPTIONS = ("mode", "size", "depth_radius", "alpha", "beta", "k", "convention",
                  "convention_defaults")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("target", type=click.Choice(["onnx", "pytorch", "tensorflow"],
                                            case_sensitive=False))
@lrn_params
@click.option("--layout", type=click.Choice(["NCHW", "NHWC"], case_sensitive=False),
              default=None,
              help="Layout of the 4-D tensors the layer takes.  [default: NCHW for onnx and "
              "pytorch, NHWC for tensorflow]")
@click.option("--from-model", "from_model", default=None, metavar="MODEL",
              help="Take the semantics of an LRN layer of this model file (what `lrn inspect` "
              "reads) instead of parameters.")
@click.option("--layer", default=None, metavar="NAME",
              help="With --from-model: the layer's node name or output tensor name (may be "
              "left out when the model has one LRN).")
@click.option("--native", is_flag=True,
              help="onnx: one LRN node, where it computes exactly this layer and onnxruntime "
              "runs it (odd centred window, NCHW, across); otherwise refused, saying why.")
@click.option("--channel-count", "channels", type=click.IntRange(min=1), default=None,
              metavar="C", help="onnx: fix the channel dimension to C (default: symbolic, like "
              "batch and spatial sizes).")
@renamed("--channels", "--channel-count", "channels", type=click.IntRange(min=1))
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Where to write (.onnx or .py); '-' writes to stdout.")
@click.option("--overwrite", is_flag=True, help="Replace an existing FILE (never an input).")
@click.option("--check", is_flag=True,
              help="Run the written file in its framework (onnxruntime, torch, tensorflow) on "
              "float32 data spanning 1e-4..1e4 and compare with lrn; exit 1 above 1e-5.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON document describing what was written on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No notes; errors are still printed.")
@click.option("--traceback", is_flag=True, help="Show Python tracebacks of errors.")
@click.pass_context
def export(ctx, target, mode, size, depth_radius, alpha, beta, k, convention,
           convention_defaults, layout, from_model, layer, native, channels, output, overwrite,
           check, as_json, quiet, traceback):
    """Write the exact LRN layer for TARGET: onnx, pytorch or tensorflow.

    The layer computes what `lrn apply` computes with the same parameters (any convention,
    mode, even size, window placement, k ignored ...), built from the target's standard ops,
    for layers the framework's own LRN cannot express.

    \b
    onnx        an .onnx model, opset 13, float32, symbolic batch and spatial sizes:
                Mul, Transpose, Pad, AveragePool, Add, Pow, Div (or one LRN with --native)
    pytorch     a .py file needing only torch: class LRN(torch.nn.Module), exact in
                float32 and float64, autograd gives the exact gradient
    tensorflow  a .py file needing only tensorflow: def lrn(x), usable in tf.function

    \b
    Examples:
      lrn export onnx --convention onnx -n 4 -o lrn_onnx4.onnx
      lrn export pytorch --convention caffe --mode within -n 3 --alpha 5e-5 -o caffe_within.py
      lrn export tensorflow --convention pytorch -n 4 -o lrn_torch4.py
      lrn export onnx --from-model model.onnx --layer norm1 -o norm1.onnx --check
    """
    from lrn_cli.cli.output import Ui, json_text
    from lrn_cli.errors import LrnError, OutputError, ParameterError
    from lrn_cli.porting import export as ex

    ui = Ui(quiet=quiet, traceback=traceback)
    target = target.lower()
    to_stdout = output == "-"
    if to_stdout and (as_json or check):
        raise click.UsageError("-o - writes the file to stdout: no --json or --check with it",
                               ctx)
    if native and target != "onnx":
        raise click.UsageError("--native is for onnx (PyTorch and TensorFlow have no LRN "
                               "that the exported layer could be)", ctx)
    if channels is not None and target != "onnx":
        raise click.UsageError("--channel-count is for onnx (the .py layers take any channel "
                               "count)", ctx)
    if layer is not None and from_model is None:
        raise click.UsageError("--layer needs --from-model", ctx)
    protect: list[str] = []
    if from_model is not None:
        given = [name for name in _PARAM_OPTIONS
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            names = ", ".join("--" + n.replace("_", "-") for n in given)
            raise click.UsageError(f"--from-model takes the layer's parameters from the "
                                   f"model: leave out {names}", ctx)
        sem, origin, names = _from_model(ctx, ui, from_model, layer)
        protect.append(from_model)
        _note_axes(ui, sem, layout or ex.DEFAULT_LAYOUT[target])
    else:
        settings = settings_from(ctx, mode=mode, size=size, depth_radius=depth_radius,
                                 alpha=alpha, beta=beta, k=k, convention=convention,
                                 convention_defaults=convention_defaults)
        try:
            sem, origin = ex.semantics_from(settings.convention, settings.mode, settings.size,
                                            settings.alpha, settings.beta, settings.k)
        except ParameterError as exc:
            raise click.UsageError(str(exc), ctx) from None
        names = ("x", "y")
    try:
        result = ex.export(target, sem, layout=layout, path=None if to_stdout else output,
                           native=native, overwrite=overwrite, channels=channels,
                           origin=origin, input_name=names[0], output_name=names[1],
                           protect=protect)
    except ImportError as exc:
        ui.error(f"lrn export {target} needs the {exc.name or 'onnx'} package "
                 "(pip install 'lrn-cli[onnx]')")
        ui.print_traceback(exc)
        ctx.exit(1)
    except ex.NativeRefused as exc:
        raise click.UsageError(f"--native refused: {exc}", ctx) from None
    except ParameterError as exc:
        raise click.UsageError(str(exc), ctx) from None
    except OutputError as exc:
        hint = "" if overwrite or "already exists" not in exc.reason else " (--overwrite)"
        ui.error(f"{exc}{hint}")
        ui.print_traceback(exc)
        ctx.exit(1)
    if to_stdout:
        from lrn_cli.cli.output import broken_pipe_guard

        with broken_pipe_guard():
            sys.stdout.flush()
            sys.stdout.buffer.write(result.content)
            sys.stdout.buffer.flush()
        ui.note(f"{target} ({result.layout}): {result.semantics.describe()}")
        ctx.exit(0)
    if native:
        ui.note("onnxruntime's own LRN kernel keeps a float32 running sum: on values spanning "
                "many decades it is off by up to ~2e-4 relative (the standard-ops export is not)")
    want = ex.SUFFIX[target]
    if not output.lower().endswith(want):
        ui.note(f"{output} does not end in {want}")
    ui.info(f"wrote {output}: {target} ({result.layout}), {result.semantics.describe()}")
    doc = result.as_dict()
    same = ex.own_op(target, result.semantics, result.layout)
    doc["own_op"] = same
    if same is not None and not native:
        how = ("--native writes it" if target == "onnx"
               else "the export is exact in float64 too")
        ui.note(f"{same['call']} computes this layer too ({how})")
    code = 0
    if check:
        try:
            report = ex.verify(result)
        except ImportError as exc:
            ui.error(f"--check needs {exc.name or 'the framework'} installed")
            ui.print_traceback(exc)
            ctx.exit(1)
        except (LrnError, ValueError, RuntimeError) as exc:
            ui.error(f"--check: {output} did not run: {exc}")
            ui.print_traceback(exc)
            ctx.exit(1)
        runtime = {"onnx": "onnxruntime", "pytorch": "torch",
                   "tensorflow": "tensorflow"}[target]
        shape = "x".join(map(str, report["shape"]))
        verdict = "ok" if report["ok"] else "TOO LARGE"
        line = (f"checked in {runtime}: max relative error {report['max_rel_error']:.3g} "
                f"(tolerance {report['tolerance']:g}) on {shape} float32 data spanning "
                f"1e-4..1e4: {verdict}")
        if report["ok"]:
            ui.info(line)
        else:
            ui.error(line)
            code = 1
        doc["check"] = dict(report, runtime=runtime)
    if as_json:
        from lrn_cli.schema import document

        ui.write_data(json_text(document(**doc)))
    sys.stdout.flush()
    ctx.exit(code)


def _note_axes(ui, sem, layout: str) -> None:
    """Say so when the model's layer works on other axes than the exported layout's."""
    layout = layout.upper()
    if sem.mode == "across" and sem.channel_axis is not None:
        model_axis = sem.channel_axis % 4
        if model_axis != (1 if layout == "NCHW" else 3):
            other = {1: "NCHW", 3: "NHWC"}.get(model_axis, f"channels on axis {model_axis}")
            ui.note(f"the model's layer normalizes axis {sem.channel_axis} ({other}); the "
                    f"export takes {layout} tensors (--layout to change)")
    elif sem.mode == "within" and sem.spatial_axes is not None:
        box = tuple(a % 4 for a in sem.spatial_axes)
        if box != ((2, 3) if layout == "NCHW" else (1, 2)):
            ui.note(f"the model's layer sums a box on axes {list(sem.spatial_axes)}; the "
                    f"export takes {layout} tensors (--layout to change)")


def _from_model(ctx, ui, path: str, layer: str | None):
    """``(semantics, origin, (input_name, output_name))`` of one LRN layer of ``path``."""
    from lrn_cli.errors import LrnError

    try:
        from lrn_cli.porting.inspect import inspect_model
    except ImportError as exc:
        ui.error(f"--from-model needs lrn inspect, which this build does not have ({exc})")
        ctx.exit(1)
    try:
        report = inspect_model(path)
    except LrnError as exc:
        ui.error(str(exc))
        ui.print_traceback(exc)
        ctx.exit(1)
    except OSError as exc:
        from lrn_cli.atomic import os_error_reason

        ui.error(f"{path}: {os_error_reason(exc)}")
        ctx.exit(1)
    layers = list(getattr(report, "layers", []) or [])
    if not layers:
        ui.error(f"{path}: no LRN layer found")
        ctx.exit(1)

    def label(item) -> str:
        outs = list(getattr(item, "outputs", []) or [])
        return str(item.name) + (f" (output {outs[0]})" if outs and outs[0] != item.name
                                 else "")

    if layer is None:
        if len(layers) > 1:
            listed = ", ".join(label(item) for item in layers)
            raise click.UsageError(f"{path} has {len(layers)} LRN layers: pick one with "
                                   f"--layer ({listed})", ctx)
        chosen = layers[0]
    else:
        hits = [item for item in layers if item.name == layer]
        if not hits:
            hits = [item for item in layers if layer in list(item.outputs or [])]
        if not hits:
            listed = ", ".join(label(item) for item in layers)
            raise click.UsageError(f"{path} has no LRN layer named {layer!r} (node name or "
                                   f"output tensor): it has {listed}", ctx)
        if len(hits) > 1:  # a train_val prototxt: one layer per phase under one name
            lines = ", ".join(str(item.line) for item in hits
                              if getattr(item, "line", None) is not None)
            raise click.UsageError(
                f"{path}: {len(hits)} LRN layers match --layer {layer!r}"
                + (f" (lines {lines})" if lines else "")
                + ": the name does not say which one; keep one of them in the file", ctx)
        chosen = hits[0]
    for note in [*(getattr(report, "notes", None) or []), *(getattr(chosen, "notes", None) or [])]:
        ui.note(f"{path}: {note}" if not str(note).startswith(str(path)) else str(note))
    sem = getattr(chosen, "semantics", None)
    if sem is None:
        reason = getattr(chosen, "reason", None) or "its semantics could not be read"
        ui.error(f"{path}: layer {chosen.name}: {reason}")
        ctx.exit(1)
    params = getattr(chosen, "params", None)
    origin = {"file": str(path), "layer": str(chosen.name),
              "convention": getattr(chosen, "convention", None),
              "params": dict(params) if isinstance(params, dict) else {}}
    inputs = [str(t) for t in (getattr(chosen, "inputs", None) or [])]
    outputs = [str(t) for t in (getattr(chosen, "outputs", None) or [])]
    names = (inputs[0] if inputs else "x", outputs[0] if outputs else "y")
    if names[0] == names[1]:
        names = ("x", "y")
    return sem, origin, names
