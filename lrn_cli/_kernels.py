"""Private Numba kernels: one family serves every convention and both modes.

Each kernel takes the resolved constants (window offsets ``lo``/``hi``, ``a'``, ``k'``,
``beta``), never a convention, so there is one compiled variant per dtype and layout.
Which kernel runs for which input is :mod:`lrn_cli.dispatch`'s table; this module gathers
the drivers it names:

==================================  =================================  ======================
driver                              what                               module
==================================  =================================  ======================
``across_rows``                     short windows, channel rows        :mod:`._kernels_across`
``across_rows_contiguous``          the same, C-contiguous             :mod:`._kernels_across`
``across_channels_last``            short windows, NHWC pixel rows     :mod:`._kernels_across`
``across_forward``                  any window, any strides            :mod:`._kernels_across`
``across_rows_backward``            gradient, channel rows             :mod:`._kernels_backward`
``across_rows_backward_contiguous`` gradient, C-contiguous rings       :mod:`._kernels_backward`
``across_channels_last_backward``   gradient, NHWC pixel rows          :mod:`._kernels_backward`
``across_backward``                 gradient, any window and strides   :mod:`._kernels_backward`
``within_forward``                  box sums in each plane             :mod:`._kernels_within`
``within_backward``                 their gradient                     :mod:`._kernels_within`
==================================  =================================  ======================

Their shared pieces (gain closed forms, summation trees, window sums, scratch loads) are in
:mod:`lrn_cli._kernel_parts`.

Design (see ``shared/performance-notes.md``):

* Window sums never subtract.  Short windows are summed directly; long ones use block
  prefix/suffix sums (van Herk/Gil-Werman for sums): ``S[i] = suffix[i] + prefix[i+m-1]``,
  O(1) per element whatever the size, with no cancellation.  Both sum in a fixed order that
  depends only on absolute positions along the summed axis.
* Work items are disjoint output blocks (``prange``), each with its own small scratch, so
  extra memory is a few blocks per thread, never a full-size temporary.
* ``D ** -beta`` has closed forms for the common betas (``pow`` costs ~10x the memory
  ceiling); each variant has its own loop because an ``if`` in the inner loop is not hoisted.
  They never form a power of ``D`` above 1 (``D^0.75`` is ``sqrt(D) * sqrt(sqrt(D))``, not
  ``sqrt(D * sqrt(D))``), so no intermediate overflows or underflows where the result does
  not: float32 inputs near 1e15, or tiny ones with ``k = 0``, stay exact.
* ``error_model="numpy"``: no zero-division checks (IEEE results, as the reference), and
  no fastmath, so NaN and Inf propagate exactly as in plain NumPy.
"""

from __future__ import annotations

from lrn_cli._kernels_across import (  # noqa: F401
    across_channels_last,
    across_forward,
    across_rows,
    across_rows_contiguous,
)
from lrn_cli._kernels_backward import (  # noqa: F401
    across_backward,
    across_channels_last_backward,
    across_rows_backward,
    across_rows_backward_contiguous,
)
from lrn_cli._kernels_within import within_backward, within_forward  # noqa: F401
