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
