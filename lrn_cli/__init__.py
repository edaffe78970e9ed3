"""lrn: Local Response Normalization in every framework's convention, in fast Numba kernels.

>>> import numpy as np
>>> from lrn_cli import lrn
>>> x = np.ones((1, 8, 4, 4), dtype=np.float32)                  # NCHW
>>> y = lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0, convention="pytorch")
>>> y.shape, y.dtype, bool(np.all(y < x))
((1, 8, 4, 4), dtype('float32'), True)

Importing this package is cheap: the kernels (and Numba) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "lrn": "lrn_cli.core",
    "lrn_backward": "lrn_cli.core",
    "lrn_divisor": "lrn_cli.core",
    "set_threads": "lrn_cli.core",
    "DtypeConversionWarning": "lrn_cli.core",
    "reference_lrn": "lrn_cli.reference",
    "reference_lrn_backward": "lrn_cli.reference",
    "reference_divisor": "lrn_cli.reference",
    "CONVENTIONS": "lrn_cli.conventions",
    "Convention": "lrn_cli.conventions",
    "get_convention": "lrn_cli.conventions",
    "translate": "lrn_cli.conventions",
    "LrnError": "lrn_cli.errors",
    "ParameterError": "lrn_cli.errors",
    "InputError": "lrn_cli.errors",
    "OutputError": "lrn_cli.errors",
    "normalizations": "lrn_cli.norms",
    "inspect_model": "lrn_cli.porting.inspect",
    "export": "lrn_cli.porting.export",
    "explain": "lrn_cli.porting.explain",
    "warm_up": "lrn_cli.warmup",
}

__all__ = [
    "CONVENTIONS",
    "Convention",
    "DtypeConversionWarning",
    "InputError",
    "LrnError",
    "OutputError",
    "ParameterError",
    "__version__",
    "explain",
    "export",
    "get_convention",
    "inspect_model",
    "lrn",
    "lrn_backward",
    "lrn_divisor",
    "normalizations",
    "reference_divisor",
    "reference_lrn",
    "reference_lrn_backward",
    "set_threads",
    "translate",
    "warm_up",
]

if TYPE_CHECKING:
    from lrn_cli.conventions import CONVENTIONS, Convention, get_convention, translate
    from lrn_cli.core import (
        DtypeConversionWarning,
        lrn,
        lrn_backward,
        lrn_divisor,
        set_threads,
    )
    from lrn_cli.errors import InputError, LrnError, OutputError, ParameterError
    from lrn_cli.norms import normalizations
    from lrn_cli.porting.explain import explain
    from lrn_cli.porting.export import export
    from lrn_cli.porting.inspect import inspect_model
    from lrn_cli.reference import reference_divisor, reference_lrn, reference_lrn_backward
    from lrn_cli.warmup import warm_up


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'lrn_cli' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
