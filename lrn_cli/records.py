"""The statistics part of every JSON document, CSV row and manifest row ``lrn`` writes.

One naming scheme, defined in ``docs/schema.md`` and built only here:

* nested (JSON): ``"in"`` and ``"out"`` hold the statistics of the input and the output
  (:meth:`lrn_cli.stats.ArrayStats.as_dict`: ``shape``, ``dtype``, ``channel_axis``,
  ``overall``, ``channel_dominance``, ``channels``); ``"divisor"`` and ``"gain"`` hold
  ``{"min", "max", "mean"}`` of the divisor ``D = k + a'S`` and of the gain ``D^-beta``;
* flat (CSV, manifests, sweep rows): the JSON path joined with ``_``, the ``overall`` or
  ``channels[i]`` level becoming the row's ``scope``: ``in.overall.mean`` -> ``in_mean``,
  ``out.channel_dominance`` -> ``out_channel_dominance``, ``gain.max`` -> ``gain_max``.

Paths are never built here (the command line names them ``file``); this module knows
nothing of the command line.
"""

from __future__ import annotations

from typing import Any

from lrn_cli.stats import STAT_NAMES, ArrayStats, DivisorStats, _json_float

__all__ = [
    "CHANNEL_FIELDS",
    "FLAT_FIELDS",
    "divisor_document",
    "flat_record",
    "gain_document",
    "scope_rows",
    "stats_document",
    "stats_scope_rows",
]

#: The figures of one channel (or of the whole array), in column order.
CHANNEL_FIELDS: tuple[str, ...] = (*STAT_NAMES, "nonfinite", "count")

#: The columns of :func:`flat_record` (and of every row of :func:`scope_rows`), in order.
FLAT_FIELDS: tuple[str, ...] = (
    *(f"{side}_{name}" for name in CHANNEL_FIELDS for side in ("in", "out")),
    "in_channel_dominance",
    "out_channel_dominance",
    "divisor_min",
    "divisor_max",
    "divisor_mean",
    "gain_min",
    "gain_max",
    "gain_mean",
)


def _value(v: Any) -> Any:
    return _json_float(v) if isinstance(v, float) else v


def stats_document(stats: ArrayStats | None) -> dict[str, Any] | None:
    """``"in"``/``"out"``/``"stats"`` of a JSON document: :meth:`ArrayStats.as_dict`."""
    return None if stats is None else stats.as_dict()


def divisor_document(divisor: DivisorStats | None) -> dict[str, Any] | None:
    """``"divisor"`` of a JSON document: ``{"min", "max", "mean"}`` of ``D = k + a'S``."""
    if divisor is None:
        return None
    return {"min": _value(divisor.d_min), "max": _value(divisor.d_max),
            "mean": _value(divisor.d_mean)}


def gain_document(divisor: DivisorStats | None) -> dict[str, Any] | None:
    """``"gain"`` of a JSON document: ``{"min", "max", "mean"}`` of ``D^-beta``."""
    if divisor is None:
        return None
    return {"min": _value(divisor.gain_min), "max": _value(divisor.gain_max),
            "mean": _value(divisor.gain_mean)}


def _channel_pair(before: Any, after: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for name in CHANNEL_FIELDS:
        rec[f"in_{name}"] = _value(getattr(before, name))
        rec[f"out_{name}"] = _value(getattr(after, name))
    return rec


def _dominance(st: ArrayStats) -> float | None:
    return None if st.channel_dominance is None else _json_float(st.channel_dominance)


def flat_record(before: ArrayStats, after: ArrayStats,
                divisor: DivisorStats | None) -> dict[str, Any]:
    """Whole-array figures as one flat, JSON-safe dict with the keys of :data:`FLAT_FIELDS`.

    Every key is always there (None when it does not apply: no channel axis, no divisor),
    so rows of different files share their columns.
    """
    rec = _channel_pair(before.overall, after.overall)
    rec["in_channel_dominance"] = _dominance(before)
    rec["out_channel_dominance"] = _dominance(after)
    div = divisor_document(divisor) or {}
    gain = gain_document(divisor) or {}
    for stat in ("min", "max", "mean"):
        rec[f"divisor_{stat}"] = div.get(stat)
    for stat in ("min", "max", "mean"):
        rec[f"gain_{stat}"] = gain.get(stat)
    return rec


def scope_rows(before: ArrayStats, after: ArrayStats,
               divisor: DivisorStats | None) -> list[dict[str, Any]]:
    """One row per scope: ``"all"`` (:func:`flat_record`), then ``"c0"``, ``"c1"``, ...

    Channel rows have the same keys; whole-array figures (dominance, divisor, gain) are None
    there.
    """
    if len(before.channels) != len(after.channels):
        from lrn_cli.errors import ParameterError

        raise ParameterError(f"cannot compare {len(before.channels)} input channels "
                             f"with {len(after.channels)} output channels")
    rows = [{"scope": "all", **flat_record(before, after, divisor)}]
    for i, (b, a) in enumerate(zip(before.channels, after.channels, strict=True)):
        row = {"scope": f"c{i}", **dict.fromkeys(FLAT_FIELDS)}
        row.update(_channel_pair(b, a))
        rows.append(row)
    return rows


def stats_scope_rows(stats: ArrayStats) -> list[dict[str, Any]]:
    """``lrn stats`` rows: ``scope``, the :data:`CHANNEL_FIELDS`, ``channel_dominance``
    (the whole array's, None in channel rows)."""
    scopes = [("all", stats.overall)] + [(f"c{i}", c) for i, c in enumerate(stats.channels)]
    rows = []
    for scope, st in scopes:
        row: dict[str, Any] = {"scope": scope}
        row.update({name: _value(getattr(st, name)) for name in CHANNEL_FIELDS})
        row["channel_dominance"] = _dominance(stats) if scope == "all" else None
        rows.append(row)
    return rows
