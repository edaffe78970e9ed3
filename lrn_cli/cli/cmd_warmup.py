"""``lrn warm-up``: compile the kernels now, so that the first real run starts at once."""

from __future__ import annotations

import click

from lrn_cli.cli.options import CONVENTION_NAMES
from lrn_cli.cli.output import Ui, json_text
from lrn_cli.conventions import DEFAULT_CONVENTION, DEFAULTS

_MODES = ("across", "within")
_DTYPES = ("float32", "float64")
_LAYOUTS = ("NCHW", "NHWC", "image")


@click.command("warm-up", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mode", "modes", type=click.Choice(_MODES), multiple=True,
              help="Mode to compile for (repeat for several).  [default: across]")
@click.option("--dtype", "dtypes", type=click.Choice(_DTYPES), multiple=True,
              help="dtype LRN computes in (float16, integer and bool input: float32; "
              "repeat for several).  [default: float32]")
@click.option("--layout", "layouts", type=click.Choice(_LAYOUTS, case_sensitive=False),
              multiple=True,
              help="NCHW (channels first), NHWC (channels last) or image (what `lrn apply` "
              "does to a picture; repeat for several).  [default: NCHW and image]")
@click.option("--all", "everything", is_flag=True,
              help="Every mode, dtype and layout (and the gradient).")
@click.option("-n", "--size", type=click.IntRange(min=1), default=DEFAULTS.size,
              show_default=True,
              help="Window width (its class picks kernels: up to 4, 8, 32 taps, or more).")
@click.option("--beta", type=float, default=DEFAULTS.beta, show_default=True,
              help="Exponent beta (0.75, 0.5, 1, 0.25, 1.5 and 2 have kernels of their own).")
@click.option("--convention", type=click.Choice(CONVENTION_NAMES, case_sensitive=False),
              default=DEFAULT_CONVENTION, show_default=True,
              help="Convention (it places the window: see `lrn conventions`).")
@click.option("--backward", is_flag=True, help="Also the gradient (lrn_backward).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No notes or progress bar.")
@click.pass_context
def warm_up(ctx, modes, dtypes, layouts, everything, size, beta, convention, backward,
            as_json, quiet):
    """Compile lrn's kernels for this CPU into Numba's cache, ahead of a first run.

    A fresh install compiles its kernels the first time they run (seconds, once per
    install, CPU and variant); run this in a container build or a CI setup step to pay it
    there.  With a warm cache it only loads them (well under a second).  `lrn apply` does
    the same by itself before a first run's worker pool starts.

    \b
    Examples:
      lrn warm-up
      lrn warm-up --layout NHWC --dtype float64 --json
      lrn warm-up --all -q
    """
    from lrn_cli import warmup
    from lrn_cli.conventions import get_convention
    from lrn_cli.errors import LrnError
    from lrn_cli.schema import document

    ui = Ui(quiet=quiet)
    if everything:
        modes, dtypes, layouts, backward = _MODES, _DTYPES, _LAYOUTS, True
    try:
        convention = get_convention(convention).name
        plan = warmup.make_plan(modes or ("across",), dtypes or ("float32",),
                                [lay if lay == "image" else lay.upper()
                                 for lay in layouts] or ("NCHW", "image"),
                                size=size, beta=beta, convention=convention,
                                backward=backward)
        note = warmup.first_run_note(plan)
    except LrnError as exc:
        raise click.UsageError(str(exc), ctx) from None
    if note is not None:
        ui.note(note)
    if quiet or not ui.err.is_terminal:
        report = warmup.run_plan(plan)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn("warm-up"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), console=ui.err,
                      transient=True) as progress:
            task = progress.add_task("", total=len(plan.variants))

            def on_progress(done: int, total: int, label: str) -> None:
                progress.update(task, completed=done, description=label)

            report = warmup.run_plan(plan, on_progress)
    if as_json:
        ui.write_data(json_text(document(**report.as_dict())))
    else:
        count = len(report.variants)
        ui.info(f"{count} variant{'s' if count != 1 else ''} ready in {report.seconds:.1f} s "
                f"({report.compiled} kernels compiled, the rest loaded from the cache)")
