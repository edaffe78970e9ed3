"""AlexNet's defaults and the radius rule have one home (``lrn_cli.conventions``): every entry
point takes its defaults from there."""

from __future__ import annotations

import inspect

import pytest

from lrn_cli.conventions import (
    CONVENTIONS,
    DEFAULTS,
    radius_from_size,
    settings_text,
    size_from_radius,
    window_size,
)
from lrn_cli.errors import ParameterError


def _entry_points():
    from lrn_cli import core, dask, norms, reference, streaming
    from lrn_cli.porting import export

    return [core.lrn, core.lrn_divisor, core.lrn_backward, reference.reference_lrn,
            reference.reference_divisor, reference.reference_lrn_backward, dask.lrn,
            streaming.stream_npy, norms.normalizations, export.export, export.semantics_from]


@pytest.mark.parametrize("func", _entry_points(), ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_every_entry_point_defaults_to_alexnet(func):
    params = inspect.signature(func).parameters
    for name in ("alpha", "beta", "k"):
        assert params[name].default == getattr(DEFAULTS, name), (func, name)
    # size: the width itself, or None meaning DEFAULTS.size (core._check_params says so)
    assert params["size"].default in (None, DEFAULTS.size)


def test_defaults_are_alexnets_and_the_default_conventions():
    assert DEFAULTS.as_dict() == {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
    assert CONVENTIONS["default"].defaults == DEFAULTS.as_dict()
    note = next(n for n in CONVENTIONS["default"].notes if n.startswith("defaults are"))
    assert note == (f"defaults are AlexNet's (n={DEFAULTS.size}, alpha=1e-4, "
                    f"beta={DEFAULTS.beta:g}, k={DEFAULTS.k:g})")


def test_pipeline_and_cli_defaults():
    import click

    from lrn_cli.cli.options import settings_from
    from lrn_cli.pipeline import Settings

    s = Settings()
    assert (s.size, s.alpha, s.beta, s.k) == (DEFAULTS.size, DEFAULTS.alpha, DEFAULTS.beta,
                                              DEFAULTS.k)
    with click.Context(click.Command("x")) as ctx:
        cli = settings_from(ctx, mode="across", size=None, depth_radius=None, alpha=None,
                            beta=None, k=None, convention="default",
                            convention_defaults=False)
    assert cli == s
    assert s.text() == "across, default, n=5, alpha=0.0001, beta=0.75, k=2"
    assert s.text(omit="beta") == "across, default, n=5, alpha=0.0001, k=2"


def test_the_radius_rule():
    assert [size_from_radius(r) for r in range(4)] == [1, 3, 5, 7]
    assert [radius_from_size(n) for n in (1, 3, 5, 7)] == [0, 1, 2, 3]
    assert window_size(None, 2) == 5 and window_size(5, 2) == 5 and window_size(4, None) == 4
    with pytest.raises(ParameterError, match="not both"):
        window_size(4, 2)
    assert settings_text("within", "caffe", 3, 1e-4, 0.75, 1.0) == \
        "within, caffe, n=3, alpha=0.0001, beta=0.75, k=1"


def test_depth_radius_everywhere_gives_the_same_width():
    import numpy as np

    from lrn_cli import lrn
    from lrn_cli.porting.export import semantics_from

    x = np.random.default_rng(0).random((1, 9, 3, 3), dtype=np.float32)
    assert np.array_equal(lrn(x, depth_radius=3), lrn(x, size=7))
    sem, _ = semantics_from("tensorflow", depth_radius=3)
    assert (sem.lo, sem.hi) == (3, 3)


def test_public_signatures_take_lrns_keywords():
    """``lrn`` has no private parameter; its Dask and streaming forms take its keywords."""
    from lrn_cli import core, dask, streaming

    lrn_params = inspect.signature(core.lrn).parameters
    assert not [name for name in lrn_params if name.startswith("_")]
    shared = {"size", "alpha", "beta", "k", "mode", "convention", "depth_radius"}
    assert shared <= set(lrn_params)
    assert shared | {"channel_axis"} <= set(inspect.signature(dask.lrn).parameters)
    stream = inspect.signature(streaming.stream_npy).parameters
    assert shared <= set(stream) and "lrn_kwargs" not in stream
    for name in shared:
        assert stream[name].default == lrn_params[name].default, name


def test_output_error_is_exported():
    import lrn_cli
    from lrn_cli.errors import LrnError, OutputError

    assert lrn_cli.OutputError is OutputError and "OutputError" in lrn_cli.__all__
    assert issubclass(OutputError, LrnError)
