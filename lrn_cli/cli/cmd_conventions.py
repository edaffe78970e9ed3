"""``lrn conventions``: every framework's LRN, and how to translate between them."""

from __future__ import annotations

import click

from lrn_cli.cli.options import CONVENTION_NAMES
from lrn_cli.cli.output import Ui, json_text
from lrn_cli.schema import document


def _describe(conv) -> dict:
    from lrn_cli.conventions import alpha_text, window_text

    modes = {}
    for mode, rule in conv.modes.items():
        modes[mode] = {
            "window": window_text(conv, mode),
            "alpha": alpha_text(rule, mode),
            "k": "used" if rule.uses_k else "ignored (always 1)",
            "even_size": "rejected" if rule.even_window is None else "accepted",
        }
    return {"name": conv.name, "title": conv.title, "modes": modes,
            "parameters": conv.param_names, "defaults": conv.defaults,
            "size_is_radius": conv.size_is_radius,
            "layout": "NHWC" if conv.channel_last else "NCHW",
            "limits": conv.limits, "notes": list(conv.notes), "source": conv.source}


class ConventionsGroup(click.Group):
    """``lrn conventions [NAME]`` plus the ``translate`` subcommand."""

    def resolve_command(self, ctx, args):
        # a bare NAME (not a subcommand) is shown by the hidden `show` command
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


class _AsGroupContext(click.Context):
    """The context of the hidden ``show``: messages name ``lrn conventions``, not ``show``."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else "lrn conventions"


class _ShowCommand(click.Command):
    context_class = _AsGroupContext

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[NAME]", "[--json]"]


_JSON_HELP = "Print JSON on stdout."


@click.group(cls=ConventionsGroup, invoke_without_command=True,
             subcommand_metavar="[NAME | translate [ARGS]...]",
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def conventions(ctx, as_json):
    """List every convention (window, alpha divisor, k, even sizes, defaults).

    \b
    lrn conventions               all of them, one row each
    lrn conventions NAME          one in full
    lrn conventions translate --from tensorflow --to caffe --depth-radius 2 --alpha 2e-5
    """
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from lrn_cli.conventions import CONVENTIONS, alpha_text

    ui = Ui()
    if as_json:
        ui.write_data(json_text(document(conventions=[_describe(c)
                                                      for c in CONVENTIONS.values()])))
        return
    table = Table(title="LRN conventions (y = x * (k + a'*S)^-beta)", title_justify="left",
                  show_edge=False)
    for col in ("name", "framework", "modes", "even n (across)", "alpha", "k", "names",
                "defaults n/alpha/beta/k"):
        # names and numbers are never cut; long titles and parameter lists may fold
        table.add_column(col, overflow="fold" if col in ("framework", "names") else "ellipsis")
    for conv in CONVENTIONS.values():
        across = conv.modes.get("across")
        even = "-" if across is None else (
            "rejected" if across.even_window is None else across.even_window)
        alphas = ", ".join(f"{m}: {alpha_text(r, m)}" for m, r in conv.modes.items())
        ks = ", ".join(f"{m}: {'used' if r.uses_k else 'ignored'}" for m, r in conv.modes.items())
        names = "/".join(conv.param_names[p] for p in ("size", "alpha", "beta", "k"))
        d = conv.defaults
        defaults = "/".join("-" if d[p] is None else f"{d[p]:g}" for p in
                            ("size", "alpha", "beta", "k"))
        table.add_row(conv.name, conv.title, ", ".join(conv.modes), even, alphas, ks, names,
                      defaults)
    ui.print_table(table)


@conventions.command("show", cls=_ShowCommand, hidden=True)
@click.argument("name", metavar="NAME")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def show(ctx, name, as_json):
    """Show one convention in full (`lrn conventions NAME`)."""
    from lrn_cli.conventions import get_convention
    from lrn_cli.errors import ParameterError

    try:
        conv = get_convention(name)
    except ParameterError as exc:
        raise click.UsageError(str(exc), ctx) from None
    doc = _describe(conv)
    ui = Ui()
    if as_json or ctx.obj.get("json"):
        ui.write_data(json_text(document(**doc)))
        return
    lines = [f"{conv.name}: {conv.title}"]
    for mode, info in doc["modes"].items():
        lines.append(f"  {mode}: window {info['window']}; {info['alpha']}; k {info['k']}")
    names = ", ".join(f"{ours} -> {theirs}" for ours, theirs in conv.param_names.items())
    lines.append(f"  parameters: {names}" + ("  (size is a radius r; n = 2r+1)"
                                             if conv.size_is_radius else ""))
    defaults = ", ".join(f"{conv.param_names[p]}={'(required)' if v is None else f'{v:g}'}"
                         for p, v in conv.defaults.items())
    lines.append(f"  defaults: {defaults}")
    lines.append(f"  channel axis: {'last (NHWC)' if conv.channel_last else '1 (NCHW)'}")
    if conv.limits:
        lines.append("  limits: " + ", ".join(f"{k}={v:g}" for k, v in conv.limits.items()))
    for note in conv.notes:
        lines.append(f"  note: {note}")
    if conv.source:
        lines.append(f"  source: {conv.source}")
    ui.write_data("\n".join(lines) + "\n")


@conventions.command("translate")
@click.option("--from", "source", required=True,
              type=click.Choice(CONVENTION_NAMES, case_sensitive=False),
              help="The framework whose parameters you have.")
@click.option("--to", "target", required=True,
              type=click.Choice(CONVENTION_NAMES, case_sensitive=False),
              help="The framework you move to.")
@click.option("--mode", type=click.Choice(["across", "within"]), default="across",
              show_default=True)
@click.option("-n", "--size", type=click.IntRange(min=1), default=None,
              help="Source window width n.")
@click.option("--depth-radius", type=click.IntRange(min=0), default=None,
              help="Source radius r (TensorFlow): n = 2r+1.")
@click.option("--alpha", type=float, default=None, help="Source alpha (default: its own).")
@click.option("--beta", type=float, default=None, help="Source beta (default: its own).")
@click.option("-k", "--k", "k", type=float, default=None, help="Source k (default: its own).")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def translate_cmd(ctx, source, target, mode, size, depth_radius, alpha, beta, k, as_json):
    """Print the parameters that make --to compute exactly what --from computes.

    Parameters not given take the source framework's own defaults.  Exit 1 with the reason
    when no exact translation exists (e.g. an even size into a framework that rejects it).

    \b
    Example:
      lrn conventions translate --from tensorflow --to caffe --depth-radius 2 --alpha 2e-5
      -> local_size=5 alpha=0.0001 beta=0.5 k=1
    """
    from lrn_cli.cli.options import size_option
    from lrn_cli.conventions import (
        NoExactTranslation,
        get_convention,
        size_from_radius,
        translate,
    )
    from lrn_cli.errors import ParameterError

    src = get_convention(source)
    size = size_option(ctx, size, depth_radius)
    d = src.defaults
    if size is None:
        if d["size"] is None:
            raise click.UsageError(f"{src.title} has no default size: give --size", ctx)
        size = size_from_radius(int(d["size"])) if src.size_is_radius else int(d["size"])

    def pick(value, name):
        if value is not None:
            return value
        if d[name] is None:
            raise click.UsageError(f"{src.title} has no default {name}: give --{name}", ctx)
        return d[name]

    alpha, beta, k = pick(alpha, "alpha"), pick(beta, "beta"), pick(k, "k")
    ui = Ui()
    try:
        result = translate(src, target, mode=mode, size=size, alpha=alpha, beta=beta, k=k)
    except NoExactTranslation as exc:
        ui.error(f"no exact translation from {source} to {target}: {exc}")
        ctx.exit(1)
    except ParameterError as exc:
        raise click.UsageError(str(exc), ctx) from None
    if as_json or ctx.obj.get("json"):
        ui.write_data(json_text(document(**{"from": source, "to": target, "mode": mode,
                                            "params": result.params,
                                            "notes": list(result.notes)})))
        return
    text = " ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in result.params.items())
    ui.write_data(text + "\n")
    for note in result.notes:
        ui.note(note)
