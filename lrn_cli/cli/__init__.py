"""The ``lrn`` command: a thin Click adapter over :mod:`lrn_cli`.

Subcommands live in their own modules and are imported only when used, so ``lrn --help`` and
``lrn --version`` never import Numba or Pillow.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from lrn_cli import __version__

COMMANDS = {
    "apply": ("lrn_cli.cli.cmd_apply", "apply"),
    "stats": ("lrn_cli.cli.cmd_stats", "stats"),
    "compare": ("lrn_cli.cli.cmd_compare", "compare"),
    "conventions": ("lrn_cli.cli.cmd_conventions", "conventions"),
    "sweep": ("lrn_cli.cli.cmd_sweep", "sweep"),
    "inspect": ("lrn_cli.cli.cmd_inspect", "inspect"),
    "norms": ("lrn_cli.cli.cmd_norms", "norms"),
    "export": ("lrn_cli.cli.cmd_export", "export"),
    "explain": ("lrn_cli.cli.cmd_explain", "explain"),
    "warm-up": ("lrn_cli.cli.cmd_warmup", "warm_up"),
}

EPILOG = """\b
Exit codes: 0 everything worked; 1 some input failed (the rest were done);
2 usage error (bad option or parameter); 130 interrupted.
Data (tables, JSON, CSV) goes to stdout; progress, notes and errors to stderr.
Shell completion: eval "$(_LRN_COMPLETE=bash_source lrn)" (zsh_source, fish_source)."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)


def _version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def ver(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    py = sys.version.split()[0]
    return (f"lrn {__version__}\nPython {py}\nNumPy {ver('numpy')}\nNumba {ver('numba')}\n"
            f"Pillow {ver('pillow')}\nClick {ver('click')}\nRich {ver('rich')}")


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EPILOG)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show lrn's, Python's, NumPy's, Numba's and "
              "Pillow's versions and exit.")
def cli() -> None:
    """Local Response Normalization (the AlexNet layer) for images and .npy tensors.

    Every framework's convention (PyTorch, TensorFlow, Caffe, ONNX, ...), exactly, in fast
    Numba kernels, with statistics that show what LRN did.

    \b
    Examples:
      lrn apply samples/arrays/conv1_relu_nchw.npy -o out.npy
      lrn apply photos/ -o normalized/ --mode within -n 5
      lrn stats out.npy --csv
      lrn compare ours.npy theirs.npy --rtol 1e-5
      lrn conventions translate --from tensorflow --to caffe --size 5 --alpha 2e-5
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; a closed stdout (``| head``) ends quietly."""
    try:
        cli.main(args=argv, prog_name="lrn", standalone_mode=True)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again.
    _silence_fd(sys.stdout)


def _silence_fd(stream) -> None:
    """Point ``stream``'s file descriptor at /dev/null (a closed pipe cannot fail twice)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):
        pass
