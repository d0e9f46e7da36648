"""Fourier position features computed with the reference's float32 arithmetic.

Converted checkpoints must see the features transformers computes: float32 positions from
`torch.linspace` (or -1 + 2 i / n for subsampled points), float32 frequencies and float32 products.
At the paper's sizes the angle pi f x reaches 48,000 radians, so features computed in float64 and
rounded differ from those by up to 6e-3; these differ by at most one float32 ulp (the sine's rounding).
"""

import math

import numpy as np
from keras import ops


def _fma32(a, b, c):
    """float32 `a * b + c` rounded once, as the fused multiply-add of torch's compiled kernels.

    The float32 product is exact in float64; the float64 sum is rounded to odd (the TwoSum error
    decides), so that its rounding to float32 is the correctly rounded fused result.
    """
    a, b, c = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    product = a * b
    total = product + c
    part = total - product
    error = (product - (total - part)) + (c - part)
    even = (total.view(np.int64) & 1) == 0
    total = np.where((error != 0) & even, np.nextafter(total, np.where(error > 0, np.inf, -np.inf)), total)
    return total.astype(np.float32)


def float32_linspace(start, stop, num):
    """`num` float32 points from `start` to `stop`, bit for bit as `torch.linspace` makes them.

    torch takes `step = (stop - start) / (num - 1)` in float32 and point i as one fused multiply-add,
    `start + step * i` for the first half and `stop - step * (num - 1 - i)` for the second (checked
    against torch 2.13's AVX2 kernels; its FMA-less ATEN_CPU_CAPABILITY=default rounds twice).
    numpy's float64 linspace, rounded, differs in the last bit of most points, and at the paper's
    frequencies (pi * 15,360 * x for audio) one ulp of a position moves a feature by 3e-3.
    """
    start, stop = np.float32(start), np.float32(stop)
    if num == 1:
        return np.array([start], np.float32)
    step = (stop - start) / np.float32(num - 1)
    i = np.arange(num)
    return np.where(i < num // 2, _fma32(step, i, start), _fma32(-step, num - 1 - i, stop))


def linear_positions(index_dims):
    """Positions in [-1, 1] on an ij grid, float32 as the reference: array (*index_dims, len(index_dims))."""
    axes = [float32_linspace(-1.0, 1.0, n) for n in index_dims]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def subsampled_positions(n):
    """Float32 positions `-1 + 2 i / n` of an axis of n points: the reference's subsampled decoding convention."""
    return np.float32(-1.0) + np.arange(n, dtype=np.float32) * np.float32(2.0) / np.float32(n)


def fourier_channels(num_dims, num_bands, concat_pos=True, sine_only=False):
    """Channels F of Fourier features of `num_dims`-dimensional positions."""
    return num_dims * num_bands * (1 if sine_only else 2) + (num_dims if concat_pos else 0)


def axis_fourier_table(axis_positions, num_bands, max_resolution, concat_pos=True, sine_only=False):
    """Fourier features of each axis's positions, float32 as the reference computes them: (sum n_d, F).

    Each feature involves one axis, so a grid point's features are the sum of one row per axis: the
    rows of axis d (from offset n_0 + ... + n_{d-1}) hold its position, sines and cosines in their
    channels and zeros elsewhere, and adding zeros is exact. Frequencies, products and angles are
    torch's float32 (`generate_fourier_features`); sin and cos of the float32 angle are taken in
    float64, so each feature is within one float32 ulp of torch's.

    Args:
        axis_positions: list of d float32 vectors, the positions along each axis.
        num_bands, max_resolution, concat_pos, sine_only: as `FourierPositionEncoding`.
    """
    num_dims = len(axis_positions)
    channels = fourier_channels(num_dims, num_bands, concat_pos, sine_only)
    table = np.zeros((sum(len(x) for x in axis_positions), channels), np.float32)
    offset = 0
    for axis, (x, resolution) in enumerate(zip(axis_positions, max_resolution)):
        rows = slice(offset, offset + len(x))
        sines = (num_dims if concat_pos else 0) + axis * num_bands  # first channel of this axis's sines
        cosines = sines + num_dims * num_bands
        freqs = float32_linspace(1.0, resolution / 2.0, num_bands)
        angles = (np.float32(np.pi) * (np.float32(x)[:, None] * freqs)).astype(np.float64)
        if concat_pos:
            table[rows, axis] = x
        table[rows, sines:sines + num_bands] = np.sin(angles)
        if not sine_only:
            table[rows, cosines:cosines + num_bands] = np.cos(angles)
        offset += len(x)
    return table


def _unravel(indices, index_dims):
    """Per-axis coordinates of flat row-major `indices`: a list of int tensors."""
    coords, stride = [], math.prod(index_dims)
    for n in index_dims:
        stride //= n
        coords.append(ops.mod(ops.floor_divide(indices, stride), n))
    return coords


def gather_fourier_features(table, indices, index_dims):
    """Features (B, O, F) of flat row-major grid `indices` (B, O) from an `axis_fourier_table` tensor."""
    features, offset = 0, 0
    for coord, n in zip(_unravel(ops.cast(indices, "int32"), index_dims), index_dims):
        features = features + ops.take(table, coord + offset, axis=0)
        offset += n
    return features


def fourier_features(positions, num_bands, max_resolution, concat_pos=True, sine_only=False):
    """Fourier features of positions given as a tensor, in the reference's channel order.

    `[positions, sin(pi f x) for each dim and band, cos(pi f x) ...]` with
    `f = linspace(1, max_resolution / 2, num_bands)` per dimension (dimension-major), all in float32
    as the reference: equal to transformers' features up to the backend's float32 sine. The layers
    use `axis_fourier_table` instead, which is exact to one ulp on every backend.

    Args:
        positions: tensor (..., d) of positions, typically in [-1, 1].
        num_bands: number of frequency bands K per dimension.
        max_resolution: sequence of d ints, the Nyquist resolution per dimension.
        concat_pos: whether to prepend the raw positions.
        sine_only: whether to omit the cosine block.

    Returns:
        Tensor (..., d * (2K or K) [+ d]).
    """
    freqs = np.stack([float32_linspace(1.0, res / 2.0, num_bands) for res in max_resolution])
    freqs = ops.convert_to_tensor(freqs, dtype=positions.dtype)
    per_dim = ops.expand_dims(positions, -1) * freqs  # (..., d, K)
    leading = ops.shape(per_dim)[:-2]
    per_dim = ops.reshape(per_dim, (*leading, len(max_resolution) * num_bands))
    blocks = [ops.sin(math.pi * per_dim)] + ([] if sine_only else [ops.cos(math.pi * per_dim)])
    if concat_pos:
        blocks.insert(0, positions)
    return ops.concatenate(blocks, axis=-1)
