"""``lrn stats``: the statistics of inputs, without normalizing."""

from __future__ import annotations

import click

from lrn_cli.cli.options import common_output, read_options, read_options_from, renamed
from lrn_cli.cli.output import Ui, check_formats, csv_text, display_name, json_text


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@read_options
@click.option("--mode", type=click.Choice(["across", "within"]), default="across",
              show_default=True, help="Only picks the default layout of 2-D arrays.")
@click.option("--show-channels", "max_channels", type=click.IntRange(min=0), default=8,
              show_default=True, metavar="N", help="Channels shown in the table.")
@renamed("--channels", "--show-channels", "max_channels", type=click.IntRange(min=0))
@common_output
@click.pass_context
def stats(ctx, inputs, layout, channel_axis, key, value_range, mode, max_channels, as_json,
          as_csv, quiet, traceback):
    """Print the statistics `lrn apply` reports, for inputs as they are.

    mean, std, min, max, RMS contrast (std / mean |x|), Michelson contrast over magnitudes,
    Hoyer sparsity and channel dominance, per channel and overall (see `lrn apply --help`).

    \b
    Examples:
      lrn stats samples/arrays/conv1_relu_nchw.npy
      lrn stats out/ --csv > stats.csv
    """
    from lrn_cli import batch
    from lrn_cli.cli.tables import stats_only_table, stats_rows
    from lrn_cli.errors import LrnError
    from lrn_cli.pipeline import load
    from lrn_cli.records import stats_document
    from lrn_cli.schema import document
    from lrn_cli.stats import array_stats

    fmt = check_formats(ctx, json=as_json, csv=as_csv)
    ui = Ui(quiet=quiet, traceback=traceback)
    ropts = read_options_from(layout=layout, channel_axis=channel_axis, key=key,
                              value_range=value_range)
    sources, problems = batch.discover(inputs)
    failed = 0
    for problem in problems:
        ui.error(str(problem))
        failed += 1
    rows, docs = [], []
    stdin = None
    for src in sources:
        try:
            data = None
            if src.path == batch.STDIN:
                import sys

                stdin = stdin if stdin is not None else sys.stdin.buffer.read()
                data = stdin
            loaded = load("<stdin>" if data is not None else src.path, ropts, mode, data)
        except LrnError as exc:
            ui.error(str(exc))
            failed += 1
            ui.print_traceback(exc)
            continue
        for note in loaded.notes:
            ui.note(f"{loaded.source}: {note}")
        for item in loaded.items:
            st = array_stats(item.array, item.channel_axis)
            if fmt == "csv":
                rows.extend(stats_rows(loaded.source, item.key, st))
            elif fmt == "json":
                docs.append({"file": display_name(loaded.source), "array": item.key or None,
                             "layout": item.layout, "stats": stats_document(st)})
            else:
                from rich.markup import escape

                label = escape(display_name(loaded.source
                                            + (f" [{item.key}]" if item.key else "")))
                ui.print_table(stats_only_table(f"{label} ({item.layout}, {st.dtype}, "
                                                f"shape {'x'.join(map(str, st.shape))})", st,
                                                max_channels=max_channels))
    if fmt == "csv":
        ui.write_data(csv_text(rows))
    elif fmt == "json":
        ui.write_data(json_text(document(files=docs)))
    ctx.exit(1 if failed else 0)
