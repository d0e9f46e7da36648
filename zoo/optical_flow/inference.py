"""Optical flow of frame pairs of any size: the dense model, frame normalisation, tiled prediction.

A flow model sees frames of one size, the one it was trained at. `predict_flow` runs it on larger
pairs the way DeepMind's optical-flow colab does: it covers the pair with overlapping tiles of
the model's size, predicts every tile, and blends the tile predictions with weights that fall off
linearly toward each tile's border (a pixel's weight in a tile is one plus its distance to the
nearest tile edge), so every pixel is dominated by the tiles that see the most context around it.
The tile starts are spread evenly over each axis, the first flush with the top/left edge and the
last with the bottom/right edge, neighbours overlapping by at least `overlap` pixels.

Example:
    >>> model, run = zoo.training.load_run("runs/flow_small")  # trained with output indices
    >>> flow = predict_flow(model, frame1, frame2)  # uint8 (H, W, 3) each -> (H, W, 2) pixels
    >>> save_flow_png("flow.png", flow)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from perceiver_keras import FlowPostprocessor, FlowPreprocessor, PerceiverIO

DEFAULT_NORMALIZATION = "minus_one_to_one"
"""Every optical-flow preset's frames: RGB scaled to [-1, 1] (DeepMind's checkpoint)."""
DEFAULT_FLOW_SCALE = 20.0
"""Every optical-flow preset's outputs times this are pixels (DeepMind trained on flow / 20)."""
NORMALIZATIONS = ("minus_one_to_one", "zero_to_one")
_MAX_DEFAULT_OVERLAP = 20  # DeepMind's colab's minimum overlap at 368 x 496.
_RANGE_SLACK = 1e-3  # Resampled [0, 1] frames can overshoot by rounding; clipped, not refused.


def dense_model(model: keras.Model, frame_size: Sequence[int] | None = None) -> keras.Model:
    """The flow model that decodes every pixel: frames (B, 2, H, W, 3) -> flow (B, H, W, 2).

    Turns a model built with `use_output_indices=True` (subsampled decoding, as trained) into the
    one without the "output_indices" input, with a copy of its weights. Only the Fourier position
    features depend on the frame size, and they are computed, not learnt: at another `frame_size`
    they keep the model's Nyquist resolution (`max_resolution`, its training size by default) and
    spread the same [-1, 1] positions over more pixels, as the reference preprocessor computes
    them at other sizes. Smaller frames would sample the highest bands below their Nyquist rate, so
    `frame_size` must be at least `max_resolution` on each axis.

    Args:
        model: an optical-flow `PerceiverIO` (`zoo.optical_flow.build_optical_flow_model`), e.g.
            loaded from a run's model.keras.
        frame_size: (height, width) of the dense model; default the model's own.

    Raises:
        ValueError: a model that is not a flow `PerceiverIO`, or a frame size below `max_resolution`.
    """
    if not (isinstance(model, PerceiverIO) and isinstance(model.preprocessor, FlowPreprocessor)
            and isinstance(model.postprocessor, FlowPostprocessor)):
        raise ValueError("Expected an optical-flow PerceiverIO (FlowPreprocessor in, FlowPostprocessor out). "
                         f"Received: {type(model).__name__} {model.name!r}")
    own_size = tuple(model.inputs_shape[1:3])
    frame_size = own_size if frame_size is None else tuple(int(s) for s in frame_size)
    max_resolution = model.preprocessor.max_resolution or own_size
    if len(frame_size) != 2 or any(s < r for s, r in zip(frame_size, max_resolution)):
        raise ValueError(f"Expected frame_size=(height, width) of at least the Fourier features' resolution "
                         f"{tuple(max_resolution)}. Received: frame_size={frame_size}")
    if not model.use_output_indices and frame_size == own_size:
        return model

    def copy(layer, **overrides):
        return type(layer).from_config({**layer.get_config(), **overrides})

    parts = dict(
        preprocessor=copy(model.preprocessor, max_resolution=list(max_resolution)),
        encoder=copy(model.encoder), query=copy(model.query), decoder=copy(model.decoder),
        postprocessor=copy(model.postprocessor, image_size=list(frame_size)),
    )
    dense = PerceiverIO(
        **parts, inputs_shape=(model.inputs_shape[0], *frame_size, *model.inputs_shape[3:]),
        input_dtype=model.main_input_dtype, input_name=model.input_name, use_padding_mask=model.use_padding_mask,
        tie_embeddings=model.tie_embeddings, name=model.name,
    )
    for name, layer in parts.items():
        layer.set_weights(getattr(model, name).get_weights())
    return dense


def normalize_frames(frames, normalization: str = DEFAULT_NORMALIZATION) -> np.ndarray:
    """uint8 frames (0..255) or float frames in [0, 1] -> float32 as the model expects.

    Args:
        frames: an array of any shape whose last axis is the channels.
        normalization: "minus_one_to_one" (2 x - 1) or "zero_to_one" (unchanged).

    Raises:
        ValueError: another dtype or normalisation, or float values outside [0, 1] (values within
            1e-3 of it, resampling's rounding, are clipped).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"Unknown normalization. Expected one of: {', '.join(NORMALIZATIONS)}. "
                         f"Received: normalization={normalization!r}")
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        frames = frames.astype(np.float32) / np.float32(255)
    elif np.issubdtype(frames.dtype, np.floating):
        frames = frames.astype(np.float32)
        low, high = (float(frames.min()), float(frames.max())) if frames.size else (0.0, 0.0)
        if not (np.isfinite(low) and np.isfinite(high) and low >= -_RANGE_SLACK and high <= 1.0 + _RANGE_SLACK):
            raise ValueError(f"Expected float frames in [0, 1] (or uint8 frames in 0..255). "
                             f"Received: values in [{low:g}, {high:g}]")
        frames = np.clip(frames, 0.0, 1.0)
    else:
        raise ValueError(f"Expected uint8 or float frames. Received: dtype={frames.dtype}")
    return 2.0 * frames - 1.0 if normalization == "minus_one_to_one" else frames


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length `tile` covering [0, size), neighbours overlapping >= `overlap`.

    The fewest tiles that can keep the overlap, spread evenly: the first starts at 0 and the last
    ends at `size`. Requires 0 <= overlap < tile <= size.
    """
    if not 0 <= overlap < tile <= size:
        raise ValueError(f"Expected 0 <= overlap < tile <= size. Received: overlap={overlap}, tile={tile}, "
                         f"size={size}")
    if size == tile:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    # Consecutive starts differ by at most (size - tile) / (count - 1) <= tile - overlap, rounded.
    return [int(s) for s in np.rint(np.linspace(0, size - tile, count))]


def tile_weights(tile_size: Sequence[int]) -> np.ndarray:
    """float64 (h, w): 1 + the distance in pixels to the nearest edge of the tile (DeepMind's colab)."""
    height, width = tile_size
    rows = np.minimum(np.arange(height) + 1, height - np.arange(height))
    columns = np.minimum(np.arange(width) + 1, width - np.arange(width))
    return np.minimum(rows[:, None], columns[None, :]).astype(np.float64)


def predict_flow(
    model: keras.Model,
    frame1,
    frame2,
    *,
    tile_size: Sequence[int] | None = None,
    overlap: int | None = None,
    flow_scale: float | None = None,
    normalization: str | None = None,
    batch_size: int = 8,
) -> np.ndarray:
    """The forward flow (pixels) from `frame1` to `frame2`, frames of any size at least a tile.

    Args:
        model: a flow model taking frames (B, 2, h, w, C); a `PerceiverIO` with output indices is
            made dense first (`dense_model`: call it once yourself when predicting many pairs).
        frame1: uint8 (H, W, C) in 0..255 or float in [0, 1].
        frame2: the same shape.
        tile_size: (h, w) of the tiles; default the model's frame size. Another size needs a flow
            `PerceiverIO`, made dense at that size (see `dense_model`).
        overlap: minimum overlap in pixels of neighbouring tiles; default a quarter of the
            shorter tile side, at most 20 (DeepMind's value at 368 x 496).
        flow_scale: model outputs times this are pixels; default `DEFAULT_FLOW_SCALE` (20, every
            flow preset's `flow_scale_factor`).
        normalization: how the model wants its frames; default `DEFAULT_NORMALIZATION`.
        batch_size: tiles per model call.

    Returns:
        float32 (H, W, 2), (u, v) = (right, down) in pixels.

    Raises:
        ValueError: frames of different shapes, of another channel count or rank, smaller than a
            tile, or a bad overlap, scale or batch size.
    """
    if isinstance(model, PerceiverIO) and isinstance(model.preprocessor, FlowPreprocessor):
        model = dense_model(model, tile_size)
    input_shape = model.input_shape
    if not (isinstance(input_shape, tuple) and len(input_shape) == 5 and input_shape[1] == 2):
        raise ValueError(f"Expected a model taking one input of frames (batch, 2, height, width, channels). "
                         f"Received: input_shape={input_shape}")
    model_tile, channels = tuple(input_shape[2:4]), input_shape[4]
    tile_size = model_tile if tile_size is None else tuple(tile_size)
    if tile_size != model_tile:
        raise ValueError(f"Expected tile_size={model_tile}, the frame size of {model.name!r}. "
                         f"Received: tile_size={tile_size}")
    frame1, frame2 = np.asarray(frame1), np.asarray(frame2)
    if frame1.shape != frame2.shape:
        raise ValueError(f"Expected two frames of one shape. Received: frame1.shape={frame1.shape}, "
                         f"frame2.shape={frame2.shape}")
    if frame1.ndim != 3 or frame1.shape[-1] != channels:
        raise ValueError(f"Expected frames of shape (height, width, {channels}). Received: shape={frame1.shape}")
    height, width = frame1.shape[:2]
    if height < tile_size[0] or width < tile_size[1]:
        raise ValueError(f"Expected frames of at least the tile size {tile_size[0]}x{tile_size[1]} (height x "
                         f"width). Received: {height}x{width}")
    overlap = min(_MAX_DEFAULT_OVERLAP, min(tile_size) // 4) if overlap is None else overlap
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < min(tile_size):
        raise ValueError(f"Expected an int 0 <= overlap < {min(tile_size)} (the shorter tile side). "
                         f"Received: overlap={overlap!r}")
    flow_scale = DEFAULT_FLOW_SCALE if flow_scale is None else flow_scale
    if not (isinstance(flow_scale, (int, float)) and math.isfinite(flow_scale) and flow_scale > 0):
        raise ValueError(f"Expected a positive flow_scale. Received: flow_scale={flow_scale!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size!r}")

    frames = normalize_frames(np.stack([frame1, frame2]), normalization or DEFAULT_NORMALIZATION)
    corners = [(y, x) for y in tile_starts(height, tile_size[0], overlap)
               for x in tile_starts(width, tile_size[1], overlap)]
    weights = tile_weights(tile_size)
    flow_sum = np.zeros((height, width, 2), np.float64)
    weight_sum = np.zeros((height, width), np.float64)
    th, tw = tile_size
    for start in range(0, len(corners), batch_size):
        batch = corners[start:start + batch_size]
        tiles = np.stack([frames[:, y:y + th, x:x + tw] for y, x in batch])
        flows = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(tiles)), np.float64)
        if flows.shape != (len(batch), th, tw, 2):
            raise ValueError(f"Expected the model to return flow (batch, {th}, {tw}, 2). Received: {flows.shape}")
        for (y, x), flow in zip(batch, flows):
            flow_sum[y:y + th, x:x + tw] += weights[..., None] * flow
            weight_sum[y:y + th, x:x + tw] += weights
    return (flow_scale * flow_sum / weight_sum[..., None]).astype(np.float32)
