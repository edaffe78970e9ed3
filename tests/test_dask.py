"""The Dask path: any chunking gives the in-memory result bit for bit, on a real cluster."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from click.testing import CliRunner  # noqa: E402

from lrn_cli import lrn  # noqa: E402
from lrn_cli.cli import cli  # noqa: E402
from lrn_cli.dask import lrn as dask_lrn  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::ResourceWarning",
                                        "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


CHUNKINGS = [
    (1, 14, 12, 11),  # along N only: no halo
    (1, 3, 4, 4),  # smaller than the halo on every axis (merged first)
    (3, 1, 2, 3),  # single channels, tiny planes
    (2, 5, 5, 6),
]


@pytest.mark.parametrize("mode,size", [("across", 4), ("across", 13), ("within", 6),
                                       ("within", 15)])
def test_any_chunking_is_bit_identical(client, mode, size):
    rng = np.random.default_rng(size)
    x = (rng.standard_normal((3, 14, 12, 11)) * 3).astype(np.float32)
    want = lrn(x, size, 1.0, 0.75, 1e-3, mode=mode)
    for chunks in CHUNKINGS:
        got = dask_lrn(da.from_array(x, chunks=chunks), size, 1.0, 0.75, 1e-3,
                       mode=mode).compute()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=str(chunks))


def test_nhwc_and_convention(client):
    rng = np.random.default_rng(1)
    x = rng.random((3, 9, 8, 12))
    want = lrn(x, 5, 2e-3, 0.75, 1.0, convention="tensorflow", channel_axis=-1)
    got = dask_lrn(da.from_array(x, chunks=(1, 4, 3, 5)), 5, 2e-3, 0.75, 1.0,
                   convention="tensorflow", channel_axis=-1).compute()
    np.testing.assert_array_equal(got, want)


def test_cli_engine_dask_zarr_and_npy(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.random((6, 16, 20, 20), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    z = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(2, 5, 20, 7),
                          dtype="float32")
    z[:] = x
    runner = CliRunner()
    for src, dst in (("x.zarr", "y.zarr"), ("x.npy", "y.npy")):
        res = runner.invoke(cli, ["apply", str(tmp_path / src), "-o", str(tmp_path / dst),
                                  "--engine", "dask", "--mode", "within", "-n", "7"])
        assert res.exit_code == 0, res.output
        out = zarr.open(str(tmp_path / dst))[:] if dst.endswith("zarr") else \
            np.load(tmp_path / dst)
        np.testing.assert_array_equal(out, lrn(x, 7, mode="within"))
    # refuses to overwrite, and --scheduler needs the dask engine
    res = runner.invoke(cli, ["apply", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                              "--engine", "dask"])
    assert res.exit_code == 1
    assert "already exists" in res.stderr
    res = runner.invoke(cli, ["apply", str(tmp_path / "x.npy"), "-o", str(tmp_path / "z.npy"),
                              "--scheduler", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2
