"""Video and audio adapters: space-time and audio patches joined by Fourier positions; Fourier output queries."""

import math

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.fourier import axis_fourier_table, fourier_channels, gather_fourier_features, subsampled_positions
from perceiver_keras.position_encoding import FourierPositionEncoding
from perceiver_keras.saving import with_current_argument_names


def check_input_shape(layer, arg, shape, expected, axes):
    """Raises a ValueError naming `arg`, its expected shape `(batch, *expected)` and what was received."""
    shape = tuple(shape)
    if len(shape) != len(expected) + 1 or any(s is not None and s != e for s, e in zip(shape[1:], expected)):
        raise ValueError(
            f"Layer '{layer}' expected `{arg}` of shape (batch, {', '.join(map(str, expected))}) ({axes}). "
            f"Received: {arg}.shape={shape}"
        )


class _PatchPreprocessor(keras.layers.Layer):
    """What both adapters share: the Fourier positions of the patch grid, concatenated to the patches."""

    input_axes = ""

    def __init__(self, num_bands, max_resolution, **kwargs):
        super().__init__(**kwargs)
        self.num_bands = _checks.positive_int("num_bands", num_bands)
        self.max_resolution = None if max_resolution is None else _checks.index_dims_tuple(
            "max_resolution", max_resolution
        )
        if self.max_resolution is not None and len(self.max_resolution) != len(self.patch_grid):
            raise ValueError(
                f"`max_resolution` needs {len(self.patch_grid)} entries. Received: max_resolution={max_resolution!r}"
            )

    @property
    def num_positions(self):
        """Inputs M this adapter produces: one per patch."""
        return math.prod(self.patch_grid)

    @property
    def output_channels(self):
        """Channels of the output: the patch values plus 2 num_bands + 1 Fourier features per axis."""
        return self.values_per_patch + len(self.patch_grid) * (2 * self.num_bands + 1)

    def check_input_shape(self, shape, arg="inputs"):
        check_input_shape(self.name, arg, shape, self.expected_shape, self.input_axes)

    def build(self, inputs_shape):
        self.check_input_shape(inputs_shape)
        self.positions = FourierPositionEncoding(
            self.patch_grid, self.num_bands, max_resolution=self.max_resolution or self.default_resolution,
            name="positions", dtype=self.dtype_policy,
        )
        self.positions.build((None,))

    def _with_positions(self, patches):
        return ops.concatenate([patches, ops.cast(self.positions(patches), patches.dtype)], axis=-1)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], self.num_positions, self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(num_bands=self.num_bands,
                      max_resolution=None if self.max_resolution is None else list(self.max_resolution))
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class VideoPreprocessor(_PatchPreprocessor):
    """Turns channels-last video (B, T, H, W, C) into one input per space-time patch (B, M, C').

    Patches of `patch_size` = (t, h, w) frames x rows x columns, their t h w C values ordered (frame,
    row, column, channel), channel fastest: the order of transformers' `space_to_depth` (and DeepMind's),
    which the released multimodal checkpoint expects. The patch grid (T/t, H/h, W/w) is flattened
    row-major: M = T H W / (t h w); each patch is joined by 3D Fourier features of its grid position
    with Nyquist resolution `max_resolution` (default the video's (T, H, W), as the reference):
    C' = t h w C + 3 + 6 num_bands (243 for the paper's 1x4x4 patches of RGB and 32 bands). The patches
    are cut with reshapes and 4-D transposes, which every backend and the TFLite builtin op set have.

    Args:
        num_frames: int T.
        frame_size: (H, W).
        input_channels: int C.
        patch_size: (t, h, w), dividing (T, H, W).
        num_bands: int, Fourier bands per axis.
        max_resolution: optional (T, H, W)-like Nyquist resolution of the Fourier features.

    Call arguments:
        inputs: video (B, T, H, W, C).

    Example:
    >>> prep = VideoPreprocessor(num_frames=2, frame_size=(8, 8), num_bands=4)
    >>> prep(keras.ops.ones((1, 2, 8, 8, 3))).shape
    (1, 8, 75)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.3 and appendix.
    """

    input_axes = "frames, height, width, channels"

    def __init__(self, num_frames, frame_size, input_channels=3, patch_size=(1, 4, 4), num_bands=32,
                 max_resolution=None, **kwargs):
        self.num_frames = _checks.positive_int("num_frames", num_frames)
        self.frame_size = _checks.index_dims_tuple("frame_size", frame_size)
        self.input_channels = _checks.positive_int("input_channels", input_channels)
        self.patch_size = _checks.index_dims_tuple("patch_size", patch_size)
        if len(self.frame_size) != 2 or len(self.patch_size) != 3:
            raise ValueError("`frame_size` must be (height, width) and `patch_size` (frames, rows, columns). "
                             f"Received: frame_size={frame_size!r}, patch_size={patch_size!r}")
        size = (self.num_frames, *self.frame_size)
        if any(s % p for s, p in zip(size, self.patch_size)):
            raise ValueError(f"`patch_size` must divide (num_frames, height, width). Received: patch_size="
                             f"{self.patch_size}, (num_frames, height, width)={size}")
        super().__init__(num_bands, max_resolution, **kwargs)

    @property
    def expected_shape(self):
        return (self.num_frames, *self.frame_size, self.input_channels)

    @property
    def patch_grid(self):
        return tuple(s // p for s, p in zip((self.num_frames, *self.frame_size), self.patch_size))

    @property
    def default_resolution(self):
        return (self.num_frames, *self.frame_size)

    @property
    def values_per_patch(self):
        return math.prod(self.patch_size) * self.input_channels

    def call(self, inputs):
        self.check_input_shape(inputs.shape)
        (pt, ph, pw), (gt, gh, gw) = self.patch_size, self.patch_grid
        # (B T H/ph, ph, W/pw, pw C) -> (B T H/ph, W/pw, ph, pw C): each patch row's values together.
        x = ops.reshape(inputs, (-1, ph, gw, pw * self.input_channels))
        x = ops.transpose(x, (0, 2, 1, 3))
        if pt > 1:  # (B T/pt, pt, gh gw, ph pw C) -> (B T/pt, gh gw, pt, ph pw C): frame-major patches.
            x = ops.transpose(ops.reshape(x, (-1, pt, gh * gw, ph * pw * self.input_channels)), (0, 2, 1, 3))
        return self._with_positions(ops.reshape(x, (-1, self.num_positions, self.values_per_patch)))

    def get_config(self):
        config = super().get_config()
        config.update(num_frames=self.num_frames, frame_size=list(self.frame_size),
                      input_channels=self.input_channels, patch_size=list(self.patch_size))
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_current_argument_names(config, num_channels="input_channels"))


@keras.saving.register_keras_serializable(package="perceiver_keras")
class AudioPreprocessor(_PatchPreprocessor):
    """Turns mono audio (B, S, 1) into one input per patch of `samples_per_patch` samples (B, S/P, C').

    Patch p holds samples [p P, (p + 1) P); it is joined by 1D Fourier features of its position among
    the S/P patches with Nyquist resolution `max_resolution` (default S, the number of samples, as the
    reference): C' = P + 1 + 2 num_bands (401 for the paper's 16 samples and 192 bands).

    Args:
        num_samples: int S, a multiple of `samples_per_patch`.
        samples_per_patch: int P.
        num_bands: int, Fourier bands.
        max_resolution: optional int, the Fourier features' Nyquist resolution.

    Call arguments:
        inputs: audio (B, S, 1).

    Example:
    >>> prep = AudioPreprocessor(num_samples=64, samples_per_patch=16, num_bands=4)
    >>> prep(keras.ops.ones((2, 64, 1))).shape
    (2, 4, 25)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.3 and appendix.
    """

    @property
    def input_axes(self):
        return f"samples: {self.num_positions} patches of {self.samples_per_patch}, 1 channel"

    def __init__(self, num_samples, samples_per_patch=16, num_bands=192, max_resolution=None, **kwargs):
        self.num_samples = _checks.positive_int("num_samples", num_samples)
        self.samples_per_patch = _checks.positive_int("samples_per_patch", samples_per_patch)
        if num_samples % samples_per_patch:
            raise ValueError(f"`num_samples` must be a multiple of `samples_per_patch`. Received: num_samples="
                             f"{num_samples}, samples_per_patch={samples_per_patch}")
        super().__init__(num_bands, max_resolution, **kwargs)

    @property
    def expected_shape(self):
        return (self.num_samples, 1)

    @property
    def patch_grid(self):
        return (self.num_samples // self.samples_per_patch,)

    @property
    def default_resolution(self):
        return (self.num_samples,)

    @property
    def values_per_patch(self):
        return self.samples_per_patch

    def call(self, inputs):
        self.check_input_shape(inputs.shape)
        return self._with_positions(ops.reshape(inputs, (-1, self.num_positions, self.samples_per_patch)))

    def get_config(self):
        config = super().get_config()
        config.update(num_samples=self.num_samples, samples_per_patch=self.samples_per_patch)
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class FourierQuery(keras.layers.Layer):
    """Fourier features of output points, flat row-major indices into an `index_dims` grid: (B, O, F).

    Point i of axis size n sits at -1 + 2 i / n: the reference's decoding convention (its queries
    are built from `subsampled_output_points`; the released multimodal model only ever decoded that
    way), so decoding all points at once equals decoding them in chunks. Each point's features are
    gathered per call from a table of each axis's features (`axis_fourier_table`: 16 + 224 + 224 rows
    for the paper's video), within one float32 ulp of the reference's on every backend: a table of
    every output point (802,816 pixels) would be a constant as large as the output.
    F = d * num_bands * (1 if sine_only else 2) + (d if concat_pos else 0).

    Args:
        index_dims: int or tuple of ints, the output grid.
        num_bands: int, bands per axis.
        max_resolution: optional tuple, the Nyquist resolution per axis; defaults to `index_dims`.
        concat_pos: bool, prepend the positions. sine_only: bool, omit the cosines.

    Call arguments:
        inputs: any tensor whose first axis is the batch.
        indices: optional int tensor (B, O) of flat indices in [0, prod(index_dims)); all points if None.

    Example:
    >>> FourierQuery((2, 4, 4), num_bands=2)(keras.ops.zeros((3, 1)), keras.ops.array([[0, 31]] * 3)).shape
    (3, 2, 15)
    """

    def __init__(self, index_dims, num_bands, max_resolution=None, concat_pos=True, sine_only=False, **kwargs):
        super().__init__(**kwargs)
        self.index_dims = _checks.index_dims_tuple("index_dims", index_dims)
        self.num_bands = _checks.positive_int("num_bands", num_bands)
        self.max_resolution = _checks.index_dims_tuple(
            "max_resolution", self.index_dims if max_resolution is None else max_resolution)
        if len(self.max_resolution) != len(self.index_dims):
            raise ValueError("`max_resolution` needs one entry per index dimension. "
                             f"Received: index_dims={self.index_dims}, max_resolution={self.max_resolution}")
        self.concat_pos, self.sine_only = bool(concat_pos), bool(sine_only)

    num_positions = property(lambda self: math.prod(self.index_dims))

    @property
    def output_channels(self):
        """Channels F of the output."""
        return fourier_channels(len(self.index_dims), self.num_bands, self.concat_pos, self.sine_only)

    def build(self, inputs_shape, indices_shape=None):
        self._table = axis_fourier_table([subsampled_positions(n) for n in self.index_dims], self.num_bands,
                                         self.max_resolution, self.concat_pos, self.sine_only)

    def call(self, inputs, indices=None):
        full = indices is None
        indices = ops.arange(self.num_positions, dtype="int32")[None] if full else indices
        table = ops.convert_to_tensor(self._table, dtype=self.compute_dtype)
        features = gather_fourier_features(table, indices, self.index_dims)
        if full:
            shape = (ops.shape(inputs)[0], self.num_positions, self.output_channels)
            features = _checks.broadcast_batch(features, shape)
        return features

    def compute_output_shape(self, inputs_shape, indices_shape=None):
        length = self.num_positions if indices_shape is None else indices_shape[1]
        return (inputs_shape[0], length, self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(index_dims=list(self.index_dims), num_bands=self.num_bands,
                      max_resolution=list(self.max_resolution), concat_pos=self.concat_pos, sine_only=self.sine_only)
        return config
