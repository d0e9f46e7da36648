"""Optical-flow adapters: frame-pair patches plus Fourier positions in, rescaled flow vectors out."""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.position_encoding import FourierPositionEncoding
from perceiver_keras.saving import with_current_argument_names


@keras.saving.register_keras_serializable(package="perceiver_keras")
class FlowPreprocessor(keras.layers.Layer):
    """Turns a pair of channels-last frames (B, 2, H, W, C) into the flow input array (B, H W, C').

    Every pixel is one input: the `patch_size` x `patch_size` patch around it in every frame (zero
    padding at the borders), linearly projected to `patch_projection_channels`, then 2D Fourier features
    of its position concatenated: C' = patch_projection_channels + 2 + 4 num_bands (322 for the paper's 64 + 64 bands).

    The patch values are ordered (frame, patch row, patch column, channel), channel fastest: the
    order of DeepMind's `patches_for_flow` (which rearranges `conv_general_dilated_patches` into
    `tf.image.extract_patches`' order) followed by `space_to_depth` over the two frames, and so the
    order the released checkpoint's projection (transformers' `conv_after_patches`) expects. The
    patches are built here from a zero pad and shifted slices, ops every backend and the TFLite
    builtin op set have, rather than `extract_patches`, which needs Flex in TFLite.

    Args:
        patch_projection_channels: int, width of the patch projection.
        num_bands: int, Fourier bands per spatial dimension.
        max_resolution: optional (h, w), the Fourier features' Nyquist resolution; defaults to the
            frame size. The released model uses its training size (368, 496) at every frame size.
        patch_size: odd int, the patch side.
        num_frames: int, frames per example.
        input_channels: int C, channels per frame.
        kernel_initializer: initializer of the projection's kernel (default: normal, stddev 0.02, as
            the reference; its bias starts at 0).

    Call arguments:
        inputs: frames (B, num_frames, H, W, input_channels), static H and W.

    Example:
    >>> prep = FlowPreprocessor(patch_projection_channels=8, num_bands=4)
    >>> prep(keras.ops.ones((2, 2, 6, 5, 3))).shape
    (2, 30, 26)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.2 and appendix.
    """

    def __init__(self, patch_projection_channels=64, num_bands=64, max_resolution=None, patch_size=3, num_frames=2,
                 input_channels=3, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.patch_projection_channels = _checks.positive_int("patch_projection_channels", patch_projection_channels)
        self.num_bands = _checks.positive_int("num_bands", num_bands)
        self.max_resolution = None if max_resolution is None else _checks.index_dims_tuple(
            "max_resolution", max_resolution
        )
        if self.max_resolution is not None and len(self.max_resolution) != 2:
            raise ValueError(f"`max_resolution` must be (height, width). Received: max_resolution={max_resolution!r}")
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        if self.patch_size % 2 == 0:
            raise ValueError(
                f"`patch_size` must be odd, so that patches centre on a pixel. Received: patch_size={patch_size}"
            )
        self.num_frames = _checks.positive_int("num_frames", num_frames)
        self.input_channels = _checks.positive_int("input_channels", input_channels)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)

    @property
    def values_per_patch(self):
        """Values per pixel before the projection: frames x patch x patch x channels (54 for flow)."""
        return self.num_frames * self.patch_size**2 * self.input_channels

    def _check_frames(self, shape):
        shape = tuple(shape)
        expected = (self.num_frames, None, None, self.input_channels)
        if len(shape) != 5 or any(e is not None and s is not None and s != e for s, e in zip(shape[1:], expected)):
            raise ValueError(
                f"Layer '{self.name}' expected frames of shape (batch, {self.num_frames}, height, width, "
                f"{self.input_channels}). Received: inputs.shape={shape}"
            )

    def build(self, inputs_shape):
        self._check_frames(inputs_shape)
        if None in tuple(inputs_shape[2:4]):
            raise ValueError(f"Layer '{self.name}' needs a static frame size. Received: inputs.shape={inputs_shape}")
        self._frame_size = tuple(inputs_shape[2:4])
        self.patch_projection = keras.layers.Dense(
            self.patch_projection_channels,
            kernel_initializer=clone_initializer(self.kernel_initializer, "patch_projection"),
            name="patch_projection", dtype=self.dtype_policy,
        )
        self.patch_projection.build((None, None, self.values_per_patch))
        self.positions = FourierPositionEncoding(
            self._frame_size, self.num_bands, max_resolution=self.max_resolution, name="positions",
            dtype=self.dtype_policy,
        )
        self.positions.build((None,))

    @property
    def output_channels(self):
        """Channels C' of the output array."""
        return self.patch_projection_channels + 2 + 4 * self.num_bands

    def call(self, inputs):
        self._check_frames(inputs.shape)
        height, width = self._frame_size
        if tuple(inputs.shape[2:4]) != self._frame_size:
            raise ValueError(
                f"Layer '{self.name}' expected frames of size {self._frame_size}. "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        pad, size = self.patch_size // 2, self.patch_size
        # Frames stacked along the rows: 4-D slices only (TensorFlow Lite Micro slices at most 4-D).
        stacked = ops.reshape(inputs, (-1, self.num_frames * height, width, inputs.shape[-1]))
        frames = []
        for f in range(self.num_frames):
            frame = ops.pad(stacked[:, f * height:(f + 1) * height], [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            # Nested concatenations (columns, then rows, then frames) keep DeepMind's channel order
            # with at most `patch_size` inputs each (TensorFlow Lite Micro concatenates at most 10).
            rows = [ops.concatenate([frame[:, dy:dy + height, dx:dx + width, :] for dx in range(size)], axis=-1)
                    for dy in range(size)]
            frames.append(ops.concatenate(rows, axis=-1))
        patches = ops.concatenate(frames, axis=-1)  # (B, H, W, frame * row * column * channel)
        batch = ops.shape(inputs)[0]
        features = self.patch_projection(ops.reshape(patches, (batch, height * width, self.values_per_patch)))
        positions = ops.cast(self.positions(features), features.dtype)
        return ops.concatenate([features, positions], axis=-1)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], inputs_shape[2] * inputs_shape[3], self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            patch_projection_channels=self.patch_projection_channels, num_bands=self.num_bands,
            max_resolution=None if self.max_resolution is None else list(self.max_resolution),
            patch_size=self.patch_size, num_frames=self.num_frames, input_channels=self.input_channels,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_current_argument_names(
            config, num_channels="input_channels", out_channels="patch_projection_channels"))


@keras.saving.register_keras_serializable(package="perceiver_keras")
class FlowPostprocessor(keras.layers.Layer):
    """Divides decoded flow by `rescale_factor` and, given `image_size`, lays it out on the pixel grid.

    (B, H W, 2) -> (B, H, W, 2) with `image_size=(H, W)`; with `image_size=None`, (B, O, 2) ->
    (B, O, 2), for subsampled decoding of O pixels. The division lets the zero-initialised decoder
    projection work at the scale of its inputs while it emits small flow values (the reference's
    `rescale_factor`, 100). The flow comes out in the variable dtype (float32 under mixed precision).

    Args:
        rescale_factor: positive float, the divisor.
        image_size: optional (height, width) of the output grid.

    Call arguments:
        inputs: (B, O, C) decoder outputs; O = height x width with `image_size`.

    Example:
    >>> FlowPostprocessor(image_size=(3, 4))(keras.ops.ones((2, 12, 2))).shape
    (2, 3, 4, 2)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.2.
    """

    def __init__(self, rescale_factor=100.0, image_size=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rescale_factor, bool) or not isinstance(rescale_factor, (int, float)) or rescale_factor <= 0:
            raise ValueError(f"`rescale_factor` must be a positive number. Received: rescale_factor={rescale_factor!r}")
        self.rescale_factor = float(rescale_factor)
        self.image_size = None if image_size is None else _checks.index_dims_tuple("image_size", image_size)
        if self.image_size is not None and len(self.image_size) != 2:
            raise ValueError(f"`image_size` must be (height, width). Received: image_size={image_size!r}")

    def call(self, inputs):
        _checks.tensor_shape(self.name, "inputs", inputs.shape, 3)
        outputs = ops.cast(inputs, self.variable_dtype) / self.rescale_factor
        if self.image_size is None:
            return outputs
        height, width = self.image_size
        _checks.tensor_shape(self.name, "inputs", inputs.shape, 3, length=height * width)
        return ops.reshape(outputs, (ops.shape(inputs)[0], height, width, inputs.shape[-1]))

    def compute_output_shape(self, inputs_shape):
        if self.image_size is None:
            return tuple(inputs_shape)
        return (inputs_shape[0], *self.image_size, inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(rescale_factor=self.rescale_factor,
                      image_size=None if self.image_size is None else list(self.image_size))
        return config
