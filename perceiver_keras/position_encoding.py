"""Fourier and trainable position encodings; both also serve as decoder query providers."""

import math

import keras
import numpy as np
from keras import ops

from perceiver_keras import _checks


def linear_positions(index_dims):
    """Positions in [-1, 1] on an ij grid: numpy array of shape (*index_dims, len(index_dims))."""
    axes = [np.linspace(-1.0, 1.0, num=n, dtype=np.float64) for n in index_dims]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def fourier_features(positions, num_bands, max_resolution, concat_pos=True, sine_only=False):
    """Fourier features of positions, in the reference's channel order.

    `[positions, sin(pi f x) for each dim and band, cos(pi f x) ...]` with
    `f = linspace(1, max_resolution / 2, num_bands)` per dimension (dimension-major).

    Args:
        positions: tensor (..., d) of positions, typically in [-1, 1].
        num_bands: number of frequency bands K per dimension.
        max_resolution: sequence of d ints, the Nyquist resolution per dimension.
        concat_pos: whether to prepend the raw positions.
        sine_only: whether to omit the cosine block.

    Returns:
        Tensor (..., d * (2K or K) [+ d]).
    """
    freqs = np.stack([np.linspace(1.0, res / 2.0, num=num_bands) for res in max_resolution])
    freqs = ops.convert_to_tensor(freqs.astype("float32"), dtype=positions.dtype)
    per_dim = ops.expand_dims(positions, -1) * freqs  # (..., d, K)
    leading = ops.shape(per_dim)[:-2]
    per_dim = ops.reshape(per_dim, (*leading, len(max_resolution) * num_bands))
    blocks = [ops.sin(math.pi * per_dim)] + ([] if sine_only else [ops.cos(math.pi * per_dim)])
    if concat_pos:
        blocks.insert(0, positions)
    return ops.concatenate(blocks, axis=-1)


def _batch_gather(values, indices):
    """`values[b, indices[b, o]]` for values (B, M, C) and int indices (B, O), as one flat gather."""
    shape = ops.shape(values)
    batch, length, channels = shape[0], shape[1], shape[2]
    offsets = ops.expand_dims(ops.arange(batch, dtype=indices.dtype) * ops.cast(length, indices.dtype), 1)
    flat = ops.reshape(values, (-1, channels))
    return ops.take(flat, indices + offsets, axis=0)


class _PositionEncoding(keras.layers.Layer):
    """Shared part: the optional projection, the (B, O, C) contract and the config."""

    def __init__(self, index_dims, projection_channels=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.index_dims = _checks.index_dims_tuple("index_dims", index_dims)
        self.projection_channels = _checks.positive_int(
            "projection_channels", projection_channels, allow_none=True
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _checks.default_initializer())
        self.projection = None

    @property
    def num_positions(self):
        return math.prod(self.index_dims)

    @property
    def encoding_channels(self):
        raise NotImplementedError

    @property
    def num_channels(self):
        """Channels of the output, after the optional projection."""
        return self.projection_channels or self.encoding_channels

    def build(self, inputs_shape, indices_shape=None):
        if self.projection_channels:
            self.projection = keras.layers.Dense(
                self.projection_channels, kernel_initializer=self.kernel_initializer, name="projection"
            )
            self.projection.build((None, None, self.encoding_channels))

    def _project(self, encoding):
        return self.projection(encoding) if self.projection is not None else encoding

    def compute_output_shape(self, inputs_shape, indices_shape=None):
        length = self.num_positions if indices_shape is None else indices_shape[1]
        return (inputs_shape[0], length, self.num_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            index_dims=list(self.index_dims),
            projection_channels=self.projection_channels,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class FourierPositionEncoding(_PositionEncoding):
    """Fixed Fourier-feature position encoding over an N-dimensional index grid.

    The features of the full grid are computed once, in `build`; subsampled positions
    (`indices`) are featurised on the fly.

    Shapes: `inputs` (B, ...) only supplies the batch size; output (B, M, F) with
    M = prod(index_dims), or (B, O, F) when `indices` (B, O) is given.
    F = d * num_bands * (1 if sine_only else 2) + (d if concat_pos else 0).

    Args:
        index_dims: int or tuple of ints, the grid (e.g. `(224, 224)`).
        num_bands: int, frequency bands per dimension.
        max_resolution: tuple of ints, Nyquist resolution per dimension; defaults to `index_dims`.
        concat_pos: bool, prepend the raw positions.
        sine_only: bool, omit the cosine block.
        projection_channels: optional int; project the features to this many channels.

    Call arguments:
        inputs: any tensor whose first axis is the batch.
        indices: optional int tensor (B, O) of flat (row-major) grid indices to encode.

    Example:
    >>> enc = FourierPositionEncoding(index_dims=(8, 8), num_bands=4)
    >>> enc(keras.ops.zeros((2, 8, 8, 1))).shape
    (2, 64, 18)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 3 and appendix.
    """

    def __init__(self, index_dims, num_bands, max_resolution=None, concat_pos=True, sine_only=False,
                 projection_channels=None, kernel_initializer=None, **kwargs):
        super().__init__(index_dims, projection_channels, kernel_initializer, **kwargs)
        self.num_bands = _checks.positive_int("num_bands", num_bands)
        resolution = self.index_dims if max_resolution is None else max_resolution
        self.max_resolution = _checks.index_dims_tuple("max_resolution", resolution)
        if len(self.max_resolution) != len(self.index_dims):
            raise ValueError(
                "`max_resolution` needs one entry per index dimension. "
                f"Received: index_dims={self.index_dims}, max_resolution={self.max_resolution}"
            )
        self.concat_pos = bool(concat_pos)
        self.sine_only = bool(sine_only)
        self._grid_features = None

    @property
    def encoding_channels(self):
        d = len(self.index_dims)
        return d * self.num_bands * (1 if self.sine_only else 2) + (d if self.concat_pos else 0)

    def build(self, inputs_shape, indices_shape=None):
        positions = linear_positions(self.index_dims).reshape(self.num_positions, len(self.index_dims))
        # Computed once in float64 numpy, then cast: a constant of the graph, not per-call work.
        freqs = np.stack([np.linspace(1.0, r / 2.0, num=self.num_bands) for r in self.max_resolution])
        scaled = (positions[:, :, None] * freqs[None]).reshape(self.num_positions, -1)
        blocks = [np.sin(np.pi * scaled)] + ([] if self.sine_only else [np.cos(np.pi * scaled)])
        if self.concat_pos:
            blocks.insert(0, positions)
        self._grid_features = np.concatenate(blocks, axis=-1).astype("float32")
        super().build(inputs_shape, indices_shape)

    def call(self, inputs, indices=None):
        batch = ops.shape(inputs)[0]
        if indices is None:
            grid = ops.convert_to_tensor(self._grid_features, dtype=self.compute_dtype)
            encoding = ops.broadcast_to(ops.expand_dims(grid, 0), (batch, *self._grid_features.shape))
        else:
            # Subsampled queries place index i at -1 + 2 i / n, as the reference does
            # (not on the linspace grid): this keeps converted checkpoints exact.
            indices = ops.cast(indices, "int32")
            coords, stride = [], self.num_positions
            for n in self.index_dims:
                stride //= n
                coords.append(ops.mod(ops.floor_divide(indices, stride), n))
            positions = ops.stack([ops.cast(c, self.compute_dtype) for c in coords], axis=-1)
            scale = ops.convert_to_tensor(np.array(self.index_dims, "float32"), dtype=self.compute_dtype)
            positions = -1.0 + 2.0 * positions / scale
            encoding = fourier_features(
                positions, self.num_bands, self.max_resolution, self.concat_pos, self.sine_only
            )
        return self._project(encoding)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_bands=self.num_bands,
            max_resolution=list(self.max_resolution),
            concat_pos=self.concat_pos,
            sine_only=self.sine_only,
        )
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class TrainablePositionEncoding(_PositionEncoding):
    """A learned embedding per position; also the trainable decoder query array.

    Shapes: `inputs` (B, ...) only supplies the batch size; output (B, M, C) with
    M = prod(index_dims), or (B, O, C) when `indices` (B, O) is given.

    Args:
        index_dims: int or tuple of ints, the positions (e.g. `2048`, or `(1,)` for one query).
        num_channels: int, channels per position.
        initializer: initializer of the embeddings (default truncated normal, stddev 0.02).
        projection_channels: optional int; project the embeddings to this many channels.

    Call arguments:
        inputs: any tensor whose first axis is the batch.
        indices: optional int tensor (B, O) of flat indices to select (subsampled decoding).

    Example:
    >>> query = TrainablePositionEncoding(index_dims=1, num_channels=32)
    >>> query(keras.ops.zeros((4, 10, 3))).shape
    (4, 1, 32)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795.
    """

    def __init__(self, index_dims, num_channels, initializer=None, projection_channels=None,
                 kernel_initializer=None, **kwargs):
        super().__init__(index_dims, projection_channels, kernel_initializer, **kwargs)
        self.embedding_channels = _checks.positive_int("num_channels", num_channels)
        self.initializer = keras.initializers.get(initializer or _checks.embedding_initializer())

    @property
    def encoding_channels(self):
        return self.embedding_channels

    def build(self, inputs_shape, indices_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_positions, self.embedding_channels), initializer=self.initializer
        )
        super().build(inputs_shape, indices_shape)

    def call(self, inputs, indices=None):
        batch = ops.shape(inputs)[0]
        if indices is None:
            shape = (batch, self.num_positions, self.embedding_channels)
            encoding = ops.broadcast_to(ops.expand_dims(self.embeddings, 0), shape)
        else:
            encoding = ops.take(self.embeddings, ops.cast(indices, "int32"), axis=0)
        return self._project(encoding)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_channels=self.embedding_channels,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class InputQuery(keras.layers.Layer):
    """Decoder queries taken from the preprocessed inputs themselves (as optical flow does).

    Shapes: `inputs` (B, M, C) -> (B, M, C), or (B, O, C) when `indices` (B, O) selects a subset.

    Call arguments:
        inputs: the preprocessed input array.
        indices: optional int tensor (B, O) of positions along axis 1 to keep.

    Example:
    >>> InputQuery()(keras.ops.ones((2, 6, 3)), keras.ops.array([[0, 5], [1, 2]])).shape
    (2, 2, 3)
    """

    def call(self, inputs, indices=None):
        if indices is None:
            return inputs
        return _batch_gather(inputs, ops.cast(indices, "int32"))

    def compute_output_shape(self, inputs_shape, indices_shape=None):
        length = inputs_shape[1] if indices_shape is None else indices_shape[1]
        return (inputs_shape[0], length, inputs_shape[-1])


@keras.saving.register_keras_serializable(package="perceiver_keras")
class SinusoidalInitializer(keras.initializers.Initializer):
    """Initialises a (positions, channels) table with Transformer sine/cosine position features.

    Row p is `[sin(p w_0), ..., sin(p w_{C/2-1}), cos(p w_0), ...]` with `w_i =
    max_wavelength ** (-2 i / C)`, scaled so that the entries' root mean square is `stddev`. Trainable
    position embeddings that start from it are distinct and smoothly ordered from the first step,
    where random ones must first learn to tell positions apart: a small byte model learned to copy
    its input (50% after 384 steps) where random tables left it at chance. The weights remain trainable and
    loaded checkpoints overwrite them.

    Args:
        stddev: float, the root mean square of the entries (0.02, as the random embeddings).
        max_wavelength: float, the longest wavelength, in positions.

    Example:
    >>> tuple(SinusoidalInitializer()((16, 8)).shape)
    (16, 8)
    """

    def __init__(self, stddev=0.02, max_wavelength=10_000.0):
        self.stddev = float(stddev)
        self.max_wavelength = float(max_wavelength)

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"SinusoidalInitializer needs a 2-D (positions, channels) shape. Received: shape={shape}")
        positions, channels = shape
        half = (channels + 1) // 2
        frequencies = ops.power(self.max_wavelength, -2.0 * ops.arange(half, dtype="float32") / channels)
        angles = ops.arange(positions, dtype="float32")[:, None] * frequencies[None, :]
        table = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)[:, :channels]
        return ops.cast(table * (self.stddev * math.sqrt(2.0)), dtype or "float32")

    def get_config(self):
        return {"stddev": self.stddev, "max_wavelength": self.max_wavelength}
