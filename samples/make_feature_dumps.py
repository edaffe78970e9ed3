"""Make the AlexNet-shaped feature dumps in ``samples/arrays/`` from the sample photos.

Run from anywhere (numpy and Pillow only)::

    python samples/make_feature_dumps.py [--images DIR] [--out DIR]

It writes five ``.npy`` files into ``--out`` (default: ``samples/arrays`` next to this script):

* ``conv1_relu_nchw.npy``  float32 (N, 96, 55, 55): an AlexNet-conv1-shaped layer after ReLU.
* ``conv1_relu_nhwc.npy``  the same values, transposed to (N, 55, 55, 96).
* ``conv2_relu_nchw.npy``  float32 (N, 256, 27, 27): an AlexNet-conv2-shaped layer after ReLU.
* ``conv2_relu_nhwc.npy``  the same values, transposed to (N, 27, 27, 256).
* ``tf_example_nhwc.npy``  float32 (2, 2, 2, 4): ``np.arange(1, 33).reshape(2, 2, 2, 4)``.

N is the number of source photos (``SOURCE_PHOTOS``, one by default, to keep ``samples/`` small).

The pipeline mirrors AlexNet without any learned weights:

1. photo -> RGB, resized to 227x227 (antialiased bilinear, numpy), ImageNet mean pixel
   subtracted;
2. conv1: 96 deterministic 11x11x3 filters, stride 4, no padding -> 55x55, ReLU.
   Channels 0-47 are luminance Gabor filters (8 orientations x 3 wavelengths x 2 phases),
   channels 48-95 are colour filters (red-green and blue-yellow opponent Gabors, opponent
   blobs and centre-surrounds, luminance centre-surrounds), like AlexNet's two GPU towers;
3. 3x3 max-pool, stride 2 (55 -> 27);
4. conv2: 256 filters of 5x5, padding 2, in two groups of 48 input channels like AlexNet,
   each filter a seeded random sparse combination (``np.random.default_rng(CONV2_SEED)``)
   of small Gabors and blobs, ReLU.

No LRN is applied anywhere: these are inputs *for* LRN. Each layer is scaled by a positive
factor (3 significant digits) so that its 99th percentile is about ``TARGET_P99`` = 50,
the order of magnitude of real AlexNet activations, since LRN's alpha term depends on the
value range; the values are then rounded to multiples of ``QUANTUM`` = 2**-10, which float32
holds exactly. The rounding makes the output bytes independent of the last-ulp differences
between BLAS builds, so the same inputs give the same bytes on every machine.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGES = HERE / "images"
DEFAULT_OUT = HERE / "arrays"

SOURCE_PHOTOS: tuple[str, ...] = ("astronaut_rgb.png",)
INPUT_SIZE = 227
# The ImageNet mean pixel (R, G, B) that Caffe's and TensorFlow's AlexNet subtract.
MEAN_RGB = np.array([123.68, 116.779, 103.939])
TARGET_P99 = 50.0
QUANTUM = 2.0**-10
CONV2_SEED = 20120101

# Colour directions (unit vectors over R, G, B).
LUMINANCE = np.array([1.0, 1.0, 1.0]) / math.sqrt(3.0)
RED_GREEN = np.array([1.0, -1.0, 0.0]) / math.sqrt(2.0)
BLUE_YELLOW = np.array([-0.5, -0.5, 1.0]) / math.sqrt(1.5)

OUTPUT_NAMES = (
    "conv1_relu_nchw.npy",
    "conv1_relu_nhwc.npy",
    "conv2_relu_nchw.npy",
    "conv2_relu_nhwc.npy",
    "tf_example_nhwc.npy",
)


# --------------------------------------------------------------------------- input


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of an antialiased linear (triangle) filter, rows summing to 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centers = (np.arange(n_out) + 0.5) * scale
    pos = np.arange(n_in) + 0.5
    weights = np.clip(1.0 - np.abs(pos[None, :] - centers[:, None]) / support, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (H, W, C) float array to (height, width, C)."""
    rows = resample_matrix(image.shape[0], height)
    cols = resample_matrix(image.shape[1], width)
    out = np.tensordot(rows, image, axes=(1, 0))  # (height, W, C)
    return np.tensordot(cols, out, axes=(1, 1)).transpose(1, 0, 2)  # (height, width, C)


def load_photo(path: Path, size: int = INPUT_SIZE) -> np.ndarray:
    """A photo as a mean-subtracted (3, size, size) float64 array, AlexNet style."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    resized = resize(rgb, size, size) - MEAN_RGB
    return np.ascontiguousarray(resized.transpose(2, 0, 1))


# --------------------------------------------------------------------------- filters


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    half = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) - half
    return y, x


def gaussian(size: int, sigma: float) -> np.ndarray:
    y, x = _grid(size)
    return np.exp(-(x**2 + y**2) / (2.0 * sigma**2))


def gabor(size: int, wavelength: float, theta: float, phase: float, sigma: float) -> np.ndarray:
    """A Gabor patch: Gaussian envelope times a cosine grating across direction ``theta``."""
    y, x = _grid(size)
    u = x * math.cos(theta) + y * math.sin(theta)
    return gaussian(size, sigma) * np.cos(2.0 * math.pi * u / wavelength + phase)


def _unit(kernel: np.ndarray, zero_mean: bool) -> np.ndarray:
    if zero_mean:
        kernel = kernel - kernel.mean()
    return kernel / np.sqrt(np.sum(kernel**2))


def _colour_filter(colour: np.ndarray, spatial: np.ndarray) -> np.ndarray:
    return colour[:, None, None] * spatial[None, :, :]


def conv1_filters(size: int = 11) -> np.ndarray:
    """The 96 conv1 filters, shape (96, 3, size, size), each of unit L2 norm."""
    bank: list[np.ndarray] = []
    # 0-47: luminance Gabors, 8 orientations x 3 wavelengths x 2 phases (even, odd).
    for wavelength in (3.5, 5.5, 8.5):
        sigma = min(0.5 * wavelength, 3.0)
        for k in range(8):
            theta = k * math.pi / 8.0
            for phase in (0.0, math.pi / 2.0):
                spatial = _unit(gabor(size, wavelength, theta, phase, sigma), zero_mean=True)
                bank.append(_colour_filter(LUMINANCE, spatial))
    # 48-79: colour-opponent Gabors, 2 axes x 4 orientations x 2 wavelengths x 2 phases.
    for colour in (RED_GREEN, BLUE_YELLOW):
        for wavelength in (6.0, 10.0):
            for k in range(4):
                theta = k * math.pi / 4.0
                for phase in (0.0, math.pi / 2.0):
                    g = gabor(size, wavelength, theta, phase, 0.4 * wavelength)
                    bank.append(_colour_filter(colour, _unit(g, zero_mean=True)))
    # 80-87: single-opponent colour blobs, 2 axes x 2 signs x 2 sizes.
    for colour in (RED_GREEN, BLUE_YELLOW):
        for sign in (1.0, -1.0):
            for sigma in (1.5, 3.0):
                bank.append(_colour_filter(sign * colour, _unit(gaussian(size, sigma), False)))
    # 88-91: double-opponent colour centre-surrounds, 2 axes x 2 signs.
    dog = _unit(gaussian(size, 1.2) - 0.5 * gaussian(size, 3.0), zero_mean=True)
    for colour in (RED_GREEN, BLUE_YELLOW):
        for sign in (1.0, -1.0):
            bank.append(_colour_filter(sign * colour, dog))
    # 92-95: luminance centre-surrounds, on/off x 2 sizes.
    for sigma_c, sigma_s in ((1.0, 2.5), (2.0, 4.5)):
        dog = _unit(gaussian(size, sigma_c) - 0.5 * gaussian(size, sigma_s), zero_mean=True)
        for sign in (1.0, -1.0):
            bank.append(_colour_filter(LUMINANCE, sign * dog))
    filters = np.stack(bank)
    assert filters.shape == (96, 3, size, size)
    return filters


def conv2_filters(
    seed: int = CONV2_SEED,
    out_channels: int = 256,
    in_channels: int = 48,
    size: int = 5,
    taps: int = 6,
) -> np.ndarray:
    """Seeded random sparse conv2 filters, shape (out_channels, in_channels, size, size).

    Each output channel reads ``taps`` of the ``in_channels`` channels of its group, each through
    a small Gabor (two in three) or Gaussian blob with a random weight in [-1, 1). Only
    ``Generator.random`` is drawn from, the most stable part of numpy's random streams.
    """
    rng = np.random.default_rng(seed)
    filters = np.zeros((out_channels, in_channels, size, size))
    for o in range(out_channels):
        chosen = np.argsort(rng.random(in_channels), kind="stable")[:taps]
        weight, theta, wavelength, phase, kind = rng.random((5, taps))
        for j, c in enumerate(chosen):
            if kind[j] < 2.0 / 3.0:
                spatial = gabor(
                    size,
                    3.0 + 5.0 * wavelength[j],
                    math.pi * theta[j],
                    2.0 * math.pi * phase[j],
                    1.2,
                )
            else:
                spatial = gaussian(size, 1.0)
            filters[o, c] = (2.0 * weight[j] - 1.0) * spatial / np.sqrt(np.sum(spatial**2))
        filters[o] /= np.sqrt(np.sum(filters[o] ** 2))
    return filters


# --------------------------------------------------------------------------- layers


def conv2d(
    x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0, groups: int = 1
) -> np.ndarray:
    """Cross-correlation of NCHW ``x`` with OIHW ``w`` (I = C / groups), like a conv layer."""
    n, c, _, _ = x.shape
    o, i, kh, kw = w.shape
    if c != i * groups or o % groups:
        raise ValueError(f"channels do not match: x {x.shape}, w {w.shape}, groups {groups}")
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (N, C, OH, OW, KH, KW)
    og = o // groups
    outs = []
    for g in range(groups):
        wg = w[g * og : (g + 1) * og]
        xg = windows[:, g * i : (g + 1) * i]
        outs.append(np.tensordot(xg, wg, axes=((1, 4, 5), (1, 2, 3))))  # (N, OH, OW, og)
    return np.ascontiguousarray(np.concatenate(outs, axis=3).transpose(0, 3, 1, 2))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def max_pool(x: np.ndarray, size: int = 3, stride: int = 2) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))
    return windows[:, :, ::stride, ::stride].max(axis=(4, 5))


def scale_factor(x: np.ndarray, target: float = TARGET_P99) -> float:
    """The positive factor, rounded to 3 significant digits, that moves the p99 to ``target``."""
    p99 = float(np.percentile(x, 99))
    return float(f"{target / p99:.3g}")


def quantize(x: np.ndarray) -> np.ndarray:
    """Round to multiples of QUANTUM and cast to float32 (exact for values below 2**14)."""
    return (np.round(x / QUANTUM) * QUANTUM).astype(np.float32)


# --------------------------------------------------------------------------- pipeline


def compute_features(photos: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(conv1, conv2) ReLU outputs in NCHW float32 for a batch of photos."""
    x = np.stack([load_photo(p) for p in photos])  # (N, 3, 227, 227)
    conv1 = relu(conv2d(x, conv1_filters(), stride=4))  # (N, 96, 55, 55)
    pooled = max_pool(conv1, 3, 2)  # (N, 96, 27, 27)
    conv2 = relu(conv2d(pooled, conv2_filters(), padding=2, groups=2))  # (N, 256, 27, 27)
    return quantize(conv1 * scale_factor(conv1)), quantize(conv2 * scale_factor(conv2))


def tf_example() -> np.ndarray:
    """The small 2x2x2x4 example tensor in TensorFlow's NHWC (channels-last) layout."""
    return np.arange(1, 33, dtype=np.float32).reshape(2, 2, 2, 4)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def make_arrays(images_dir: Path) -> dict[str, np.ndarray]:
    conv1, conv2 = compute_features([images_dir / name for name in SOURCE_PHOTOS])
    arrays = {
        "conv1_relu_nchw.npy": conv1,
        "conv1_relu_nhwc.npy": nchw_to_nhwc(conv1),
        "conv2_relu_nchw.npy": conv2,
        "conv2_relu_nhwc.npy": nchw_to_nhwc(conv2),
        "tf_example_nhwc.npy": tf_example(),
    }
    assert tuple(arrays) == OUTPUT_NAMES
    return arrays


def write_arrays(arrays: dict[str, np.ndarray], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in arrays.items():
        path = out_dir / name
        with open(path, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images", type=Path, default=DEFAULT_IMAGES, help="folder with the source photos"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write .npy to")
    args = parser.parse_args(argv)
    for path in write_arrays(make_arrays(args.images), args.out):
        array = np.load(path)
        print(f"{path}: {array.dtype} {array.shape}, max {array.max():g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
