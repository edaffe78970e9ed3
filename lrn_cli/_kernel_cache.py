"""Numba's on-disk cache of the kernel modules, dropped when any of their sources changed.

Numba keys a cached kernel on its own source file only, so a driver whose helpers changed in
another kernel module would be loaded stale from its cache (the helpers are compiled into
it).  :func:`drop_stale_caches` removes the cache files of all these modules when any of
their sources changed since the cache was last checked: they recompile once.  It runs when
:mod:`lrn_cli._kernel_parts` is imported, the first thing every LRN kernel module imports,
and when :mod:`lrn_cli._stats_kernels` is, so no kernel is loaded from the cache before it,
whichever module is imported first (the public API, or a test or benchmark that imports a
kernel module directly).
"""

from __future__ import annotations

import hashlib
import os

#: The modules whose kernels call each other across files (or call helpers or read
#: constants of :data:`SOURCES`).
MODULES = ("_kernel_parts", "_kernels_across", "_kernels_backward", "_kernels_within",
           "_stats_kernels")
#: Every source compiled into those kernels: the modules and what they import.
SOURCES = ("_jit", "_intrinsics", "_stats_common", "_vector_width") + MODULES


#: Cache directories checked by this process (both the LRN and the statistics kernel
#: modules call :func:`drop_stale_caches` on import: the second call has nothing to do).
_CHECKED: set[str] = set()


def drop_stale_caches(cache_path: str | None) -> None:
    """Remove the cached kernels of :data:`MODULES` from ``cache_path`` (Numba's cache
    directory of the package) unless a stamp of the sizes and mtimes of :data:`SOURCES`
    says they were checked as they are; then write that stamp.  ``None``
    (``NUMBA_DISABLE_JIT``: nothing is cached) does nothing."""
    if cache_path is None or cache_path in _CHECKED:
        return
    _CHECKED.add(cache_path)
    here = os.path.dirname(os.path.abspath(__file__))
    parts = []
    for name in SOURCES:
        try:
            st = os.stat(os.path.join(here, f"{name}.py"))
        except OSError:
            return
        parts.append(f"{name} {st.st_size} {st.st_mtime_ns}")
    stamp = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    marker = os.path.join(cache_path, f"lrn-kernel-sources-{stamp}.stamp")
    if os.path.exists(marker):
        return
    try:
        os.makedirs(cache_path, exist_ok=True)
        for entry in os.listdir(cache_path):
            stale = entry.startswith(tuple(f"{m}." for m in MODULES)) and entry.endswith(
                (".nbi", ".nbc"))
            if stale or (entry.startswith("lrn-kernel-sources-") and entry.endswith(".stamp")):
                os.remove(os.path.join(cache_path, entry))
        with open(marker, "w", encoding="utf-8") as f:
            f.write("\n".join(parts) + "\n")
    except OSError:  # a read-only cache: Numba falls back or recompiles in memory
        pass
