"""LRN over Dask arrays, for activations larger than one machine (extra ``lrn-cli[dask]``).

Exact in both modes and bit-identical to :func:`lrn_cli.lrn` on the whole array:

* chunks along axes LRN does not window (samples; spatial axes across channels; channels
  within) need no halo;
* chunks along the windowed axes get a halo of ``max(lo, hi)`` with ``boundary="none"``
  (the array's own edges stay edges, as zero padding requires), and every chunk tells the
  kernel where it starts, so the block sums are anchored to absolute positions and add the
  same numbers in the same order as the in-memory run.

Workers import the kernels from the installed package, so Numba loads its cache (or
compiles) once per worker process, not once per task.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from lrn_cli.conventions import DEFAULT_CONVENTION, DEFAULTS, Convention, resolve
from lrn_cli.core import Mode, _check_params, normalize_axis, result_dtype, spatial_axes
from lrn_cli.errors import ParameterError


def _block_lrn(x: np.ndarray, *, starts, halo, lrn_kwargs, block_info=None) -> np.ndarray:
    from lrn_cli.core import _lrn_at

    loc = block_info[0]["chunk-location"]
    origin = tuple(max(0, int(starts[ax][loc[ax]]) - halo.get(ax, 0))
                   for ax in range(x.ndim))
    if threading.current_thread() is not threading.main_thread():
        # a Dask thread pool already runs one task per core: one Numba thread per task
        import numba

        numba.set_num_threads(1)
    # a contiguous block keeps to the kernel variants the cache already holds
    return _lrn_at(np.ascontiguousarray(x), origin, **lrn_kwargs)


def lrn(darr: Any, size: int | None = None, alpha: float = DEFAULTS.alpha,
        beta: float = DEFAULTS.beta, k: float = DEFAULTS.k, *, mode: Mode = "across",
        convention: str | Convention = DEFAULT_CONVENTION, channel_axis: int | None = 1,
        depth_radius: int | None = None) -> Any:
    """:func:`lrn_cli.lrn` for a ``dask.array.Array`` (lazy; call ``.compute()`` or store).

    Parameters are those of :func:`lrn_cli.lrn` (``out``, ``return_divisor`` and
    ``divisor_out`` excepted: the result is a lazy array).  Chunks smaller than the halo are
    merged first (as ``map_overlap`` requires); any chunking gives the same bits.
    """
    import dask.array as da

    if not isinstance(darr, da.Array):
        darr = da.asarray(darr)
    if darr.dtype == object:
        raise ParameterError("object arrays are not supported")
    rdtype = result_dtype(darr.dtype)
    size = _check_params(size, depth_radius)
    r = resolve(convention, mode, size, alpha, beta, k)
    ndim = darr.ndim
    axis = normalize_axis(channel_axis, ndim)
    if mode == "across":
        if axis is None:
            raise ParameterError("across-channel mode needs a channel axis")
        windowed: tuple[int, ...] = (axis,)
    else:
        windowed = spatial_axes(ndim, axis)
    halo = max(r.lo, r.hi)
    depth = {ax: min(halo, darr.shape[ax]) if len(darr.chunks[ax]) > 1 else 0
             for ax in windowed}
    depth = {ax: d for ax, d in depth.items() if d > 0}
    if depth:
        chunks = da.overlap.ensure_minimum_chunksize
        new = tuple(chunks(depth[ax], darr.chunks[ax]) if ax in depth else darr.chunks[ax]
                    for ax in range(ndim))
        if new != darr.chunks:
            darr = darr.rechunk(new)
    starts = tuple(np.concatenate(([0], np.cumsum(c)[:-1])) for c in darr.chunks)
    lrn_kwargs = {"size": size, "alpha": alpha, "beta": beta, "k": k, "mode": mode,
                  "convention": convention, "channel_axis": axis}
    kwargs = {"starts": starts, "halo": depth, "lrn_kwargs": lrn_kwargs}
    meta = np.empty((0,) * ndim, dtype=rdtype)
    if not depth:
        return darr.map_blocks(_block_lrn, dtype=rdtype, meta=meta, **kwargs)
    return da.map_overlap(_block_lrn, darr, depth=depth, boundary="none", trim=True,
                          allow_rechunk=False, dtype=rdtype, meta=meta, **kwargs)


def open_input(path: str, *, key: str | None = None, chunk_bytes: int = 64 * 2**20):
    """A lazy Dask array for a ``.zarr`` store (array, or ``key`` in a group) or a ``.npy``."""
    import os

    import dask.array as da

    from lrn_cli.errors import InputError

    if path.lower().rstrip("/").endswith(".zarr"):
        import zarr

        try:
            node = zarr.open(path, mode="r")
        except Exception as exc:  # noqa: BLE001 - zarr raises many kinds
            raise InputError(path, f"not a readable zarr store ({exc})") from None
        if not hasattr(node, "shape"):
            names = ", ".join(sorted(node.array_keys()))
            if key is None:
                raise InputError(path, f"is a zarr group: pick an array with --key ({names})")
            if key not in node:
                raise InputError(path, f"has no array {key!r} (it has: {names})")
            node = node[key]
        return da.from_zarr(node)
    from lrn_cli.arrays import read_npy_header

    header = read_npy_header(path)  # validates before mapping
    if header.dtype.kind not in "biuf":
        raise InputError(path, f"{header.dtype} data is not supported")
    mm = np.load(os.fspath(path), mmap_mode="r", allow_pickle=False)
    per_sample = max(1, mm[:1].nbytes if mm.ndim else mm.nbytes)
    rows = max(1, chunk_bytes // per_sample)
    chunks = (rows,) + mm.shape[1:] if mm.ndim else ()
    return da.from_array(mm, chunks=chunks)


def store_output(result, output: str, *, overwrite: bool = False) -> None:
    """Compute ``result`` into ``output`` (``.zarr`` or ``.npy``), all or nothing."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from lrn_cli.errors import OutputError

    out = Path(output)
    if out.exists() and not overwrite:
        raise OutputError(out, "already exists; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    if output.lower().rstrip("/").endswith(".zarr"):
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        try:
            # zarr needs regular chunks; halos may have merged small ones
            result.rechunk(result.chunksize).to_zarr(str(tmp / "data.zarr"))
            if out.exists():
                old = out.with_name(f".{out.name}.old")
                os.replace(out, old)
                os.replace(tmp / "data.zarr", out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp / "data.zarr", out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if not output.lower().endswith(".npy"):
        raise OutputError(out, "the dask engine writes .zarr or .npy")
    from numpy.lib.format import open_memmap

    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        mm = open_memmap(tmp_name, mode="w+", dtype=result.dtype, shape=result.shape)
        offset = mm.offset
        del mm
        # workers (other processes, maybe other hosts on a shared disk) open the file
        # themselves: a memmap would be pickled as a copy
        result.store(_NpyRegion(tmp_name, result.shape, result.dtype.str, offset),
                     lock=False)
        os.replace(tmp_name, out)
    except BaseException:
        os.unlink(tmp_name)
        raise


class _NpyRegion:
    """A picklable ``.npy`` store target: each write maps just the file and assigns."""

    def __init__(self, path: str, shape: tuple, dtype: str, offset: int) -> None:
        self.path, self.shape, self.dtype, self.offset = path, shape, dtype, offset

    def __setitem__(self, index, value) -> None:
        mm = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=self.offset,
                       shape=self.shape)
        mm[index] = value
        mm.flush()
        del mm


def client_for(scheduler: str | None):
    """A Dask client: the cluster at ``scheduler``, or a LocalCluster of one process per core."""
    import os

    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=":0")
    return Client(cluster)
