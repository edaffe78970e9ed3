"""Option bundles shared by several commands, written once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from lrn_cli.conventions import (
    CONVENTIONS,
    DEFAULT_CONVENTION,
    DEFAULTS,
    get_convention,
    resolve,
    size_from_radius,
)
from lrn_cli.errors import ParameterError

CONVENTION_NAMES = list(CONVENTIONS)


def _stack(*decorators: Callable) -> Callable:
    def apply(fn: Callable) -> Callable:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply


class ChannelAxis(click.ParamType):
    """An integer axis, or ``none`` (within mode, no channel axis)."""

    name = "AXIS|none"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "none":
            return "none"
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not an integer or 'none'", param, ctx)


lrn_params = _stack(
    click.option("--mode", type=click.Choice(["across", "within"]), default="across",
                 show_default=True,
                 help="across: window over neighbouring channels; within: size x size box over "
                 "the two spatial axes of each channel."),
    click.option("-n", "--size", type=click.IntRange(min=1), default=None,
                 help=f"Window width n.  [default: {DEFAULTS.size}]"),
    click.option("--depth-radius", type=click.IntRange(min=0), default=None,
                 help="TensorFlow-style radius r instead of --size (n = 2r+1)."),
    click.option("--alpha", type=float, default=None,
                 help=f"Scale alpha.  [default: {DEFAULTS.alpha:g}]"),
    click.option("--beta", type=float, default=None,
                 help=f"Exponent beta.  [default: {DEFAULTS.beta:g}]"),
    click.option("-k", "--k", "k", type=float, default=None,
                 help=f"Bias k.  [default: {DEFAULTS.k:g}]"),
    click.option("--convention", type=click.Choice(CONVENTION_NAMES, case_sensitive=False),
                 default=DEFAULT_CONVENTION, show_default=True,
                 help="Whose LRN to compute (see `lrn conventions`)."),
    click.option("--convention-defaults", is_flag=True,
                 help="Fill parameters not given from the convention's own defaults instead "
                 "of AlexNet's."),
)

read_options = _stack(
    click.option("--layout", default=None, metavar="LAYOUT",
                 help="Array layout: NCHW, NHWC, CHW, HWC, NC, NCL, NCDHW, HW... "
                 "[default: NCHW for 4-D, CHW for 3-D, NC (across) or HW (within) for 2-D]"),
    click.option("--channel-axis", type=ChannelAxis(), default=None,
                 help="Channel axis instead of --layout (negative counts from the end; "
                 "'none' in within mode)."),
    click.option("--key", default=None, metavar="NAME",
                 help="Only this array of an .npz (default: every numeric array)."),
    click.option("--range", "value_range", type=click.Choice(["unit", "byte", "raw"]),
                 default="unit", show_default=True,
                 help="Values LRN sees for images: unit = [0,1], byte = [0,255], raw = the "
                 "integer codes (0..65535 for 16-bit).  alpha's effect depends on it."),
)

common_output = _stack(
    click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout."),
    click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout."),
    click.option("-q", "--quiet", is_flag=True,
                 help="No notes or progress; errors are still printed."),
    click.option("--traceback", is_flag=True, help="Show Python tracebacks of errors."),
)


def settings_from(ctx: click.Context, *, mode, size, depth_radius, alpha, beta, k, convention,
                  convention_defaults):
    """Build pipeline Settings from the LRN options, validated against the convention.

    Bad combinations are usage errors (exit 2), raised before any input is read.
    """
    from lrn_cli.pipeline import Settings

    conv = get_convention(convention)
    size = size_option(ctx, size, depth_radius)
    base: dict[str, Any] = DEFAULTS.as_dict()
    if convention_defaults:
        for name, value in conv.defaults.items():
            if value is not None:
                base[name] = size_from_radius(int(value)) \
                    if (name == "size" and conv.size_is_radius) else value
    size = base["size"] if size is None else size
    alpha = base["alpha"] if alpha is None else alpha
    beta = base["beta"] if beta is None else beta
    k = base["k"] if k is None else k
    try:
        resolve(conv, mode, size, alpha, beta, k)
    except ParameterError as exc:
        raise click.UsageError(str(exc), ctx) from None
    return Settings(size=size, alpha=alpha, beta=beta, k=k, mode=mode, convention=conv.name)


def size_option(ctx: click.Context | None, size: int | None,
                depth_radius: int | None) -> int | None:
    """The window width of ``--size`` or ``--depth-radius`` (a usage error to give both)."""
    if size is not None and depth_radius is not None:
        raise click.UsageError("give --size or --depth-radius, not both", ctx)
    return size if depth_radius is None else size_from_radius(depth_radius)


def png_compression_option(fn: Callable) -> Callable:
    """``--png-compression LEVEL``: the zlib level of every PNG a command writes."""
    return click.option(
        "--png-compression", type=click.IntRange(0, 9), default=6, show_default=True,
        metavar="0-9",
        help="zlib level of PNG outputs and panels: 0 (none, fastest) to 9 (smallest); "
        "the pixels are the same at every level; 1 encodes several times faster than 6, "
        "into a larger file.")(fn)


def renamed(old: str, new: str, dest: str, **option_kwargs: Any) -> Callable:
    """Keep the old spelling ``old`` of the option ``new`` working for one release.

    The old name is a hidden option: its value goes to ``dest`` (the new option's
    parameter) and a deprecation note goes to stderr.  Giving both names is a usage error.
    Stack it under the command's ``@click.command`` like any option.
    """
    hidden_dest = "_renamed_" + old.lstrip("-").replace("-", "_")

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(hidden_dest, None)
            if value is not None:
                ctx = click.get_current_context()
                source = ctx.get_parameter_source(dest)
                if source is click.core.ParameterSource.COMMANDLINE:
                    raise click.UsageError(f"give {new} or {old} (its old name), not both", ctx)
                click.echo(f"warning: {old} is deprecated, use {new} (the old name goes in "
                           "the next release)", err=True)
                kwargs[dest] = value
            return fn(*args, **kwargs)

        return click.option(old, hidden_dest, hidden=True, default=None, expose_value=True,
                            **option_kwargs)(wrapper)

    return decorate


#: Every renamed option, old name -> new name (docs/schema.md's changelog lists them too).
RENAMED_OPTIONS = {
    "apply --channels": "--show-channels",
    "stats --channels": "--show-channels",
    "compare --channels": "--show-channels",
    "apply --format": "--output-suffix",
    "sweep --channel": "--panel-channel",
    "export --channels": "--channel-count",
}


def read_options_from(*, layout, channel_axis, key, value_range, dtype=None):
    """Build pipeline ReadOptions from the read options."""
    from lrn_cli.pipeline import ReadOptions

    given = channel_axis is not None
    axis = None if channel_axis == "none" else channel_axis
    if layout is not None and given:
        raise click.UsageError("give --layout or --channel-axis, not both")
    return ReadOptions(layout=layout, channel_axis=axis, channel_axis_given=given, key=key,
                       value_range=value_range, dtype=dtype)
