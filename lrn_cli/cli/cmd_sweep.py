"""``lrn sweep``: one input, several values of one LRN parameter, one comparison table."""

from __future__ import annotations

import sys

import click

from lrn_cli.cli.options import (
    common_output,
    lrn_params,
    png_compression_option,
    read_options,
    read_options_from,
    renamed,
    settings_from,
)
from lrn_cli.cli.output import Ui, check_formats, csv_text, display_name, fmt, json_text
from lrn_cli.cli.tables import flat_divisor_note
from lrn_cli.sweep import SWEEP_PARAMS


class _ParamName(click.Choice):
    name = "NAME"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="INPUT")
@click.option("--param", "sweep_param", nargs=2, required=True, metavar="NAME SPEC",
              type=(_ParamName(list(SWEEP_PARAMS), case_sensitive=False), str),
              help="The parameter to vary (size, alpha, beta or k) and its values: "
              "start:stop:count (linear, both ends included), log:start:stop:count (log "
              "spacing) or a,b,c.")
@lrn_params
@read_options
@click.option("--panel", default=None, metavar="FILE.png",
              help="Also draw the outputs side by side: the image per setting, or for arrays "
              "one channel (--panel-channel) of the first sample per setting.")
@click.option("--panel-channel", "channel", type=click.IntRange(min=0), default=0,
              show_default=True, metavar="I", help="Channel of an array shown by --panel.")
@renamed("--channel", "--panel-channel", "channel", type=click.IntRange(min=0))
@click.option("--overwrite", is_flag=True, help="Replace an existing --panel file.")
@png_compression_option
@common_output
@click.pass_context
def sweep(ctx, source, sweep_param, mode, size, depth_radius, alpha, beta, k, convention,
          convention_defaults, layout, channel_axis, key, value_range, panel, channel,
          overwrite, png_compression, as_json, as_csv, quiet, traceback):
    """Apply LRN with several values of one parameter and compare them in one table.

    INPUT is an array (.npy, .npz) or an image, or '-' for stdin.  The other parameters are
    fixed by the usual options (--size, --alpha, --beta, -k, --convention, --mode).

    One row per value: mean and std of the output, RMS contrast, Michelson contrast of the
    output, Hoyer sparsity and channel dominance (input -> output), and the range of the
    gain D^-beta LRN multiplied values by (see `lrn apply --help` for the definitions).
    --json and --csv give every figure, per channel too (JSON).

    \b
    SPEC forms:
      0.25:1.5:6         6 values from 0.25 to 1.5, both included
      log:1e-5:1e-2:4    1e-05, 1e-04, 1e-03, 1e-02
      1,3,5,7            exactly these
    Sizes must be whole numbers >= 1 that the convention accepts (Caffe: odd only).

    \b
    Examples:
      lrn sweep samples/arrays/conv2_relu_nchw.npy --param beta 0.25:1.5:6
      lrn sweep samples/arrays/conv1_relu_nchw.npy --param alpha log:1e-5:1e-2:4 --csv
      lrn sweep samples/images/camera_gray.png --param size 1,3,5,9 --mode within \\
          --range byte --alpha 1e-3 --panel sizes.png
    """
    fmt_choice = check_formats(ctx, json=as_json, csv=as_csv)
    ui = Ui(quiet=quiet, traceback=traceback)
    param, spec = sweep_param[0].lower(), sweep_param[1]
    from lrn_cli.errors import ParameterError
    from lrn_cli.sweep import check_sweep, parse_sweep

    try:
        values = parse_sweep(param, spec)
    except ParameterError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="'--param'") from None
    if param == "size" and (size is not None or depth_radius is not None):
        raise click.UsageError("--param size sweeps the window size; do not also give "
                               "--size or --depth-radius", ctx)
    settings = settings_from(ctx, mode=mode, size=size, depth_radius=depth_radius, alpha=alpha,
                             beta=beta, k=k, convention=convention,
                             convention_defaults=convention_defaults)
    try:
        check_sweep(settings, param, values)
    except ParameterError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="'--param'") from None
    if panel is not None and not panel.lower().endswith(".png"):
        raise click.BadParameter("must end in .png", ctx, param_hint="'--panel'")
    ropts = read_options_from(layout=layout, channel_axis=channel_axis, key=key,
                              value_range=value_range)
    try:
        code = _run(ui, source, settings, ropts, param, values, panel=panel, channel=channel,
                    overwrite=overwrite, fmt_choice=fmt_choice,
                    png_compression=png_compression)
    except KeyboardInterrupt:
        ui.error("interrupted")
        code = 130
    sys.stdout.flush()
    ctx.exit(code)


def _run(ui: Ui, source: str, settings, ropts, param: str, values, *, panel, channel: int,
         overwrite: bool, fmt_choice, png_compression: int = 6) -> int:
    """Load, sweep, print, draw; return the exit code (errors are one line naming the file)."""
    from lrn_cli.errors import one_line

    name = "<stdin>" if source == "-" else source
    try:
        return _sweep_file(ui, source, name, settings, ropts, param, values, panel=panel,
                           channel=channel, overwrite=overwrite, fmt_choice=fmt_choice,
                           png_compression=png_compression)
    except Exception as exc:  # LrnError, MemoryError or a bug: one line, traceback on request
        ui.error(one_line(exc, name))
        ui.print_traceback(exc)
    return 1


def _sweep_file(ui: Ui, source: str, name: str, settings, ropts, param: str, values, *,
                panel, channel: int, overwrite: bool, fmt_choice,
                png_compression: int) -> int:
    from lrn_cli.atomic import check_writable
    from lrn_cli.errors import InputError, ParameterError
    from lrn_cli.pipeline import load
    from lrn_cli.sweep import run_sweep

    protect = () if source == "-" else (source,)
    if panel is not None:
        check_writable(panel, overwrite=overwrite, protect=protect)
    data = sys.stdin.buffer.read() if source == "-" else None
    loaded = load(name, ropts, settings.mode, data)
    for note in loaded.notes:
        ui.note(f"{name}: {note}")
    kind = "image" if loaded.kind == "image" else "array"
    results = []
    for index, item in enumerate(loaded.items):
        keep = None
        x_slice = None
        if panel is not None and index == 0:
            from lrn_cli.panel import sweep_slice

            def keep(y, item=item):
                return sweep_slice(y, kind, item.layout, item.channel_axis, channel)

            try:
                x_slice = keep(item.array)
            except ParameterError as exc:
                raise InputError(name, f"--panel-channel: {exc}") from None
        try:
            rows = run_sweep(item, settings, param, values, keep=keep)
        except ParameterError as exc:
            label = f"array {item.key!r}: " if item.key else ""
            raise InputError(name, f"{label}{exc}") from None
        results.append((item, rows, x_slice))
    _print(ui, name, settings, param, results, fmt_choice)
    if panel is not None:
        _draw(ui, name, settings, param, results[0], kind, panel, channel, overwrite, protect,
              png_compression)
    return 0


def _settings_text(settings, param: str) -> str:
    return settings.text(omit=param)


def _print(ui: Ui, name: str, settings, param: str, results, fmt_choice) -> None:
    from lrn_cli.records import stats_document
    from lrn_cli.schema import document

    if fmt_choice == "csv":
        rows = []
        for item, sweep_rows, _x in results:
            for r in sweep_rows:
                rows.append(document(file=display_name(name), array=item.key or None,
                                     layout=item.layout, **r.record()))
        ui.write_data(csv_text(rows))
        return
    if fmt_choice == "json":
        s = settings
        doc = document(
            file=display_name(name), param=param,
            values=[r.value for r in results[0][1]] if results else [],
            settings={"mode": s.mode, "convention": s.convention, "size": s.size,
                      "alpha": s.alpha, "beta": s.beta, "k": s.k, param: None},
            arrays=[{"array": item.key or None, "layout": item.layout,
                     "channel_axis": item.channel_axis,
                     "in": stats_document(rows[0].before) if rows else None,
                     "rows": [r.document() for r in rows]}
                    for item, rows, _x in results])
        ui.write_data(json_text(doc))
        return
    for item, rows, _x in results:
        ui.print_table(_table(name, item, settings, param, rows))
        d_min = min((r.divisor.d_min for r in rows), default=None)
        d_max = max((r.divisor.d_max for r in rows), default=None)
        note = flat_divisor_note(name, d_min, d_max, in_any_setting=True)
        if note is not None:
            ui.note(note)


def _arrow(a, b) -> str:
    return f"{fmt(a)} -> {fmt(b)}"


def _table(name: str, item, settings, param: str, rows):
    from rich.markup import escape
    from rich.table import Table

    from lrn_cli.sweep import value_text

    label = name + (f" [{item.key}]" if item.key else "")
    title = escape(display_name(f"{label} ({item.layout}): sweep of {param} "
                                f"({_settings_text(settings, param)})"))
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column(param, justify="right")
    table.add_column("mean out", justify="right")
    table.add_column("std out", justify="right")
    table.add_column("RMS contrast in -> out", justify="right")
    table.add_column("Michelson out", justify="right")
    table.add_column("Hoyer in -> out", justify="right")
    table.add_column("dominance in -> out", justify="right")
    table.add_column("gain min..max", justify="right")
    for r in rows:
        b, a = r.before, r.after
        table.add_row(value_text(param, r.value), fmt(a.overall.mean), fmt(a.overall.std),
                      _arrow(b.overall.rms_contrast, a.overall.rms_contrast),
                      fmt(a.overall.michelson_contrast),
                      _arrow(b.overall.hoyer_sparsity, a.overall.hoyer_sparsity),
                      _arrow(b.channel_dominance, a.channel_dominance),
                      f"{fmt(r.divisor.gain_min)}..{fmt(r.divisor.gain_max)}")
    if rows:
        b = rows[0].before.overall
        table.caption = escape(f"input: mean {fmt(b.mean)}, std {fmt(b.std)}, Michelson "
                               f"{fmt(b.michelson_contrast)}")
    return table


def _draw(ui: Ui, name: str, settings, param: str, result, kind: str, panel: str,
          channel: int, overwrite: bool, protect, png_compression: int) -> None:
    import os

    from lrn_cli.panel import draw_sweep_panel, feature_view
    from lrn_cli.sweep import value_text

    item, rows, x_slice = result
    title = display_name(os.path.basename(name) + (f" [{item.key}]" if item.key else ""))
    title += f"   sweep of {param}: " + ", ".join(value_text(param, r.value) for r in rows)
    if kind == "image":
        what = "the whole image"
    elif feature_view(item.array, item.layout, item.channel_axis)[1]:
        what = f"channel {channel} of the first sample ({item.layout})"
    else:
        what = f"the first sample as one matrix ({item.layout} has no two spatial axes)"
    subtitle = f"{_settings_text(settings, param)}; shown: {what}"
    draw_sweep_panel(x_slice, [r.output for r in rows], [r.label for r in rows], panel,
                     kind=kind, title=title, subtitle=subtitle, overwrite=overwrite,
                     protect=protect, png_compression=png_compression)
    ui.note(f"panel written to {panel}")
