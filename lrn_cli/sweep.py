"""Hyper-parameter sweeps: apply LRN with several values of one parameter and compare.

``lrn sweep INPUT --param beta 0.25:1.5:6`` runs :func:`run_sweep` and prints one row per
value.  This module knows nothing of the command line.

Sweep specifications (:func:`parse_sweep`)
------------------------------------------
``start:stop:count``
    ``count`` values evenly spaced from ``start`` to ``stop``, both included
    (``0.25:1.5:6`` gives 0.25, 0.5, 0.75, 1, 1.25, 1.5).
``log:start:stop:count``
    ``count`` values evenly spaced on a log scale, both ends included (``log:1e-5:1e-2:4``
    gives 1e-05, 1e-04, 1e-03, 1e-02); ``start`` and ``stop`` must be positive.
``a,b,c``
    Exactly these values, in this order (a single value is allowed too).

``size`` values must be whole numbers ``>= 1`` (``1:9:5`` gives 1, 3, 5, 7, 9; ``3:8:4`` is
refused because it would give 4.667).  Every value is also checked against the convention
before anything runs (:func:`check_sweep`): Caffe, for instance, rejects even sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lrn_cli.errors import ParameterError

__all__ = [
    "SWEEP_PARAMS",
    "MAX_VALUES",
    "SweepRow",
    "parse_sweep",
    "check_sweep",
    "run_sweep",
    "value_text",
]

#: Parameters a sweep can vary.
SWEEP_PARAMS = ("size", "alpha", "beta", "k")
#: Most settings one sweep runs.
MAX_VALUES = 100


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"{text.strip()!r} in {spec!r} is not a number") from None
    if not math.isfinite(value):
        raise ParameterError(f"{text.strip()!r} in {spec!r} is not a finite number")
    return value


def _tidy(value: float) -> float:
    """Drop the last-bit noise of linspace/geomspace (``0.30000000000000004`` -> ``0.3``)."""
    return float(f"{value:.12g}")


def parse_sweep(param: str, spec: str) -> list[float] | list[int]:
    """Turn a sweep specification into the list of values to try.

    Parameters
    ----------
    param : {"size", "alpha", "beta", "k"}
        The parameter swept (``size`` values become ints).
    spec : str
        ``"start:stop:count"`` (linear, both ends included), ``"log:start:stop:count"``
        (log spacing) or ``"a,b,c"`` (explicit); see the module docstring.

    Returns
    -------
    list of float, or list of int for ``size``

    Raises
    ------
    ParameterError
        Unknown parameter, malformed spec, count outside 1..:data:`MAX_VALUES`, log spacing
        of non-positive ends, or sizes that are not whole numbers ``>= 1``.
    """
    name = str(param).strip().lower()
    if name not in SWEEP_PARAMS:
        raise ParameterError(f"cannot sweep {param!r}; choose one of {', '.join(SWEEP_PARAMS)}")
    text = str(spec).strip()
    log = text.lower().startswith("log:")
    body = text[4:] if log else text
    if not body:
        raise ParameterError(f"empty sweep {spec!r}; use start:stop:count or a,b,c")
    if ":" in body:
        parts = body.split(":")
        if len(parts) != 3 or "," in body:
            raise ParameterError(
                f"{spec!r} is not start:stop:count (e.g. 0.25:1.5:6, log:1e-5:1e-2:4) nor "
                "a list a,b,c"
            )
        start, stop = _number(parts[0], spec), _number(parts[1], spec)
        try:
            count = int(parts[2])
        except ValueError:
            raise ParameterError(f"count {parts[2].strip()!r} in {spec!r} is not a whole "
                                 "number") from None
        if not 1 <= count <= MAX_VALUES:
            raise ParameterError(f"count must be 1..{MAX_VALUES}, not {count} (in {spec!r})")
        values = _spaced(start, stop, count, log, spec)
    else:
        if log:
            raise ParameterError(f"log: takes start:stop:count, not a list ({spec!r})")
        items = [p for p in body.split(",")]
        if any(not p.strip() for p in items):
            raise ParameterError(f"empty value in {spec!r}")
        values = [_number(p, spec) for p in items]
        if len(values) > MAX_VALUES:
            raise ParameterError(f"at most {MAX_VALUES} values, not {len(values)}")
    if name == "size":
        return _sizes(values, spec)
    return values


def _spaced(start: float, stop: float, count: int, log: bool, spec: str) -> list[float]:
    import numpy as np

    if count == 1:
        if start != stop:
            raise ParameterError(f"count 1 needs start == stop (in {spec!r}); or give one value")
        return [start]
    if log:
        if start <= 0 or stop <= 0:
            raise ParameterError(f"log spacing needs positive ends (in {spec!r})")
        return [_tidy(v) for v in np.geomspace(start, stop, count)]
    return [_tidy(v) for v in np.linspace(start, stop, count)]


def _sizes(values: Sequence[float], spec: str) -> list[int]:
    sizes = []
    for v in values:
        if abs(v - round(v)) > 1e-9 * max(1.0, abs(v)):
            raise ParameterError(f"size must be a whole number; {spec!r} gives {v:g}")
        if round(v) < 1:
            raise ParameterError(f"size must be >= 1; {spec!r} gives {round(v)}")
        sizes.append(int(round(v)))
    return sizes


def value_text(param: str, value: float | int) -> str:
    """A swept value as people read it: ``5``, ``0.25``, ``1e-05``."""
    if param == "size":
        return str(int(value))
    return f"{value:g}"


def check_sweep(settings, param: str, values: Sequence[float | int]) -> None:
    """Check every setting of a sweep against its convention, before running any.

    Parameters
    ----------
    settings : lrn_cli.pipeline.Settings
        The fixed parameters (the swept one is replaced by each value).
    param : str
        The parameter swept.
    values : sequence
        From :func:`parse_sweep`.

    Raises
    ------
    ParameterError
        Listing every value the convention refuses, with its reason.
    """
    from lrn_cli.conventions import get_convention, resolve

    if param not in SWEEP_PARAMS:
        raise ParameterError(f"cannot sweep {param!r}; choose one of {', '.join(SWEEP_PARAMS)}")
    if not values:
        raise ParameterError("a sweep needs at least one value")
    conv = get_convention(settings.convention)
    bad = []
    for value in values:
        s = replace(settings, **{param: value})
        try:
            resolve(conv, s.mode, s.size, s.alpha, s.beta, s.k)
        except ParameterError as exc:
            bad.append(f"{param}={value_text(param, value)}: {exc}")
    if bad:
        raise ParameterError(f"{len(bad)} of {len(values)} values are invalid for the "
                             f"{conv.name} convention: " + "; ".join(bad))


@dataclass
class SweepRow:
    """LRN with one value of the swept parameter: the figures, and what the panel needs.

    Attributes
    ----------
    param : str
        The parameter swept.
    value : float or int
        Its value in this row.
    settings : lrn_cli.pipeline.Settings
        All parameters of this row.
    before : lrn_cli.stats.ArrayStats
        The input's statistics (the same object in every row).
    after : lrn_cli.stats.ArrayStats
        The output's statistics.
    divisor : lrn_cli.stats.DivisorStats
        Range of the divisor D and of the gain D^-beta.
    output : numpy.ndarray or None
        What ``keep`` extracted from the output (the panel's slice), else None.
    """

    param: str
    value: float | int
    settings: Any
    before: Any
    after: Any
    divisor: Any
    output: Any = None

    @property
    def label(self) -> str:
        """``"beta=0.5"``."""
        return f"{self.param}={value_text(self.param, self.value)}"

    def record(self) -> dict[str, Any]:
        """One flat, JSON-safe row: the settings, then :func:`lrn_cli.records.flat_record`
        (``in_<stat>``, ``out_<stat>``, ``divisor_<stat>``, ``gain_<stat>``)."""
        from lrn_cli.records import flat_record

        s = self.settings
        row: dict[str, Any] = {"param": self.param, "value": self.value, "mode": s.mode,
                               "convention": s.convention, "size": s.size, "alpha": s.alpha,
                               "beta": s.beta, "k": s.k}
        row.update(flat_record(self.before, self.after, self.divisor))
        return row

    def document(self) -> dict[str, Any]:
        """JSON for this row: value, settings, the output's figures (``out``, per channel
        too), ``divisor`` and ``gain`` (see :mod:`lrn_cli.records`)."""
        from lrn_cli.records import divisor_document, gain_document, stats_document

        s = self.settings
        return {"value": self.value,
                "settings": {"mode": s.mode, "convention": s.convention, "size": s.size,
                             "alpha": s.alpha, "beta": s.beta, "k": s.k},
                "out": stats_document(self.after),
                "divisor": divisor_document(self.divisor),
                "gain": gain_document(self.divisor)}


def run_sweep(array_item, settings, param: str, values: Sequence[float | int], *,
              keep: Callable[[Any], Any] | None = None,
              on_row: Callable[[SweepRow], None] | None = None) -> list[SweepRow]:
    """Apply LRN to one array once per value of ``param``; measure every output.

    Parameters
    ----------
    array_item : lrn_cli.pipeline.Item
        The array (``.array``) and its channel axis (``.channel_axis``).
    settings : lrn_cli.pipeline.Settings
        The fixed parameters.
    param : {"size", "alpha", "beta", "k"}
        The parameter to vary.
    values : sequence
        Its values (:func:`parse_sweep`); all are checked first (:func:`check_sweep`).
    keep : callable, optional
        Called with each output; what it returns is kept in :attr:`SweepRow.output` (copy a
        small slice: the full outputs are not kept, so memory stays at one output at a time).
    on_row : callable, optional
        Called with each row as soon as it is done (progress).

    Returns
    -------
    list of SweepRow
        In the order of ``values``.

    Raises
    ------
    ParameterError
        If a value is invalid for the convention, or the array for LRN (bad axis).
    """
    import warnings

    from lrn_cli.core import DtypeConversionWarning, lrn
    from lrn_cli.stats import array_stats, divisor_stats

    check_sweep(settings, param, values)
    x = array_item.array
    axis = array_item.channel_axis
    before = array_stats(x, axis)
    rows = []
    for value in values:
        s = replace(settings, **{param: value})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DtypeConversionWarning)
            y, d = lrn(x, **s.lrn_kwargs(), channel_axis=axis, return_divisor=True)
        divisor = divisor_stats(d, s.beta)
        del d
        after = array_stats(y, axis)
        kept = keep(y) if keep is not None else None
        del y
        row = SweepRow(param, value, s, before, after, divisor, kept)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows
