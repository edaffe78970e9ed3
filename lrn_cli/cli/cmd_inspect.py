"""``lrn inspect``: read the LRN layers out of model files, say what they compute in every
framework's terms and what each known converter or runtime will do to them."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Only the hazards of this converter or runtime (repeatable; e.g. "
                   "TensorRT, OpenVINO, ncnn, onnxruntime, caffe2ncnn, onnx2torch).")
@click.option("--against", "against", metavar="CONVERTED", default=None,
              help="Compare the LRN layers of MODEL (the reference) with those of its "
                   "conversion CONVERTED; exit 1 when they differ.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No notes; errors are still printed.")
@click.option("--traceback", is_flag=True, help="Show Python tracebacks of errors.")
@click.pass_context
def inspect(ctx, models, targets, against, as_json, quiet, traceback):
    """Show the LRN layers of model files: what each computes, the parameters every other
    framework needs for it, and what each known converter or runtime will do to it.

    MODEL is an ONNX model (.onnx, needs the onnx extra), a Caffe .prototxt (current or V1
    format) or an ncnn .param, recognised from its content.  Binary weights (.caffemodel,
    ncnn .bin) are refused with the text file to give instead.  Exit 0 when every model was
    read (a model without LRN says so), 1 when one could not be (the others are still
    shown), 2 on a usage error.  With --against, exit 1 when the layers differ.

    \b
    Examples:
      lrn inspect bvlc_alexnet.onnx
      lrn inspect deploy.prototxt model.param --target ncnn --target TensorRT
      lrn inspect deploy.prototxt --against converted.param --json
    """
    from lrn_cli.cli.output import Ui
    from lrn_cli.errors import LrnError, ParameterError
    from lrn_cli.porting.hazards import resolve_targets

    ui = Ui(quiet=quiet, traceback=traceback)
    try:
        wanted = resolve_targets(targets) if targets else None
    except ParameterError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    if against is not None and len(models) != 1:
        raise click.UsageError("--against compares one MODEL with its conversion: give "
                               "exactly one MODEL", ctx)
    from lrn_cli.porting.inspect import inspect_model

    reports, failed = [], False
    for path in (*models, *((against,) if against is not None else ())):
        try:
            reports.append(inspect_model(path, wanted))
        except LrnError as exc:
            ui.error(str(exc))
            ui.print_traceback(exc)
            failed = True
            reports.append(None)
    if against is not None:
        ctx.exit(_against(ui, reports, as_json, failed, wanted))
    shown = [r for r in reports if r is not None]
    if as_json:
        _write_json(ui, shown, None)
    else:
        for report in shown:
            _print_model(ui, report)
    ctx.exit(1 if failed else 0)


def _write_json(ui, reports, differences) -> None:
    from lrn_cli.cli.output import json_text
    from lrn_cli.schema import document

    doc = document(models=[r.as_dict() for r in reports],
                   differences=[d.as_dict() for d in differences or ()])
    ui.write_data(json_text(doc))


def _against(ui, reports, as_json, failed, targets) -> int:
    from lrn_cli.porting.inspect import compare_reports, match_layers

    if failed:
        return 1
    ref, cand = reports
    diffs = compare_reports(ref, cand, targets)
    if as_json:
        _write_json(ui, [ref, cand], diffs)
    else:
        _print_against(ui, ref, cand, match_layers(ref, cand), diffs)
    return 1 if diffs else 0


# -- tables ---------------------------------------------------------------------------------
def _value(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _written(layer) -> str:
    return " ".join(f"{k}={_value(v)}" + (" (default)" if k in layer.defaulted else "")
                    for k, v in layer.params.items())


def _equivalent(entry) -> str:
    if entry["params"] is None:
        return "-"
    return " ".join(f"{k}={_value(v)}" for k, v in entry["params"].items())


def _title(report) -> str:
    from rich.markup import escape

    from lrn_cli.cli.output import display_name

    n = len(report.layers)
    count = "no LRN layer" if n == 0 else f"{n} LRN layer{'s' if n != 1 else ''}"
    return escape(display_name(f"{report.path} ({report.format}, {count})"))


def _table(title=None):
    from rich.table import Table

    return Table(title=title, title_justify="left", show_edge=False)


def _print_model(ui, report) -> None:
    from rich.markup import escape

    for note in report.notes:
        ui.note(f"{report.path}: {note}")
    if not report.layers:
        ui.write_data(f"{report.path}: no LRN layer\n")
        return
    table = _table(_title(report))
    for col in ("layer", "input -> output", "as written", "computes"):
        table.add_column(col, overflow="fold")
    for layer in report.layers:
        where = f" ({layer.where})" if layer.where else ""
        line = f" (line {layer.line})" if layer.line else ""
        table.add_row(escape(layer.name + where + line),
                      escape(f"{', '.join(layer.inputs) or '-'} -> "
                             f"{', '.join(layer.outputs) or '-'}"),
                      escape(_written(layer)), escape(layer.semantics.describe()))
        for note in layer.notes:
            ui.note(f"{report.path}: layer {layer.name}: {note}")
    ui.print_table(table)
    for names, layer in _groups(report.layers, lambda lay: (lay.semantics,
                                                             _frozen(lay.equivalents))):
        eq = _table(escape(f"equivalents ({names}): the parameters of each convention that "
                           "compute it"))
        for col in ("convention", "parameters", "notes, or why none"):
            eq.add_column(col, overflow="fold")
        for conv, entry in layer.equivalents.items():
            why = entry["reason"] if entry["params"] is None else "; ".join(entry["notes"])
            eq.add_row(conv, escape(_equivalent(entry)), escape(why or ""))
        ui.print_table(eq)
    for names, layer in _groups(report.layers, lambda lay: _frozen(lay.hazards)):
        if not layer.hazards:
            ui.write_data(f"hazards ({names}): none known\n")
            continue
        hz = _table(escape(f"hazards ({names}): what converters and runtimes do to it"))
        for col in ("target", "what happens", "source"):
            hz.add_column(col, overflow="fold")
        for h in layer.hazards:
            hz.add_row(escape(h["target"]), escape(h["text"]), escape(h["cite"]))
        ui.print_table(hz)


def _frozen(obj):
    import json

    return json.dumps(obj, sort_keys=True, default=str)


def _groups(layers, key):
    """Layers with the same ``key`` together, in first-seen order: ``[(names, first)]``."""
    groups: dict = {}
    for layer in layers:
        groups.setdefault(key(layer), []).append(layer)
    return [(", ".join(lay.name for lay in members), members[0])
            for members in groups.values()]


def _print_against(ui, ref, cand, pairs, diffs) -> None:
    from rich.markup import escape

    for report in (ref, cand):
        for note in report.notes:
            ui.note(f"{report.path}: {note}")
    table = _table(escape(f"{ref.path} ({ref.format}) -> {cand.path} ({cand.format}): "
                          "LRN layers matched"))
    for col in ("reference layer", "candidate layer", "matched by", "reference computes",
                "candidate computes"):
        table.add_column(col, overflow="fold")
    for p in pairs:
        table.add_row(escape(p.reference.name if p.reference else "-"),
                      escape(p.candidate.name if p.candidate else "-"), p.by,
                      escape(p.reference.semantics.describe() if p.reference else "-"),
                      escape(p.candidate.semantics.describe() if p.candidate else "-"))
    ui.print_table(table)
    if not diffs:
        ui.info(f"exact: the {len(pairs)} LRN layer pair{'s' if len(pairs) != 1 else ''} "
                "compute the same")
        return
    dt = _table(escape("differences"))
    for col in ("layer", "field", "reference", "candidate", "what happened", "known cause"):
        dt.add_column(col, overflow="fold")
    for d in diffs:
        cause = "; ".join(f"{h['target']}: {h['text']} [{h['cite']}]" for h in d.hazards)
        dt.add_row(escape(d.layer or d.candidate_layer or "-"), d.field,
                   escape(_value(d.reference)), escape(_value(d.candidate)), escape(d.text),
                   escape(cause or "-"))
    ui.print_table(dt)
    ui.info(f"{len(diffs)} difference{'s' if len(diffs) != 1 else ''}")
