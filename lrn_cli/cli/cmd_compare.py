"""``lrn compare``: do two arrays (or images) agree within a tolerance?"""

from __future__ import annotations

import click

from lrn_cli.cli.options import common_output, read_options, read_options_from, renamed
from lrn_cli.cli.output import Ui, check_formats, csv_text, display_name, fmt, json_text


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-5, show_default=True,
              help="Relative tolerance (of |B|).")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-6, show_default=True,
              help="Absolute tolerance.")
@read_options
@click.option("--show-channels", "max_channels", type=click.IntRange(min=0), default=8,
              show_default=True, metavar="N", help="Channels shown in the table.")
@renamed("--channels", "--show-channels", "max_channels", type=click.IntRange(min=0))
@common_output
@click.pass_context
def compare(ctx, a, b, rtol, atol, layout, channel_axis, key, value_range, max_channels,
            as_json, as_csv, quiet, traceback):
    """Compare A against the reference B: max absolute and relative difference, ulps.

    Elements agree when |A - B| <= atol + rtol * |B| (NaN only with NaN at the same place).
    Exit 0 when every element agrees, 1 when any does not (or an input cannot be read).
    Use it to check our output against another framework's dump.

    \b
    Examples:
      lrn compare ours.npy torch_out.npy --rtol 1e-5 --atol 1e-7
      lrn compare ours.npy tf_out.npy --layout NHWC --json
    """
    from lrn_cli.compare import compare_arrays
    from lrn_cli.errors import LrnError
    from lrn_cli.pipeline import load
    from lrn_cli.schema import document

    fmt_choice = check_formats(ctx, json=as_json, csv=as_csv)
    ui = Ui(quiet=quiet, traceback=traceback)
    ropts = read_options_from(layout=layout, channel_axis=channel_axis, key=key,
                              value_range=value_range)
    loaded = []
    for path in (a, b):
        try:
            item = load(path, ropts, "across")
        except LrnError as exc:
            ui.error(str(exc))
            ui.print_traceback(exc)
            ctx.exit(1)
        if len(item.items) != 1:
            ui.error(f"{path}: holds {len(item.items)} arrays; pick one with --key")
            ctx.exit(1)
        loaded.append(item)
    xa, xb = loaded[0].items[0], loaded[1].items[0]
    if xa.array.shape != xb.array.shape:
        ui.error(f"{a}: shape {xa.array.shape} differs from {b}: shape {xb.array.shape}")
        ctx.exit(1)
    result = compare_arrays(xa.array, xb.array, channel_axis=xa.channel_axis, rtol=rtol,
                            atol=atol)
    files = {"a_file": display_name(a), "b_file": display_name(b)}
    if fmt_choice == "json":
        ui.write_data(json_text(document(**files, layout=xa.layout, **result.as_dict())))
    elif fmt_choice == "csv":
        rows = [document(**files, scope="all", **result.overall.as_dict())]
        rows += [document(**files, scope=f"c{i}", **c.as_dict())
                 for i, c in enumerate(result.channels)]
        ui.write_data(csv_text(rows))
    else:
        from rich.markup import escape
        from rich.table import Table

        # file names are text, never markup: '[bold]x.npy' is shown as it is
        title = escape(f"{files['a_file']} vs {files['b_file']} ({xa.layout}, compared in "
                       f"{result.dtype})")
        table = Table(title=title, title_justify="left", show_edge=False)
        for col in ("scope", "max |A-B|", "max rel", "max ulps", "mismatched"):
            table.add_column(col, justify="right" if col != "scope" else "left")
        rows = [("all", result.overall)] + [(f"c{i}", c) for i, c in
                                           enumerate(result.channels[:max_channels])]
        for scope, d in rows:
            table.add_row(scope, fmt(d.max_abs), fmt(d.max_rel), str(d.max_ulp),
                          f"{d.mismatched} of {d.count}")
        if len(result.channels) > max_channels:
            table.caption = f"{len(result.channels) - max_channels} more channels: --json/--csv"
        ui.print_table(table)
        worst = "" if result.worst_index is None else f"; worst at {result.worst_index}"
        verdict = "agree" if result.agree else "DIFFER"
        ui.info(f"{verdict} within rtol={rtol:g}, atol={atol:g}{worst}")
    ctx.exit(0 if result.agree else 1)
