"""``lrn apply --engine dask``: each input through a Dask cluster (extra ``lrn-cli[dask]``)."""

from __future__ import annotations

from lrn_cli.cli.output import Ui


def run_dask(ui: Ui, inputs: list[str], output: str | None, settings, ropts, wopts,
             scheduler: str | None) -> int:
    """``lrn apply --engine dask``: each input through a Dask cluster, written to .zarr/.npy."""
    from lrn_cli import batch
    from lrn_cli.errors import LrnError

    try:
        from lrn_cli import dask as lrn_dask
    except ImportError:  # pragma: no cover - depends on the environment
        ui.error("the dask engine needs the dask extra: pip install 'lrn-cli[dask]'")
        return 2
    try:
        import distributed  # noqa: F401
        import zarr  # noqa: F401
    except ImportError:
        ui.error("the dask engine needs the dask extra: pip install 'lrn-cli[dask]'")
        return 2
    if output is None:
        ui.error("--engine dask needs -o (a .zarr or .npy path, or a folder)")
        return 2
    sources, problems = batch.discover(inputs, patterns=("*.npy", "*.zarr"))
    jobs, plan_problems = batch.plan(sources, output, inputs=inputs)
    report = batch.Report()
    for problem in problems + plan_problems:
        ui.error(str(problem))
        report.failed += 1
    client = lrn_dask.client_for(scheduler)
    try:
        ui.note(f"dask: {client.dashboard_link or client.scheduler.address}")
        for job in jobs:
            try:
                darr = lrn_dask.open_input(job.source, key=ropts.key)
                from lrn_cli.layouts import resolve_layout

                _, axis, assumed = resolve_layout(
                    darr.ndim, settings.mode, ropts.layout, ropts.channel_axis,
                    channel_axis_given=ropts.channel_axis_given)
                if assumed:
                    ui.note(f"{job.source}: assumed the default layout for a {darr.ndim}-D "
                            "array; use --layout to change")
                result = lrn_dask.lrn(darr, **settings.lrn_kwargs(), channel_axis=axis)
                if job.output is None:  # -o was checked above: every job has an output
                    raise LrnError(f"{job.source}: no output")
                lrn_dask.store_output(result, job.output, overwrite=wopts.overwrite)
                report.processed += 1
                ui.info(f"{job.source} -> {job.output} ({'x'.join(map(str, darr.shape))}, "
                        f"{darr.numblocks} chunks)")
            except LrnError as exc:
                report.failed += 1
                ui.error(str(exc))
    finally:
        client.close()
    report.finish()
    ui.line(str(report))
    return report.return_code
