"""What the benchmark scripts share: progress on stderr and a description of the machine.

Imported by ``bench_core.py``, ``bench_batch.py`` and ``bench_stream.py`` (run as scripts, so
this folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import sys


def log(msg: str) -> None:
    """Progress on standard error (the tables go to standard output)."""
    print(msg, file=sys.stderr, flush=True)


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def last_level_cache_bytes(default: int = 32 << 20) -> int:
    """Size of the largest CPU cache (sysfs), else ``default``."""
    sizes = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = os.listdir(base)
    except OSError:
        return default
    for entry in entries:
        try:
            with open(os.path.join(base, entry, "size"), encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=default)


class CacheFlusher:
    """Callable that pushes every array out of the CPU caches, by reading and writing a
    buffer three times the last-level cache (an untimed ``setup`` between timed calls).

    Timing ``np.copyto`` of an array that fits the last-level cache, call after call,
    measures the cache, not memory: the flushed timing is the memory-bandwidth ceiling.
    """

    def __init__(self) -> None:
        import numpy as np

        self.cache_bytes = last_level_cache_bytes()
        self._buf = np.ones(3 * self.cache_bytes // 8, dtype=np.float64)

    def __call__(self) -> None:
        import numpy as np

        np.add(self._buf, 1.0, out=self._buf)


class ThreadWaker:
    """Wake the thread pools a timed call is about to use, untimed, right before it.

    After the pause :func:`bench_core.measure_rounds` makes between calls (so that one
    call's spinning OpenMP workers do not slow the next call's threads), those workers are
    asleep, and on some VMs waking a sleeping vCPU costs milliseconds: on session 13's Intel
    VM, ``lrn(mode="within", out=)`` on conv1 took a median 15.5 ms (minimum 5.1) when
    called 20 ms after the previous call, against 4.5 ms back to back.  ``numba()`` runs a
    parallel no-op on every Numba thread; ``stats()`` holds every thread of the statistics'
    pool at a barrier once.  Either leaves that pool's threads awake (spinning or just
    returned), as they are for calls made back to back.
    """

    def __init__(self) -> None:
        import numba
        import numpy as np

        @numba.njit(parallel=True)
        def _touch(buf):
            for i in numba.prange(buf.shape[0]):
                buf[i] = buf[i] + 1.0

        self._touch = _touch
        self._buf = np.zeros(64 * max(1, numba.get_num_threads()))
        _touch(self._buf)

    def numba(self) -> None:
        self._touch(self._buf)

    def stats(self) -> None:
        import threading

        import numba
        import numpy as np

        from lrn_cli import _stats_kernels

        threads = numba.get_num_threads()
        if threads < 2:
            return
        barrier = threading.Barrier(threads)
        _stats_kernels._in_threads(lambda c0, c1, out: barrier.wait(), threads,
                                   part=np.empty(0))
