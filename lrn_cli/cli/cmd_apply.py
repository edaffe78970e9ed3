"""``lrn apply``: normalize files and folders, print what LRN did."""

from __future__ import annotations

import os
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
from lrn_cli.cli.output import Ui, check_formats

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "M": 2**20, "MB": 2**20, "G": 2**30,
          "GB": 2**30, "T": 2**40, "TB": 2**40}


def parse_size(text: str) -> int:
    """'256MB' -> bytes (binary units); a usage error when malformed."""
    import re

    bad = click.BadParameter(f"{text!r} is not a size like 256MB or 2GB",
                             param_hint="--stream-threshold")
    # digits with at most one decimal point ("1.5", "2.", ".5"), then an optional unit
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else None
    if not m or unit not in _UNITS:
        raise bad
    try:
        return int(float(m.group(1)) * _UNITS[unit])
    except (ValueError, OverflowError):  # e.g. hundreds of digits: float() gives inf
        raise bad from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", default=None, metavar="PATH",
              help="Output file (one input) or folder (several inputs, or a folder).  The "
              "suffix picks the format: .npy/.npz raw floats, .png/.tif/.jpg/... an image.  "
              "'-' writes .npy to stdout.  Without -o nothing is written.")
@lrn_params
@read_options
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
              help="Compute in this dtype (default: float32 stays float32, float64 stays "
              "float64, integers become float32).")
@click.option("--rescale", type=click.Choice(["minmax", "percentile", "none"]),
              default="minmax", show_default=True,
              help="How image outputs are mapped to the displayable range: stretch min..max, "
              "stretch the 1st..99th percentiles, or none (keep the input's scale, clip).")
@click.option("--global-rescale", is_flag=True,
              help="Rescale all channels together (default: each channel on its own).")
@click.option("--bits", type=click.Choice(["8", "16", "32"]), default="8", show_default=True,
              help="Image output depth: 8, 16 (PNG/TIFF) or 32 (float gray TIFF).")
@click.option("--output-suffix", "fmt", default=None, metavar="EXT",
              help="Output suffix for folder outputs (default: .npy/.npz for arrays, .png for "
              "images).")
@renamed("--format", "--output-suffix", "fmt", metavar="EXT")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (never an input).")
@click.option("--skip-existing", is_flag=True,
              help="Skip inputs whose output exists (finish an interrupted run).")
@click.option("--dry-run", is_flag=True, help="Print 'input -> output' and write nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, envvar="LRN_JOBS",
              help="Files processed in parallel (default: all cores; env LRN_JOBS).")
@click.option("--glob", "patterns", multiple=True, metavar="PATTERN",
              help="Only files matching (in folders; repeatable).  Default: arrays and images.")
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Skip files matching (in folders; repeatable).")
@click.option("--allow-input-tree", is_flag=True,
              help="Allow the output folder inside an input folder.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed input.")
@click.option("--manifest", default=None, metavar="FILE.csv|FILE.jsonl",
              help="Write one row per input, in input order: status, output, error, "
              "statistics (fields: docs/schema.md).  An existing file is kept unless "
              "--overwrite (or --skip-existing, which rewrites it).")
@click.option("--stats-out", default=None, metavar="FILE.csv|FILE.json",
              help="Also write the statistics table to this file (an existing one only with "
              "--overwrite or --skip-existing).")
@click.option("--panel", default=None, metavar="FILE.png",
              help="Write a picture: input, output, divisor heat map and histograms "
              "(one input).")
@click.option("--stream/--no-stream", default=None,
              help="Process .npy inputs slab by slab along the first axis with bounded memory "
              "(default: when larger than --stream-threshold).")
@click.option("--stream-threshold", default="256MB", show_default=True, metavar="SIZE",
              help="Stream .npy inputs larger than this (e.g. 512MB, 2GB).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
              show_default=True,
              help="local: this process (and -j worker processes); dask: a Dask cluster, for "
              ".zarr stores and .npy beyond one machine (needs lrn-cli[dask]).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address (tcp://host:8786); default: a LocalCluster.")
@click.option("--show-channels", "max_channels", type=click.IntRange(min=0), default=8,
              show_default=True, metavar="N", help="Channels shown in the per-channel table.")
@renamed("--channels", "--show-channels", "max_channels", type=click.IntRange(min=0))
@png_compression_option
@common_output
@click.pass_context
def apply(ctx, inputs, output, mode, size, depth_radius, alpha, beta, k, convention,
          convention_defaults, layout, channel_axis, key, value_range, dtype, rescale,
          global_rescale, bits, fmt, overwrite, skip_existing, dry_run, jobs, patterns,
          exclude, allow_input_tree, fail_fast, manifest, stats_out, panel, stream,
          stream_threshold, engine, scheduler, max_channels, png_compression, as_json, as_csv,
          quiet, traceback):
    """Apply LRN to arrays (.npy, .npz) and images, and compare input with output.

    INPUT is a file, a folder (searched recursively) or '-' for stdin.  A 4-D array is
    taken as NCHW and a 3-D one as CHW unless --layout says otherwise; images are height x
    width x channels, gray stays gray, RGB stays RGB, alpha passes through untouched.

    After applying, a table compares input and output (stdout): mean, std, min, max, RMS
    contrast (std / mean |x|), Michelson contrast ((max|x| - min|x|) / (max|x| + min|x|)),
    Hoyer sparsity ((sqrt(n) - L1/L2) / (sqrt(n) - 1)), channel dominance (per pixel, the
    largest |value| across channels over their sum, averaged) and the range of the divisor
    D = k + a'S and of the gain D^-beta.

    \b
    Examples:
      lrn apply conv1.npy -o conv1_lrn.npy
      lrn apply photo.jpg -o photo_lrn.png --mode within -n 7 --range byte
      lrn apply photos/ -o out/ -j 4 --manifest out/manifest.csv
      lrn apply acts.npy --convention tensorflow --depth-radius 2 --alpha 2e-5 --layout NHWC
    """
    from lrn_cli.cli.run import ApplyRun

    fmt_choice = check_formats(ctx, json=as_json, csv=as_csv)
    if overwrite and skip_existing:
        raise click.UsageError("use --overwrite or --skip-existing, not both", ctx)
    if inputs.count("-") > 1:
        raise click.UsageError("'-' (stdin) can be given once", ctx)
    if output == "-" and (len(inputs) != 1):
        raise click.UsageError("-o - (stdout) takes exactly one input", ctx)
    if stats_out and not stats_out.lower().endswith((".csv", ".json")):
        raise click.BadParameter("must end in .csv or .json", param_hint="--stats-out")
    if manifest and not manifest.lower().endswith((".csv", ".jsonl")):
        raise click.BadParameter("must end in .csv or .jsonl", param_hint="--manifest")
    if manifest and stats_out and os.path.abspath(manifest) == os.path.abspath(stats_out):
        raise click.UsageError("--manifest and --stats-out name the same file", ctx)
    settings = settings_from(ctx, mode=mode, size=size, depth_radius=depth_radius, alpha=alpha,
                             beta=beta, k=k, convention=convention,
                             convention_defaults=convention_defaults)
    from dataclasses import replace

    ropts = read_options_from(layout=layout, channel_axis=channel_axis, key=key,
                              value_range=value_range, dtype=dtype)
    ropts = replace(ropts, stream={None: "auto", True: "always", False: "never"}[stream],
                    stream_threshold=parse_size(stream_threshold))
    from lrn_cli.pipeline import WriteOptions

    wopts = WriteOptions(rescale=rescale, per_channel=not global_rescale, bits=int(bits),
                         overwrite=overwrite, png_compression=png_compression)
    ui = Ui(quiet=quiet, traceback=traceback)
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler needs --engine dask", ctx)
    if engine == "dask":
        from lrn_cli.cli.dask_run import run_dask

        ctx.exit(run_dask(ui, list(inputs), output, settings, ropts, wopts, scheduler))
    run = ApplyRun(ui=ui, settings=settings, ropts=ropts, wopts=wopts,
                   workers=jobs or os.cpu_count() or 1, fmt=fmt_choice,
                   max_channels=max_channels)
    code = run.execute(list(inputs), output, out_suffix=fmt, skip_existing=skip_existing,
                       dry_run=dry_run, patterns=patterns, exclude=exclude,
                       allow_input_tree=allow_input_tree, fail_fast=fail_fast,
                       manifest=manifest, stats_out=stats_out, panel=panel)
    sys.stdout.flush()
    ctx.exit(code)

