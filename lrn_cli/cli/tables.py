"""Statistics as Rich tables (people) and as rows/documents (JSON, CSV)."""

from __future__ import annotations

from typing import Any

from lrn_cli.cli.output import display_name, fmt

STAT_LABELS = {
    "mean": "mean",
    "std": "std",
    "min": "min",
    "max": "max",
    "rms_contrast": "RMS contrast",
    "michelson_contrast": "Michelson contrast",
    "hoyer_sparsity": "Hoyer sparsity",
}
#: Every statistic, per channel too (the spec: "per channel and overall mean, std, min, max,
#: RMS contrast, Michelson contrast, Hoyer sparsity").
PER_CHANNEL_STATS = ("mean", "std", "min", "max", "rms_contrast", "michelson_contrast",
                     "hoyer_sparsity")


def _ratio(a: Any, b: Any) -> str:
    try:
        a = float(a)
        b = float(b)
    except (TypeError, ValueError):
        return "-"
    if a == 0 or a != a or b != b:
        return "-"
    return f"x{b / a:.3g}"


def comparison_table(title: str, before, after, divisor, *, max_channels: int = 8):
    """Overall before/after table plus the divisor and gain ranges."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("statistic")
    table.add_column("input", justify="right")
    table.add_column("output", justify="right")
    table.add_column("out/in", justify="right")
    b, a = before.overall, after.overall
    for name, label in STAT_LABELS.items():
        vb, va = getattr(b, name), getattr(a, name)
        table.add_row(label, fmt(vb), fmt(va), _ratio(vb, va))
    if before.channel_dominance is not None:
        table.add_row("channel dominance", fmt(before.channel_dominance),
                      fmt(after.channel_dominance),
                      _ratio(before.channel_dominance, after.channel_dominance))
    if divisor is not None:
        table.add_section()
        table.add_row("divisor D = k + a'S", f"min {fmt(divisor.d_min)}",
                      f"max {fmt(divisor.d_max)}", f"mean {fmt(divisor.d_mean)}")
        table.add_row("gain D^-beta", f"min {fmt(divisor.gain_min)}",
                      f"max {fmt(divisor.gain_max)}", f"mean {fmt(divisor.gain_mean)}")
    return table


def channel_table(title: str, before, after, *, max_channels: int = 8):
    """Per-channel table (the first ``max_channels`` channels): input over output.

    One row per channel, each cell two lines (input, then output), so that all seven
    statistics fit side by side.
    """
    from rich.table import Table

    if not before.channels:
        return None
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("channel", justify="right")
    table.add_column("", justify="left")
    for name in PER_CHANNEL_STATS:
        table.add_column(STAT_LABELS[name], justify="right")
    shown = min(len(before.channels), max_channels)
    for c in range(shown):
        cb, ca = before.channels[c], after.channels[c]
        table.add_row(str(c), "in\nout", *(f"{fmt(getattr(cb, s))}\n{fmt(getattr(ca, s))}"
                                           for s in PER_CHANNEL_STATS))
    if shown < len(before.channels):
        table.caption = (f"{len(before.channels) - shown} more channels not shown: "
                         "--show-channels N shows more, --json/--csv give all")
    return table


def stats_only_table(title: str, stats, *, max_channels: int = 8):
    """Statistics of one array (``lrn stats``): overall and per channel."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("scope")
    for label in STAT_LABELS.values():
        table.add_column(label, justify="right")
    rows = [("all", stats.overall)] + [(f"c{i}", c) for i, c in
                                      enumerate(stats.channels[:max_channels])]
    for scope, st in rows:
        table.add_row(scope, *(fmt(getattr(st, name)) for name in STAT_LABELS))
    notes = []
    if stats.channel_dominance is not None:
        notes.append(f"channel dominance {fmt(stats.channel_dominance)}")
    if len(stats.channels) > max_channels:
        notes.append(f"{len(stats.channels) - max_channels} more channels: --json/--csv give all")
    if stats.overall.nonfinite:
        notes.append(f"{stats.overall.nonfinite} non-finite values ignored")
    if notes:
        table.caption = "; ".join(notes)
    return table


def item_rows(source: str, item) -> list[dict[str, Any]]:
    """CSV rows (one per scope) for one normalized array (``docs/schema.md``, ``apply``)."""
    from lrn_cli.records import scope_rows
    from lrn_cli.schema import document

    head = {"file": display_name(source), "array": item.key or None, "layout": item.layout}
    return [document(**head, **row) for row in scope_rows(item.before, item.after,
                                                          item.divisor)]


def stats_rows(source: str, key: str, stats) -> list[dict[str, Any]]:
    """CSV rows (one per scope) for ``lrn stats``."""
    from lrn_cli.records import stats_scope_rows
    from lrn_cli.schema import document

    head = {"file": display_name(source), "array": key or None}
    return [document(**head, **row) for row in stats_scope_rows(stats)]


def item_document(item) -> dict[str, Any]:
    """JSON for one normalized array: where it sits, then ``in``, ``out``, ``divisor``,
    ``gain`` (``docs/schema.md``)."""
    from lrn_cli.records import divisor_document, gain_document, stats_document

    return {
        "array": item.key or None,
        "layout": item.layout,
        "channel_axis": item.channel_axis,
        "in": stats_document(item.before),
        "out": stats_document(item.after),
        "divisor": divisor_document(item.divisor),
        "gain": gain_document(item.divisor),
    }


def aggregate_table(ok, settings: str):
    """Many files: one row per file with the overall figures, then the means.

    ``ok`` are the files' results (:class:`lrn_cli.pipeline.JobResult`), ``settings`` the
    run's settings text.
    """
    from rich.table import Table

    table = Table(title=f"{len(ok)} files ({settings})", title_justify="left",
                  show_edge=False)
    cols = [("RMS contrast", "rms_contrast"), ("Michelson", "michelson_contrast"),
            ("Hoyer", "hoyer_sparsity")]
    table.add_column("file", overflow="fold")  # a long path folds; it is never cut
    for label, _ in cols:
        table.add_column(f"{label} in -> out", justify="right")
    table.add_column("dominance in -> out", justify="right")
    table.add_column("gain min..max", justify="right")
    sums: dict[str, list[float]] = {}
    for r in ok:
        for item in r.items:
            cells = []
            for _label, name in cols:
                b = getattr(item.before.overall, name)
                a = getattr(item.after.overall, name)
                cells.append(f"{fmt(b)} -> {fmt(a)}")
                sums.setdefault(name + "_in", []).append(b)
                sums.setdefault(name + "_out", []).append(a)
            cells.append(f"{fmt(item.before.channel_dominance)} -> "
                         f"{fmt(item.after.channel_dominance)}")
            cells.append(f"{fmt(item.divisor.gain_min)}..{fmt(item.divisor.gain_max)}")
            from rich.markup import escape

            name = escape(display_name(r.source + (f" [{item.key}]" if item.key else "")))
            table.add_row(name, *cells)
    import math

    def mean(values):
        vals = [v for v in values if v is not None and not math.isnan(v)]
        return sum(vals) / len(vals) if vals else None

    table.add_section()
    table.add_row("mean", *(f"{fmt(mean(sums[n + '_in']))} -> {fmt(mean(sums[n + '_out']))}"
                            for _, n in cols), "", "")
    return table



def flat_divisor_note(name: str, d_min: float | None, d_max: float | None, *,
                      in_any_setting: bool = False) -> str | None:
    """The note for a divisor that hardly varies (LRN then only scaled the data), or None.

    Examples
    --------
    >>> flat_divisor_note("x.png", 2.0, 2.001)[:42]
    'x.png: the divisor hardly varies (D from 2'
    >>> flat_divisor_note("x.png", 2.0, 3.0) is None
    True
    """
    if not d_min or d_max is None or d_max > d_min * 1.001:
        return None
    where = " in any setting" if in_any_setting else ""
    return (f"{name}: the divisor hardly varies{where} (D from {d_min:.6g} to {d_max:.6g}), "
            "so LRN only scaled the data; for images in [0,1] try --range byte or a larger "
            "--alpha")
