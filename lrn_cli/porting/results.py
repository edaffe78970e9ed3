"""The results of ``lrn explain`` (:mod:`lrn_cli.porting.explain`): a checked fit, a
no-effect finding, the explanation of one output and of two; ``as_dict`` gives the JSON of
``docs/schema.md`` (section explain)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lrn_cli.porting.semantics import Difference, Semantics


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True)
class Fit:
    """One LRN that was checked against the output."""

    semantics: Semantics
    max_rel_error: float
    max_ulps: int
    bound: str | None
    """``direct`` or ``running-sum``: the bound every element met (None: not met)."""
    bound_ratio: float
    """Largest error over its bound (``direct`` bound when met, else ``running-sum``)."""
    compared: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.semantics.as_dict(), "max_rel_error": _num(self.max_rel_error),
                "max_ulps": self.max_ulps, "bound": self.bound,
                "bound_ratio": _num(self.bound_ratio), "compared": self.compared}


@dataclass(frozen=True)
class NoEffect:
    """The output is the input times one constant (within a few ulps)."""

    gain: float
    """The constant: ``k'**-beta`` when ``a'*S`` is negligible (``(k' + a'*S)**-beta`` when
    ``S`` is the same everywhere)."""
    max_rel_error: float
    max_ulps: int
    alpha_beta_over_k_max: float | None
    """Upper bound on ``a'*beta/k'`` over the windows tried (None: unbounded)."""

    @property
    def identity(self) -> bool:
        return self.gain == 1.0

    def alpha_eff_max(self, beta: float = 0.75) -> float | None:
        """The bound on ``a'`` for this beta (``k' = gain**(-1/beta)``)."""
        if self.alpha_beta_over_k_max is None:
            return None
        return self.alpha_beta_over_k_max * self.gain ** (-1 / beta) / beta

    def as_dict(self) -> dict[str, Any]:
        return {"gain": self.gain, "identity": self.identity,
                "max_rel_error": _num(self.max_rel_error), "max_ulps": self.max_ulps,
                "alpha_beta_over_k_max": _num(self.alpha_beta_over_k_max),
                "alpha_eff_max": _num(self.alpha_eff_max(0.75)),
                "alpha_eff_max_assuming": {"beta": 0.75,
                                           "k_eff": _num(self.gain ** (-1 / 0.75))}}


@dataclass
class Explanation:
    """What explains one output (see the module docstring); ``as_dict`` is the JSON."""

    verdict: str
    fit: Fit | None = None
    alternatives: list[Fit] = field(default_factory=list)
    equivalents: dict[str, Any] | None = None
    unidentifiable: list[dict[str, Any]] = field(default_factory=list)
    no_effect: NoEffect | None = None
    cause: str | None = None
    notes: list[str] = field(default_factory=list)
    input: str | None = None
    output: str | None = None
    shape: tuple[int, ...] = ()
    dtype: str = ""
    tried: list[str] = field(default_factory=list)
    arrays: tuple[Any, Any] | None = field(default=None, repr=False)

    @property
    def explained(self) -> bool:
        return self.verdict in ("lrn", "no-effect")

    @property
    def exit_code(self) -> int:
        return 0 if self.explained else 1

    def as_dict(self) -> dict[str, Any]:
        return {"input_file": self.input, "output_file": self.output,
                "shape": list(self.shape),
                "dtype": self.dtype, "verdict": self.verdict,
                "fit": None if self.fit is None else self.fit.as_dict(),
                "alternatives": [a.as_dict() for a in self.alternatives],
                "equivalents": self.equivalents, "unidentifiable": self.unidentifiable,
                "no_effect": None if self.no_effect is None else self.no_effect.as_dict(),
                "cause": self.cause, "tried": self.tried, "notes": self.notes}


@dataclass
class PairExplanation:
    """Reference and candidate explained, and how they differ."""

    reference: Explanation
    candidate: Explanation
    differences: list[Difference]
    arithmetic: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def explained(self) -> bool:
        return self.reference.explained and self.candidate.explained

    @property
    def exit_code(self) -> int:
        return 0 if self.explained else 1

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference.as_dict(), "candidate": self.candidate.as_dict(),
                "differences": [d.as_dict() for d in self.differences],
                "same_semantics": self.explained and not self.differences,
                "arithmetic": self.arithmetic, "notes": self.notes}
