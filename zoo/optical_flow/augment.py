"""Warping and augmentation of frame pairs with their flow, for the tf.data pipelines.

Conventions: `frames` float32 (2, H, W, 3) in [0, 1], `flow` float32 (H, W, 2) in pixels, (u, v) =
(right, down), the forward flow from frame 1 to frame 2: the pixel at x in frame 1 is at x + flow(x)
in frame 2, so `backward_warp(frames[1], flow)` reproduces frame 1 wherever that point is visible.
Every geometric augmentation transforms the flow with the frames (a horizontal flip negates u, a
vertical flip negates v, a resize by s multiplies the flow by s), and every random op is stateless,
driven by an explicit `seed` (a shape-(2,) integer tensor), as in `zoo.image_classification.augment`.
"""

from __future__ import annotations

import tensorflow as tf

# RAFT's (Teed & Deng, 2020) probabilities for FlyingChairs/Sintel training.
HORIZONTAL_FLIP_PROBABILITY = 0.5
VERTICAL_FLIP_PROBABILITY = 0.1


def bilinear_sample(image: tf.Tensor, coords: tf.Tensor) -> tf.Tensor:
    """Samples `image` (H, W, C) at `coords` (h, w, 2), (x, y) pixel positions -> (h, w, C).

    Bilinear interpolation between the four neighbouring pixels; positions outside the image take
    the nearest border pixel's value (clamped), so check visibility with the coordinates.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    x = tf.clip_by_value(coords[..., 0], 0.0, tf.cast(width - 1, coords.dtype))
    y = tf.clip_by_value(coords[..., 1], 0.0, tf.cast(height - 1, coords.dtype))
    x0, y0 = tf.floor(x), tf.floor(y)
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)
    flat = tf.reshape(image, [height * width, shape[2]])

    def pixel(row, col):
        return tf.gather(flat, row * width + col)

    top = pixel(y0, x0) * (1 - wx) + pixel(y0, x1) * wx
    bottom = pixel(y1, x0) * (1 - wx) + pixel(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def pixel_grid(height, width) -> tf.Tensor:
    """float32 (height, width, 2): every pixel's own (x, y) position."""
    x, y = tf.meshgrid(tf.range(width, dtype=tf.float32), tf.range(height, dtype=tf.float32))
    return tf.stack([x, y], axis=-1)


def backward_warp(image: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """Returns `warped(x) = image(x + flow(x))` (bilinear): frame 2 warped onto frame 1's grid.

    Args:
        image: float (H', W', C), e.g. frame 2.
        flow: float32 (H, W, 2), the forward flow of frame 1 in pixels.
    """
    shape = tf.shape(flow)
    return bilinear_sample(image, pixel_grid(shape[0], shape[1]) + flow)


def flip_pair(frames, flow, horizontal, vertical):
    """Flips frames (2, H, W, C) and flow (H, W, 2) when the scalar bools say so."""
    frames = tf.cond(horizontal, lambda: tf.reverse(frames, [2]), lambda: frames)
    flow = tf.cond(horizontal, lambda: tf.reverse(flow, [1]) * [-1.0, 1.0], lambda: flow)
    frames = tf.cond(vertical, lambda: tf.reverse(frames, [1]), lambda: frames)
    flow = tf.cond(vertical, lambda: tf.reverse(flow, [0]) * [1.0, -1.0], lambda: flow)
    return frames, flow


def random_flip(
    frames: tf.Tensor,
    flow: tf.Tensor,
    seed: tf.Tensor,
    horizontal_probability: float = HORIZONTAL_FLIP_PROBABILITY,
    vertical_probability: float = VERTICAL_FLIP_PROBABILITY,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Flips the pair left-right and/or upside down, transforming the flow exactly."""
    draws = tf.random.stateless_uniform([2], seed)
    return flip_pair(frames, flow, draws[0] < horizontal_probability, draws[1] < vertical_probability)


def random_scale_crop(
    frames: tf.Tensor,
    flow: tf.Tensor,
    seed: tf.Tensor,
    crop_size: tuple[int, int],
    scale_range: tuple[float, float] = (0.8, 1.25),
) -> tuple[tf.Tensor, tf.Tensor]:
    """Resizes the pair by a random factor (log-uniform in `scale_range`) and crops `crop_size`.

    The flow is resized with the frames and multiplied by the factor of each axis (the factor is
    raised where needed so that the resized pair covers the crop; frames smaller than the crop are
    upscaled). Bilinear resizing of the flow blurs it at motion boundaries, as in RAFT's pipeline.
    """
    scale_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    log_lo, log_hi = tf.math.log(float(scale_range[0])), tf.math.log(float(scale_range[1]))
    scale = tf.exp(tf.random.stateless_uniform([], scale_seed, log_lo, log_hi))
    size = tf.cast(tf.shape(flow)[:2], tf.float32)
    new_size = tf.maximum(tf.round(size * scale), tf.constant(crop_size, tf.float32))
    frames = tf.image.resize(frames, tf.cast(new_size, tf.int32))
    flow = tf.image.resize(flow, tf.cast(new_size, tf.int32)) * tf.reverse(new_size / size, [0])
    max_offset = tf.cast(new_size, tf.int32) - crop_size
    offset = tf.random.stateless_uniform([2], crop_seed, maxval=tf.int32.max, dtype=tf.int32) % (max_offset + 1)
    return _crop(frames, flow, offset, crop_size)


def center_crop(frames: tf.Tensor, flow: tf.Tensor, crop_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """The central `crop_size` window of the pair; the frames must be at least that large."""
    size = tf.shape(flow)[:2]
    tf.debugging.assert_greater_equal(
        size, tf.constant(crop_size), message=f"Expected frames at least crop_size={tuple(crop_size)}")
    return _crop(frames, flow, (size - crop_size) // 2, crop_size)


def _crop(frames, flow, offset, crop_size):
    height, width = crop_size
    frames = frames[:, offset[0]:offset[0] + height, offset[1]:offset[1] + width]
    flow = flow[offset[0]:offset[0] + height, offset[1]:offset[1] + width]
    return tf.ensure_shape(frames, [2, height, width, None]), tf.ensure_shape(flow, [height, width, 2])


def photometric_jitter(
    frames: tf.Tensor,
    seed: tf.Tensor,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
    hue: float = 0.05,
    noise_stddev: float = 0.02,
) -> tf.Tensor:
    """Random colour changes applied identically to both frames, then independent pixel noise.

    Brightness, contrast and saturation factors are uniform in [1 - x, 1 + x], the hue shift in
    [-hue, hue] (a fraction of the colour circle); the noise is Gaussian with a standard deviation
    uniform in [0, noise_stddev]. Contrast uses the mean of both frames together, so every colour
    change is the same function of the pixel value in both frames. Output clipped to [0, 1].
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    factor = lambda s, x: tf.random.stateless_uniform([], s, 1.0 - x, 1.0 + x)  # noqa: E731
    shape = tf.shape(frames)
    both = tf.reshape(frames, [2 * shape[1], shape[2], shape[3]])  # One image: one contrast mean.
    both = both * factor(seeds[0], brightness)
    both = tf.image.adjust_contrast(both, factor(seeds[1], contrast))
    both = tf.image.adjust_saturation(tf.clip_by_value(both, 0.0, 1.0), factor(seeds[2], saturation))
    both = tf.image.adjust_hue(both, tf.random.stateless_uniform([], seeds[3], -hue, hue))
    stddev = tf.random.stateless_uniform([], seeds[4], 0.0, noise_stddev)
    both = both + stddev * tf.random.stateless_normal(tf.shape(both), seeds[5])
    return tf.reshape(tf.clip_by_value(both, 0.0, 1.0), shape)
