"""Rotary position embedding (Su et al., RoFormer, arXiv 2104.09864) on part of each attention head.

Perceiver AR rotates the first `rotary_channels` channels of every query and key head by angles
proportional to the token's position, so a score depends on the two tokens' distance; the rest of
the head passes unrotated. Frequencies are `base ** (-2i / rotary_channels)` for i < rotary_channels / 2,
and the two halves of the rotated channels pair up as (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin),
the layout of lucidrains' perceiver-ar-pytorch and GPT-NeoX.
"""

import functools

import numpy as np
from keras import ops

from perceiver_keras.rows import take_rows

ROTARY_BASE = 10000.0


def rotary_frequencies(rotary_channels, base=ROTARY_BASE):
    """The rotary_channels / 2 angular frequencies, float32 numpy."""
    exponents = np.arange(0, rotary_channels, 2, dtype=np.float32) / np.float32(rotary_channels)
    return (1.0 / np.power(np.float32(base), exponents)).astype(np.float32)


def rotary_tables(positions, rotary_channels, dtype="float32"):
    """cos and sin tables for `positions` ((L,) or (B, L)): each (..., L, rotary_channels), for `apply_rotary`.

    Example:
    >>> cos, sin = rotary_tables(ops.arange(5), 8)
    >>> tuple(cos.shape)
    (5, 8)
    """
    positions = ops.cast(positions, "float32")
    angles = positions[..., None] * ops.convert_to_tensor(rotary_frequencies(rotary_channels))
    angles = ops.concatenate([angles, angles], axis=-1)
    return ops.cast(ops.cos(angles), dtype), ops.cast(ops.sin(angles), dtype)


@functools.lru_cache(maxsize=8)
def _angle_table(num_positions, rotary_channels):
    """cos and sin of every position's angles, (num_positions, rotary_channels) float32 numpy, as `rotary_tables`."""
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * rotary_frequencies(rotary_channels)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rotary_rows(position, num_positions, rotary_channels, dtype="float32"):
    """cos and sin tables (1, rotary_channels) of one runtime `position` (a scalar in [0, num_positions)).

    The rows of constant tables, not COS/SIN of the angle: an integer export quantizes the tables
    exactly, whereas an angle up to num_positions quantized to 256 steps would lose the position.

    Example:
    >>> cos, sin = rotary_rows(3, 16, 8)
    >>> tuple(cos.shape)
    (1, 8)
    """
    cos, sin = _angle_table(int(num_positions), int(rotary_channels))
    index = ops.reshape(ops.cast(position, "int32"), (1,))
    return (take_rows(ops.convert_to_tensor(cos, dtype), index), take_rows(ops.convert_to_tensor(sin, dtype), index))


def apply_rotary(x, cos, sin):
    """Rotates the first cos.shape[-1] channels of heads `x` (B, H, L, d) by tables (L, r) or (B, L, r)."""
    if len(cos.shape) == 3:  # one table per example: broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    rotary_channels = cos.shape[-1]
    half = rotary_channels // 2
    rotated, rest = x[..., :rotary_channels], x[..., rotary_channels:]
    first, second = rotated[..., :half], rotated[..., half:]
    turned = ops.concatenate([ops.multiply(second, -1.0), first], axis=-1)
    rotated = rotated * cos + turned * sin
    if x.shape[-1] == rotary_channels:
        return rotated
    return ops.concatenate([rotated, rest], axis=-1)
