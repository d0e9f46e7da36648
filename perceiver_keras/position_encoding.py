"""Fourier and trainable position encodings; both also serve as decoder query providers."""

import math

import keras
import numpy as np
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.saving import with_current_argument_names
from perceiver_keras.fourier import (  # noqa: F401 (fourier_features and linear_positions: public API)
    axis_fourier_table,
    float32_linspace,
    fourier_channels,
    fourier_features,
    gather_fourier_features,
    linear_positions,
    subsampled_positions,
)


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
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        self.projection = None

    @property
    def num_positions(self):
        return math.prod(self.index_dims)

    @property
    def encoding_channels(self):
        """Channels of the encoding itself, before the optional projection."""
        raise NotImplementedError

    @property
    def output_channels(self):
        """Channels of the output, after the optional projection."""
        return self.projection_channels or self.encoding_channels

    def build(self, inputs_shape, indices_shape=None):
        if self.projection_channels:
            self.projection = keras.layers.Dense(
                self.projection_channels, kernel_initializer=clone_initializer(self.kernel_initializer, "projection"),
                name="projection", dtype=self.dtype_policy,
            )
            self.projection.build((None, None, self.encoding_channels))

    def _project(self, encoding):
        return self.projection(encoding) if self.projection is not None else encoding

    def compute_output_shape(self, inputs_shape, indices_shape=None):
        length = self.num_positions if indices_shape is None else indices_shape[1]
        return (inputs_shape[0], length, self.output_channels)

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

    The features of the full grid are computed once, in `build`; those of subsampled positions
    (`indices`) are gathered from per-axis tables. Both are transformers' float32 features to one ulp.

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
        kernel_initializer: initializer of the projection's kernel (default: normal, stddev 0.02,
            as the reference; its bias starts at 0).

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
        self._grid_features = self._subsampled_table = None

    @property
    def encoding_channels(self):
        return fourier_channels(len(self.index_dims), self.num_bands, self.concat_pos, self.sine_only)

    def _table(self, axis_positions):
        return axis_fourier_table(axis_positions, self.num_bands, self.max_resolution, self.concat_pos,
                                  self.sine_only)

    def build(self, inputs_shape, indices_shape=None):
        # Constants of the graph, computed once in numpy with the reference's float32 arithmetic.
        grid = self._table([float32_linspace(-1.0, 1.0, n) for n in self.index_dims])
        coords = np.indices(self.index_dims).reshape(len(self.index_dims), -1)
        offsets = np.cumsum((0, *self.index_dims[:-1]))
        self._grid_features = sum(grid[c + offset] for c, offset in zip(coords, offsets))
        # Subsampled queries place index i at -1 + 2 i / n, as the reference does (not on the
        # linspace grid): this keeps converted checkpoints exact.
        self._subsampled_table = self._table([subsampled_positions(n) for n in self.index_dims])
        super().build(inputs_shape, indices_shape)

    def call(self, inputs, indices=None):
        batch = ops.shape(inputs)[0]
        if indices is None:
            grid = ops.convert_to_tensor(self._grid_features, dtype=self.compute_dtype)
            encoding = _checks.broadcast_batch(ops.expand_dims(grid, 0), (batch, *self._grid_features.shape))
        else:
            table = ops.convert_to_tensor(self._subsampled_table, dtype=self.compute_dtype)
            encoding = gather_fourier_features(table, indices, self.index_dims)
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
        encoding_channels: int, channels of each position's embedding (the output's, unless
            `projection_channels` is given).
        initializer: initializer of the embeddings (default: normal, stddev 0.02, as the reference).
        projection_channels: optional int; project the embeddings to this many channels.
        kernel_initializer: initializer of the projection's kernel (default: normal, stddev 0.02).

    Call arguments:
        inputs: any tensor whose first axis is the batch.
        indices: optional int tensor (B, O) of flat indices to select (subsampled decoding).

    Example:
    >>> query = TrainablePositionEncoding(index_dims=1, encoding_channels=32)
    >>> query(keras.ops.zeros((4, 10, 3))).shape
    (4, 1, 32)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795.
    """

    def __init__(self, index_dims, encoding_channels, initializer=None, projection_channels=None,
                 kernel_initializer=None, **kwargs):
        super().__init__(index_dims, projection_channels, kernel_initializer, **kwargs)
        self._encoding_channels = _checks.positive_int("encoding_channels", encoding_channels)
        self.initializer = _checks.initializer("initializer", initializer, reference_initializer)

    @property
    def encoding_channels(self):
        return self._encoding_channels

    def build(self, inputs_shape, indices_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_positions, self.encoding_channels),
            initializer=clone_initializer(self.initializer, "embeddings"),
        )
        super().build(inputs_shape, indices_shape)

    def call(self, inputs, indices=None):
        batch = ops.shape(inputs)[0]
        if indices is None:
            shape = (batch, self.num_positions, self.encoding_channels)
            encoding = _checks.broadcast_batch(ops.expand_dims(self.embeddings, 0), shape)
        else:
            encoding = ops.take(self.embeddings, ops.cast(indices, "int32"), axis=0)
        return self._project(encoding)

    def get_config(self):
        config = super().get_config()
        config.update(
            encoding_channels=self.encoding_channels,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_current_argument_names(config, num_channels="encoding_channels"))


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
