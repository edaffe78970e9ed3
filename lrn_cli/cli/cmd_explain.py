"""``lrn explain``: which LRN produced an output dump, and why two outputs differ."""

from __future__ import annotations

from typing import Any

import click

from lrn_cli.cli.output import Ui, check_formats, display_name, json_text


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT")
@click.argument("output", metavar="OUTPUT")
@click.argument("output2", metavar="[OUTPUT2]", required=False)
@click.option("--candidate-input", "candidate_input", default=None, metavar="INPUT2",
              help="The candidate's own LRN input (default: INPUT); its layout may differ.")
@click.option("--layout", default=None, metavar="LAYOUT",
              help="INPUT's layout (NCHW, NHWC, ...): try only its channel axis (across) and "
              "its H, W axes (within).  [default: try every axis and pair of axes]")
@click.option("--channel-axis", type=int, default=None, metavar="AXIS",
              help="Try only this channel axis (and the last two other axes for within).")
@click.option("--candidate-layout", default=None, metavar="LAYOUT",
              help="The candidate input's layout, when it cannot be told from the shapes.")
@click.option("--mode", type=click.Choice(["across", "within"]), default=None,
              help="Try only this mode.  [default: both]")
@click.option("--key", default=None, metavar="NAME",
              help="The array to read from every .npz given.")
@click.option("--alternatives", "max_alternatives", type=click.IntRange(min=0), default=3,
              show_default=True, help="Alternatives shown in the report (--json has every one "
              "found; at most 7 are looked for).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No notes; errors are still printed.")
@click.option("--traceback", is_flag=True, help="Show Python tracebacks of errors.")
@click.pass_context
def explain(ctx, input_path, output, output2, candidate_input, layout, channel_axis,
            candidate_layout, mode, key, max_alternatives, as_json, quiet, traceback):
    """Tell which LRN turned INPUT into OUTPUT, and why OUTPUT2 differs from OUTPUT.

    INPUT and OUTPUT are the tensors that go into and come out of an LRN layer (.npy,
    .npz with --key, or ONNX TensorProto .pb; .pb needs `pip install "lrn-cli[onnx]"`).
    The report gives the semantics (window [c-lo, c+hi], a', k', beta: y = x*(k' +
    a'*S)^-beta), the residual against a per-element rounding bound, every framework's
    parameters for it, what else fits and what the data cannot pin down.

    With OUTPUT2 (e.g. the converted model's output, OUTPUT being the source framework's),
    both are explained and their differences are said in words that name the converter
    behaviour known to cause them (k dropped, alpha not divided by n, even window on the
    other side, within turned into across, radius taken for size, layout).

    \b
    Verdicts and exit codes: lrn or no-effect (the output is the input times a constant)
    exit 0; not-lrn exit 1 (with the likely cause).  Two outputs: 0 when both are
    explained, whether they differ or not; 1 otherwise.  2: usage error; a file that
    cannot be used: one error line, exit 1.

    \b
    Examples:
      lrn explain lrn_in.npy caffe_out.npy
      lrn explain lrn_in.npy caffe_out.npy ncnn_out.npy
      lrn explain in.npy torch_out.npy tf_out.npy --candidate-input tf_in_nhwc.npy
      lrn explain test_data_set_0/input_0.pb test_data_set_0/output_0.pb --json
    """
    from lrn_cli.errors import LrnError, ParameterError
    from lrn_cli.porting.explain import explain as run_explain
    from lrn_cli.schema import document

    check_formats(ctx, json=as_json)
    ui = Ui(quiet=quiet, traceback=traceback)
    if layout is not None and channel_axis is not None:
        raise click.UsageError("give --layout or --channel-axis, not both", ctx)
    if output2 is None and (candidate_input is not None or candidate_layout is not None):
        raise click.UsageError("--candidate-input and --candidate-layout need OUTPUT2", ctx)
    if layout is not None:
        from lrn_cli.layouts import check_layout

        try:
            check_layout(layout, len(layout.strip()))
        except ParameterError as exc:
            raise click.UsageError(str(exc), ctx) from None
    try:
        result = run_explain(input_path, output, output2, candidate_input=candidate_input,
                             mode=mode, layout=layout, channel_axis=channel_axis,
                             candidate_layout=candidate_layout, key=key)
    except ParameterError as exc:
        ui.print_traceback(exc)
        raise click.UsageError(str(exc), ctx) from None
    except LrnError as exc:
        ui.error(str(exc))
        ui.print_traceback(exc)
        ctx.exit(1)
    if as_json:
        ui.write_data(json_text(document(**result.as_dict())))
    elif output2 is None:
        _report(ui, result, max_alternatives, equivalents_table=True)
    else:
        _pair_report(ui, result, max_alternatives)
    notes = result.notes if output2 is None else (
        [f"reference: {n}" for n in result.reference.notes]
        + [f"candidate: {n}" for n in result.candidate.notes] + result.notes)
    for note in notes:
        ui.note(note)
    ctx.exit(result.exit_code)


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        return text if len(text) <= 12 else f"{v:.7g}"
    return str(v)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={_value(v)}" for name, v in params.items())


def _residual(fit) -> str:
    bound = (f"within the {fit.bound} bound (worst element at {fit.bound_ratio:.2f} of its "
             "bound)" if fit.bound
             else f"{fit.bound_ratio:.3g}x the running-sum bound")
    return (f"max {fit.max_ulps} ulps, max relative error {fit.max_rel_error:.3g}, {bound}; "
            f"{fit.compared} elements")


def _lines(ui: Ui, rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for what, value in rows:
        table.add_row(what, _plain(value))
    ui.print_table(table)


def _plain(text: str):
    from rich.text import Text

    return Text(display_name(text))


def _report(ui: Ui, r, max_alternatives: int, *, equivalents_table: bool,
            title: str | None = None) -> None:
    from rich.table import Table

    shape = "x".join(str(s) for s in r.shape)
    head = title or f"{r.output} from {r.input}"
    rows = [("explain", f"{head} ({shape}, {r.dtype})"), ("verdict", r.verdict)]
    if r.verdict == "no-effect":
        ne = r.no_effect
        rows.append(("gain", f"output = input x {_value(ne.gain)} within {ne.max_ulps} ulps"))
        bound = ne.alpha_eff_max(0.75)
        if bound is not None:
            rows.append(("a' bound", f"a'*beta/k' <= {ne.alpha_beta_over_k_max:.3g} over the "
                         f"windows tried (beta 0.75: a' <= {bound:.3g})"))
    if r.fit is not None:
        label = "fit" if r.verdict == "lrn" else "closest"
        if r.verdict != "lrn" and r.fit.bound and r.cause:
            label = "lined up" if r.cause.startswith("layouts differ") else "after ReLU" \
                if "ReLU" in r.cause else label
        rows.append((label, r.fit.semantics.describe()))
        rows.append(("residual", _residual(r.fit)))
    if r.cause:
        rows.append(("cause", r.cause))
    for u in r.unidentifiable:
        if u.get("values") is not None:
            rows.append(("unidentified", f"{u['field']}: any of {u['values']}"))
        elif isinstance(u.get("low"), list):
            rows.append(("unidentified", f"window: lo {u['low'][0]}..{u['high'][0]}, hi "
                         f"{u['low'][1]}..{u['high'][1]}"))
        else:
            rows.append(("unidentified", f"{u['field']}: anything in [{u['low']:.6g}, "
                         f"{u['high']:.6g}] fits"))
    for i, alt in enumerate(r.alternatives[:max_alternatives], 1):
        rows.append((f"also fits {i}", f"{alt.semantics.describe()} ({alt.max_ulps} ulps)"))
    if len(r.alternatives) > max_alternatives:
        rows.append(("", f"{len(r.alternatives) - max_alternatives} more alternatives: "
                     "--alternatives N or --json"))
    if r.equivalents and not equivalents_table:
        can = [name for name, e in r.equivalents.items() if e["params"] is not None]
        rows.append(("expressible", ", ".join(can) if can else "by no convention's own op"))
    _lines(ui, rows)
    if r.equivalents and equivalents_table:
        table = Table(title="the same LRN in each convention's terms", title_justify="left",
                      show_edge=False)
        for col in ("convention", "parameters", "notes"):
            table.add_column(col, overflow="fold" if col != "convention" else "ellipsis")
        for name, e in r.equivalents.items():
            if e["params"] is not None:
                table.add_row(name, _plain(_params(e["params"])), _plain("; ".join(e["notes"])))
            else:
                table.add_row(name, "-", _plain(e["reason"]))
        ui.print_table(table)


def _pair_report(ui: Ui, p, max_alternatives: int) -> None:
    from rich.table import Table

    _report(ui, p.reference, max_alternatives, equivalents_table=False,
            title=f"reference {p.reference.output} from {p.reference.input}")
    _report(ui, p.candidate, max_alternatives, equivalents_table=False,
            title=f"candidate {p.candidate.output} from {p.candidate.input}")
    if p.differences:
        table = Table(title="differences (reference -> candidate)", title_justify="left",
                      show_edge=False)
        for col in ("field", "reference", "candidate", "what it means"):
            table.add_column(col, overflow="fold")
        for d in p.differences:
            table.add_row(d.field, _plain(_value(d.reference)), _plain(_value(d.candidate)),
                          _plain(d.text))
        ui.print_table(table)
    elif p.explained and p.arithmetic is not None:
        _lines(ui, [("same", p.arithmetic["text"])])
    elif p.explained:
        _lines(ui, [("same", "no semantic difference found")])
    else:
        side = "reference" if not p.reference.explained else "candidate"
        _lines(ui, [("differences", f"not listed: the {side} output is not explained")])
