"""``lrn norms``: LRN beside L2 normalization, BatchNorm, LayerNorm and InstanceNorm."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from lrn_cli.cli.options import (
    common_output,
    lrn_params,
    png_compression_option,
    read_options,
    read_options_from,
    settings_from,
)
from lrn_cli.cli.output import Ui, check_formats, csv_text, display_name, fmt, json_text

METHOD_NAMES = "lrn, l2, batchnorm, layernorm, instancenorm"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="INPUT")
@click.option("--methods", default=None, metavar="LIST",
              help=f"Comma-separated methods, in the order shown (default: every one of "
              f"{METHOD_NAMES} that the layout allows; one asked for that it does not is a "
              "usage error).")
@lrn_params
@read_options
@click.option("-o", "--output", "outdir", default=None, metavar="OUTDIR",
              help="Folder for the outputs: <stem>_<method>.npy for arrays, "
              "<stem>_<method>.png for images (created when missing).")
@click.option("--rescale", type=click.Choice(["minmax", "percentile", "none"]),
              default="minmax", show_default=True,
              help="How image outputs are mapped to the displayable range (as in lrn apply).")
@click.option("--global-rescale", is_flag=True,
              help="Rescale all channels of an image output together.")
@click.option("--bits", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="Image output depth.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (never the input).")
@click.option("--panel", default=None, metavar="FILE.png",
              help="Write a picture: one row per method (the input first), with histograms.")
@png_compression_option
@common_output
@click.pass_context
def norms(ctx, source, methods, mode, size, depth_radius, alpha, beta, k, convention,
          convention_defaults, layout, channel_axis, key, value_range, outdir, rescale,
          global_rescale, bits, overwrite, panel, png_compression, as_json, as_csv, quiet,
          traceback):
    """Normalize INPUT with LRN, L2, BatchNorm, LayerNorm and InstanceNorm; compare them.

    \b
    lrn           LRN with the options given (AlexNet's defaults), as `lrn apply` computes it
    l2            x / ||x|| across channels, computed as the LRN special case k=0, a'=1
                  (plain sum), beta=1/2, window over every channel, by the same kernels;
                  pixels with a zero norm become 0 (NaN inputs stay NaN)
    batchnorm     per channel over the batch and spatial axes, the batch's own statistics
                  (training mode), eps=1e-5, scale 1, shift 0
    layernorm     per sample over every non-batch axis
    instancenorm  per sample and channel over the spatial axes

    An image is one sample (height x width x channels); arrays follow --layout (NCHW for
    4-D by default).  One table, a row for the input and one per method, with the
    statistics `lrn apply` prints (divisor and gain for lrn and l2 only).  Statistics in
    float64; outputs float32 (float64 stays float64).  INPUT '-' reads stdin.

    \b
    Examples:
      lrn norms samples/arrays/conv1_relu_nchw.npy
      lrn norms photo.png --methods lrn,l2 --range byte -o out/ --panel norms.png
      lrn norms acts.npy --layout NHWC --json
    """
    from lrn_cli.errors import LrnError, ParameterError, one_line
    from lrn_cli.norms import parse_methods

    fmt_choice = check_formats(ctx, json=as_json, csv=as_csv)
    ui = Ui(quiet=quiet, traceback=traceback)
    try:
        names = parse_methods(methods)
    except ParameterError as exc:
        ui.error(f"--methods: {exc}")
        ctx.exit(2)
    if panel is not None and not panel.lower().endswith(".png"):
        ui.error(f"--panel {panel}: a panel is written as PNG; give a name ending in .png")
        ctx.exit(2)
    if outdir is not None and os.path.exists(outdir) and not os.path.isdir(outdir):
        ui.error(f"-o {outdir}: is a file; -o names a folder for the outputs")
        ctx.exit(2)
    settings = settings_from(ctx, mode=mode, size=size, depth_radius=depth_radius, alpha=alpha,
                             beta=beta, k=k, convention=convention,
                             convention_defaults=convention_defaults)
    ropts = read_options_from(layout=layout, channel_axis=channel_axis, key=key,
                              value_range=value_range)
    from lrn_cli.pipeline import WriteOptions

    wopts = WriteOptions(rescale=rescale, per_channel=not global_rescale, bits=int(bits),
                         png_compression=png_compression,
                         overwrite=overwrite)
    try:
        code = _run(ui, source, names, settings, ropts, wopts, outdir, panel, fmt_choice,
                    explicit=methods is not None)
    except ParameterError as exc:  # a layout a method cannot use
        ui.error(f"{display_name(source)}: {exc}")
        code = 2
    except (LrnError, MemoryError) as exc:  # InputError, OutputError: they name their file
        ui.error(one_line(exc, display_name(source)))
        ui.print_traceback(exc)
        code = 1
    except KeyboardInterrupt:  # outputs already renamed into place stay; none is partial
        ui.error("interrupted")
        code = 130
    sys.stdout.flush()
    ctx.exit(code)


def _load_one(source: str, ropts, mode: str):
    """The one array of INPUT (an .npz must hold one, or --key picks it)."""
    from lrn_cli.errors import InputError
    from lrn_cli.pipeline import load

    data = sys.stdin.buffer.read() if source == "-" else None
    name = "<stdin>" if source == "-" else source
    loaded = load(name, ropts, mode, data)
    if len(loaded.items) != 1:
        keys = ", ".join(i.key for i in loaded.items)
        raise InputError(name, f"holds {len(loaded.items)} arrays ({keys}): pick one with --key")
    return loaded


def _out_paths(source: str, loaded, names, outdir: str | None) -> dict[str, str | None]:
    if outdir is None:
        return dict.fromkeys(names)
    stem = "stdin" if source == "-" else Path(source).stem
    if loaded.items[0].key:
        stem += f"_{loaded.items[0].key}"
    suffix = ".png" if loaded.kind == "image" else ".npy"
    return {n: os.path.join(outdir, f"{stem}_{n}{suffix}") for n in names}


def _usable(ui: Ui, name: str, names, layout: str, mode: str, explicit: bool):
    """The methods to compute: all asked for (``explicit``: any that cannot use ``layout`` is
    an error), or, by default, those that can (a note names the others)."""
    from lrn_cli.errors import ParameterError
    from lrn_cli.norms import check_layout

    if explicit:
        check_layout(names, layout, mode=mode)  # ParameterError: exit 2
        return names
    usable = []
    for method in names:
        try:
            check_layout([method], layout, mode=mode)
        except ParameterError as exc:
            ui.note(f"{name}: {exc}: not computed")
            continue
        usable.append(method)
    if not usable:
        raise ParameterError(f"layout {layout} suits none of the methods")
    return tuple(usable)


def _run(ui: Ui, source: str, names, settings, ropts, wopts, outdir, panel,
         fmt_choice, *, explicit: bool) -> int:
    from lrn_cli.atomic import check_writable
    from lrn_cli.errors import InputError, OutputError, ParameterError
    from lrn_cli.norms import normalizations
    from lrn_cli.pipeline import check_output

    loaded = _load_one(source, ropts, settings.mode)
    name = loaded.source
    item = loaded.items[0]
    for note in loaded.notes:
        ui.note(f"{name}: {note}")
    names = _usable(ui, name, names, item.layout, settings.mode, explicit)
    protect = [] if source == "-" else [source]
    paths = _out_paths(source, loaded, names, outdir)
    if outdir is not None:
        os.makedirs(outdir, exist_ok=True)
    for path in paths.values():
        if path is not None:
            check_output(loaded.kind, path, image=loaded.image, items=1, wopts=wopts)
            check_writable(path, overwrite=wopts.overwrite, protect=protect)
    if panel is not None:
        if os.path.abspath(panel) in {os.path.abspath(p) for p in paths.values() if p}:
            raise OutputError(panel, "is also an -o output; give the panel another name")
        check_writable(panel, overwrite=wopts.overwrite, protect=protect)
    try:
        result = normalizations(item.array, names, layout=item.layout, **settings.lrn_kwargs())
    except ParameterError as exc:  # the LRN parameters do not fit this array
        raise InputError(name, str(exc)) from None
    written = {}
    for m in result:
        path = paths[m.name]
        if path is not None:
            _save(loaded, m.output, path, wopts, protect)
            written[m.name] = path
    notes = [*result.notes, *(n for m in result for n in m.notes)]
    for m in result:
        ui.note(f"{m.name}: {m.description}")
    for note in notes:
        ui.note(note)
    _print(ui, name, result, item, written, settings, notes, fmt_choice)
    if panel is not None:
        _draw(name, source, loaded, result, settings, panel, wopts, protect)
        ui.note(f"panel written to {panel}")
    return 0


def _save(loaded, y, path: str, wopts, protect) -> None:
    from lrn_cli.pipeline import ItemResult, save

    item = loaded.items[0]
    save(loaded, [ItemResult(item.key, item.layout, item.channel_axis, y, None, None, None)],
         path, wopts, protect)


# ------------------------------------------------------------------------------- output


def _rows_of(result):
    """(name, ArrayStats, DivisorStats or None) for the input and every method."""
    yield "input", result.input_stats, None
    for m in result:
        yield m.name, m.stats, m.divisor


def _document(name: str, result, item, written, settings, notes):
    from lrn_cli.norms import EPS
    from lrn_cli.records import divisor_document, gain_document, stats_document
    from lrn_cli.schema import document

    methods = [{"name": "input", "stats": stats_document(result.input_stats), "output": None,
                "divisor": None, "gain": None, "description": "the input, as read"}]
    for m in result:
        doc = {"name": m.name, "stats": stats_document(m.stats),
               "output": display_name(written[m.name]) if m.name in written else None,
               "divisor": divisor_document(m.divisor), "gain": gain_document(m.divisor),
               "description": m.description}
        if m.zero_norm_pixels is not None:
            doc["zero_norm_pixels"] = m.zero_norm_pixels
        methods.append(doc)
    s = settings
    return document(file=display_name(name), array=item.key or None, layout=result.layout,
                    channel_axis=result.channel_axis,
                    settings={"mode": s.mode, "convention": s.convention, "size": s.size,
                              "alpha": s.alpha, "beta": s.beta, "k": s.k},
                    eps=EPS, methods=methods, notes=notes)


def _csv_rows(name: str, result, item, written):
    from lrn_cli.records import divisor_document, gain_document, stats_scope_rows
    from lrn_cli.schema import document

    rows = []
    for method, stats, divisor in _rows_of(result):
        div = divisor_document(divisor) or {}
        gain = gain_document(divisor) or {}
        for row in stats_scope_rows(stats):
            whole = row["scope"] == "all"
            extra = {f"divisor_{s}": div.get(s) if whole else None for s in ("min", "max", "mean")}
            extra.update({f"gain_{s}": gain.get(s) if whole else None
                          for s in ("min", "max", "mean")})
            rows.append(document(file=display_name(name), array=item.key or None,
                                 layout=result.layout, method=method, **row, **extra,
                                 output=display_name(written[method]) if method in written
                                 else None))
    return rows


def _print(ui: Ui, name: str, result, item, written, settings, notes, fmt_choice) -> None:
    if fmt_choice == "json":
        ui.write_data(json_text(_document(name, result, item, written, settings, notes)))
        return
    if fmt_choice == "csv":
        ui.write_data(csv_text(_csv_rows(name, result, item, written)))
        return
    ui.print_table(_table(name, result, item))


def _table(name: str, result, item):
    from rich.markup import escape
    from rich.table import Table

    st = result.input_stats
    label = name + (f" [{item.key}]" if item.key else "")
    title = escape(display_name(f"{label} ({result.layout}, {st.dtype}, shape "
                                f"{'x'.join(map(str, st.shape))}): {len(result)} "
                                f"normalization{'s' if len(result) != 1 else ''}"))
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("method")
    for column in ("mean", "std", "min", "max", "RMS contrast", "Michelson", "Hoyer",
                   "dominance", "D min..max", "gain min..max"):
        table.add_column(column, justify="right")
    for method, stats, divisor in _rows_of(result):
        o = stats.overall
        d_range = gain_range = "-"
        if divisor is not None:
            d_range = f"{fmt(divisor.d_min)}..{fmt(divisor.d_max)}"
            gain_range = f"{fmt(divisor.gain_min)}..{fmt(divisor.gain_max)}"
        table.add_row(method, fmt(o.mean), fmt(o.std), fmt(o.min), fmt(o.max),
                      fmt(o.rms_contrast), fmt(o.michelson_contrast), fmt(o.hoyer_sparsity),
                      fmt(stats.channel_dominance), d_range, gain_range)
        if method == "input":
            table.add_section()
    counts = [(method, stats.overall.nonfinite) for method, stats, _ in _rows_of(result)
              if stats.overall.nonfinite]
    if counts:
        table.caption = "non-finite values ignored in the figures: " + ", ".join(
            f"{method} {count}" for method, count in counts)
    return table


def _draw(name: str, source: str, loaded, result, settings, panel: str, wopts,
          protect) -> None:
    from lrn_cli.cli.output import fmt as number
    from lrn_cli.errors import InputError, LrnError
    from lrn_cli.panel import draw_norms_panel, settings_text

    rows = []
    for m in result:
        lines = [m.description]
        if m.divisor is not None:
            lines.append(f"D {number(m.divisor.d_min)} .. {number(m.divisor.d_max)}")
        if m.zero_norm_pixels:
            lines.append(f"{m.zero_norm_pixels} zero-norm pixels set to 0")
        rows.append((m.name, m.output, lines))
    item = loaded.items[0]
    label = (name if source == "-" else os.path.basename(name))
    label += f" [{item.key}]" if item.key else ""
    kind = "image" if loaded.kind == "image" else "array"
    try:
        draw_norms_panel(item.array, rows, panel, kind=kind, layout=result.layout,
                         channel_axis=result.channel_axis,
                         title=f"{label}   lrn norms: {', '.join(result.names)}",
                         subtitle="; ".join([f"lrn: {settings_text(settings)}", *result.notes]),
                         overwrite=wopts.overwrite, protect=protect,
                         png_compression=wopts.png_compression)
    except ValueError as exc:
        if isinstance(exc, LrnError):
            raise
        raise InputError(name, f"cannot draw a panel: {exc}") from None
