"""Flow images in the Middlebury colour coding (Baker et al., 2011, "A Database and Evaluation
Methodology for Optical Flow", IJCV), the one flow papers and RAFT's `flow_viz.py` use.

Hue is the direction, saturation the magnitude: zero flow is white, a flow of `max_flow` pixels
has the colour wheel's full colour, rightward red, downward orange-yellow, leftward cyan, upward
blue-violet (image coordinates: v points down). Longer flows are drawn darker (times 0.75).

Example:
    >>> save_flow_png("flow.png", read_flo("frame_0001.flo"))
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Colours between the six primaries of the wheel: red-yellow, yellow-green, green-cyan, cyan-blue,
# blue-magenta, magenta-red; more where neighbouring hues are easier to tell apart.
WHEEL_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))
_EPSILON = 1e-5  # Keeps the largest flow of an image inside the wheel, and zero flow finite.


def make_colorwheel() -> np.ndarray:
    """The 55 colours of the wheel -> float64 (55, 3), RGB in 0..255, starting at red."""
    # Each segment ramps one channel between two primaries, with the others fixed.
    ramps = {"RY": (1, 1), "YG": (0, -1), "GC": (2, 1), "CB": (1, -1), "BM": (0, 1), "MR": (2, -1)}
    wheel, color = [], np.array([255.0, 0.0, 0.0])
    for name, count in WHEEL_SEGMENTS:
        channel, direction = ramps[name]
        ramp = np.floor(255 * np.arange(count) / count)
        for step in ramp:
            color[channel] = step if direction > 0 else 255 - step
            wheel.append(color.copy())
        color[channel] = 255 if direction > 0 else 0
    return np.array(wheel)


def flow_to_color(flow, max_flow: float | None = None) -> np.ndarray:
    """Colours a flow field (H, W, 2), (u, v) in pixels -> uint8 RGB (H, W, 3).

    Args:
        flow: float array-like (H, W, 2).
        max_flow: the magnitude drawn at full saturation; default the field's largest magnitude.
            Compare several fields with one `max_flow`.

    Raises:
        ValueError: on another shape, non-finite values, or `max_flow` <= 0.
    """
    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"Expected flow of shape (H, W, 2). Received: flow.shape={flow.shape}")
    if not np.all(np.isfinite(flow)):
        raise ValueError(f"Expected finite flow values. Received: {np.sum(~np.isfinite(flow))} NaN or inf values")
    if max_flow is not None and not max_flow > 0:
        raise ValueError(f"Expected max_flow > 0. Received: max_flow={max_flow}")
    scale = (np.hypot(flow[..., 0], flow[..., 1]).max() if max_flow is None else max_flow) + _EPSILON
    u, v = flow[..., 0] / scale, flow[..., 1] / scale
    radius = np.sqrt(u**2 + v**2)
    wheel = make_colorwheel()
    angle = np.arctan2(-v, -u) / np.pi  # In [-1, 1]; rightward is -1 (or +1 for v = -0.0).
    angle = np.where(angle == 1.0, -1.0, angle)  # One colour for rightward flow, whatever zero's sign.
    position = (angle + 1) / 2 * (len(wheel) - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % len(wheel)
    fraction = (position - k0)[..., None]
    color = (1 - fraction) * wheel[k0] / 255 + fraction * wheel[k1] / 255
    inside = (radius <= 1)[..., None]
    color = np.where(inside, 1 - radius[..., None] * (1 - color), color * 0.75)
    return np.floor(255 * color).astype(np.uint8)


def save_flow_png(path: str, flow, max_flow: float | None = None) -> None:
    """Writes `flow_to_color(flow, max_flow)` as a PNG file."""
    tf.io.write_file(path, tf.io.encode_png(flow_to_color(flow, max_flow)))
