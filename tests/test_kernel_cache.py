"""The stale-cache drop (``lrn_cli._kernel_cache``): Numba keys a cached kernel on its own
source file only, so when any kernel module's source changes, the cached kernels of all of
them are removed before one is loaded, whichever kernel module is imported first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

_PRINT_CACHE = ("import importlib, sys; m = importlib.import_module(sys.argv[1]); "
                "from lrn_cli import _kernel_parts as p; print(p._scale_075.stats.cache_path)")


def _import(tree: Path, module: str) -> Path:
    """Import ``module`` from the copy of the package in ``tree`` in a fresh process (only
    that module: not ``lrn_cli._kernels``); return Numba's cache directory of the copy."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["PYTHONPATH"] = str(tree)
    out = subprocess.run([sys.executable, "-c", _PRINT_CACHE, module], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def test_a_changed_kernel_source_drops_every_kernel_modules_cache(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "lrn_cli", tree / "lrn_cli",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = _import(tree, "lrn_cli._kernels_within")
    assert len(list(cache.glob("lrn-kernel-sources-*.stamp"))) == 1
    fakes = [cache / "_kernels_backward._rows_backward_contiguous-1.py311.nbi",
             cache / "_kernel_parts._tree8-2.py311.1.nbc"]
    other = cache / "_image_kernels.unit_codes-3.py311.nbi"  # not a cross-file module
    for f in fakes + [other]:
        f.write_bytes(b"cached")
    _import(tree, "lrn_cli._kernels_across")  # nothing changed: the cache stays
    assert all(f.exists() for f in fakes + [other])
    parts = tree / "lrn_cli" / "_kernel_parts.py"
    st = parts.stat()
    os.utime(parts, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _import(tree, "lrn_cli._kernels_backward")  # a kernel module straight away
    assert not any(f.exists() for f in fakes)
    assert other.exists()
    assert len(list(cache.glob("lrn-kernel-sources-*.stamp"))) == 1


def test_a_changed_helper_source_drops_the_statistics_kernels_too(tmp_path):
    """The statistics' kernels compile in a prefetch of lrn_cli._intrinsics: a change there
    drops them (and the LRN kernels), also when lrn_cli._stats_kernels is the first kernel
    module a process imports."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "lrn_cli", tree / "lrn_cli",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = _import(tree, "lrn_cli._stats_kernels")
    fakes = [cache / "_stats_kernels._moments_blocks-1.py311.nbi",
             cache / "_kernels_within._planes_long-2.py311.1.nbc"]
    other = cache / "_image_kernels.unit_codes-3.py311.nbi"
    for f in fakes + [other]:
        f.write_bytes(b"cached")
    helper = tree / "lrn_cli" / "_intrinsics.py"
    st = helper.stat()
    os.utime(helper, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    out = subprocess.run(
        [sys.executable, "-c", "import lrn_cli._stats_kernels, sys; "
         "print('lrn_cli._kernel_parts' in sys.modules)"],
        env={**{k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"},
             "PYTHONPATH": str(tree)}, cwd=tree, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the statistics' own import ran the drop
    assert not any(f.exists() for f in fakes)
    assert other.exists()
    assert len(list(cache.glob("lrn-kernel-sources-*.stamp"))) == 1
