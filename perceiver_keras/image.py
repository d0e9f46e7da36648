"""Image adapters: pixels, 1x1-conv or conv-stem features plus Fourier or trainable positions."""

import math

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.position_encoding import FourierPositionEncoding, TrainablePositionEncoding
from perceiver_keras.saving import with_current_argument_names

PREP_TYPES = ("pixels", "conv1x1", "conv")
POSITION_ENCODINGS = ("fourier", "trainable")


@keras.saving.register_keras_serializable(package="perceiver_keras")
class ImagePreprocessor(keras.layers.Layer):
    """Turns channels-last images (B, H, W, C) into a Perceiver input array (B, M, C').

    - "pixels": every pixel is an input (M = H W).
    - "conv1x1": a 1x1 convolution to `conv_channels` first.
    - "conv": the paper's conv stem, a 7x7 stride-2 convolution (no bias; symmetric zero
      padding of 3, as the reference), batch norm, ReLU and a 3x3 stride-2 max-pool. Kernel,
      stride and pool are arguments, so small images can use e.g. a 3x3 stride-1 stem, no pool.
      `pool_padding="valid"` matches transformers' port (224 -> 55x55); "same" gives DeepMind's
      56x56.
    Then position features, concatenated (or added) per position: Fourier features over the
    feature grid, or a trainable embedding per position, optionally projected.

    Args:
        prep_type: "pixels", "conv1x1" or "conv".
        conv_channels: int, channels of the 1x1 conv or conv stem.
        position_encoding: "fourier" or "trainable".
        num_bands: int, Fourier bands per dimension.
        max_resolution: optional (h, w) Nyquist resolution; defaults to the feature grid.
        position_channels: int, channels of the trainable encoding.
        position_projection_channels: optional int, project the position features.
        concat_or_add_pos: "concat" or "add".
        pool_padding: "valid" or "same", the conv stem's max-pool padding.
        conv_kernel_size: int, the conv stem's kernel (7); padded by kernel // 2 on each side.
        conv_strides: int, the conv stem's stride (2).
        pool_size: int or None, the conv stem's max-pool window (3, stride 2); None: no pool.
        kernel_initializer: initializer of the convolution kernels and the position projection
            (default: normal, stddev 0.02, as the reference). Biases start at 0; batch norm at scale 1,
            offset 0, moving mean 0 and moving variance 1, as the reference's.
        position_initializer: initializer of the trainable position embeddings (default: normal,
            stddev 0.02, as the reference).

    Call arguments:
        inputs: images (B, H, W, C). training: bool (batch norm).

    Example:
    >>> prep = ImagePreprocessor("pixels", num_bands=4)
    >>> prep(keras.ops.ones((2, 8, 8, 1))).shape
    (2, 64, 19)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.5 and appendix.
    """

    def __init__(self, prep_type="pixels", conv_channels=64, position_encoding="fourier", num_bands=64,
                 max_resolution=None, position_channels=256, position_projection_channels=None,
                 concat_or_add_pos="concat", pool_padding="valid", conv_kernel_size=7, conv_strides=2,
                 pool_size=3, kernel_initializer=None, position_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.prep_type = _checks.one_of("prep_type", prep_type, PREP_TYPES)
        self.conv_channels = _checks.positive_int("conv_channels", conv_channels)
        self.position_encoding = _checks.one_of("position_encoding", position_encoding, POSITION_ENCODINGS)
        self.num_bands = _checks.positive_int("num_bands", num_bands)
        self.max_resolution = None if max_resolution is None else _checks.index_dims_tuple(
            "max_resolution", max_resolution
        )
        self.position_channels = _checks.positive_int("position_channels", position_channels)
        self.position_projection_channels = _checks.positive_int(
            "position_projection_channels", position_projection_channels, allow_none=True
        )
        self.concat_or_add_pos = _checks.one_of("concat_or_add_pos", concat_or_add_pos, ("concat", "add"))
        self.pool_padding = _checks.one_of("pool_padding", pool_padding, ("valid", "same"))
        self.conv_kernel_size = _checks.positive_int("conv_kernel_size", conv_kernel_size)
        self.conv_strides = _checks.positive_int("conv_strides", conv_strides)
        self.pool_size = _checks.positive_int("pool_size", pool_size, allow_none=True)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        self.position_initializer = _checks.initializer("position_initializer", position_initializer,
                                                        reference_initializer)

    def build(self, inputs_shape):
        _checks.tensor_shape(self.name, "inputs", inputs_shape, 4)
        if None in tuple(inputs_shape[1:]):
            raise ValueError(f"Layer '{self.name}' needs a static image size. Received: inputs.shape={inputs_shape}")
        self._image_shape = tuple(inputs_shape[1:])
        # Sublayers get this layer's policy: built later, they would otherwise take the global one.
        policy = self.dtype_policy
        init = clone_initializer(self.kernel_initializer, "conv")
        feature_shape = self._image_shape
        if self.prep_type == "conv1x1":
            self.conv = keras.layers.Conv2D(self.conv_channels, 1, kernel_initializer=init, name="conv", dtype=policy)
        elif self.prep_type == "conv":
            self.stem = [
                keras.layers.ZeroPadding2D(self.conv_kernel_size // 2, name="stem_padding", dtype=policy),
                keras.layers.Conv2D(self.conv_channels, self.conv_kernel_size, strides=self.conv_strides,
                                    use_bias=False, kernel_initializer=init, name="conv", dtype=policy),
                keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="batch_norm", dtype=policy),
                keras.layers.ReLU(name="relu", dtype=policy),
            ]
            if self.pool_size:
                self.stem.append(keras.layers.MaxPooling2D(self.pool_size, strides=2, padding=self.pool_padding,
                                                           name="max_pool", dtype=policy))
        for layer in getattr(self, "stem", [getattr(self, "conv", None)]):
            if layer is not None:
                layer.build((None, *feature_shape))
                feature_shape = layer.compute_output_shape((None, *feature_shape))[1:]
        self._grid = tuple(feature_shape[:2])
        self._feature_channels = feature_shape[-1]
        if self.position_encoding == "fourier":
            self.positions = FourierPositionEncoding(
                self._grid, self.num_bands, max_resolution=self.max_resolution,
                projection_channels=self.position_projection_channels,
                kernel_initializer=clone_initializer(self.kernel_initializer, "positions"), name="positions",
                dtype=policy,
            )
        else:
            self.positions = TrainablePositionEncoding(
                math.prod(self._grid), self.position_channels,
                initializer=clone_initializer(self.position_initializer, "positions"),
                projection_channels=self.position_projection_channels,
                kernel_initializer=clone_initializer(self.kernel_initializer, "positions"), name="positions",
                dtype=policy,
            )
        self.positions.build((None,))
        if self.concat_or_add_pos == "add" and self.positions.output_channels != self._feature_channels:
            raise ValueError(
                "Adding positions needs as many position channels as feature channels. "
                f"Received: position channels={self.positions.output_channels}, features={self._feature_channels}"
            )

    @property
    def output_channels(self):
        """Channels C' of the output array."""
        if self.concat_or_add_pos == "add":
            return self._feature_channels
        return self._feature_channels + self.positions.output_channels

    def call(self, inputs, training=None):
        _checks.tensor_shape(self.name, "images", inputs.shape, 4, channels=self._image_shape[-1])
        if tuple(inputs.shape[1:3]) != self._image_shape[:2]:
            raise ValueError(
                f"Layer '{self.name}' expected images of size {self._image_shape[:2]}. "
                f"Received: images.shape={tuple(inputs.shape)}"
            )
        features = inputs
        if self.prep_type == "conv1x1":
            features = self.conv(features)
        elif self.prep_type == "conv":
            for layer in self.stem:
                features = layer(features, training=training) if layer.name == "batch_norm" else layer(features)
        batch = ops.shape(features)[0]
        features = ops.reshape(features, (batch, math.prod(self._grid), self._feature_channels))
        positions = ops.cast(self.positions(features), features.dtype)
        if self.concat_or_add_pos == "add":
            return features + positions
        return ops.concatenate([features, positions], axis=-1)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], math.prod(self._grid), self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            prep_type=self.prep_type, conv_channels=self.conv_channels, position_encoding=self.position_encoding,
            num_bands=self.num_bands,
            max_resolution=None if self.max_resolution is None else list(self.max_resolution),
            position_channels=self.position_channels,
            position_projection_channels=self.position_projection_channels,
            concat_or_add_pos=self.concat_or_add_pos, pool_padding=self.pool_padding,
            conv_kernel_size=self.conv_kernel_size, conv_strides=self.conv_strides, pool_size=self.pool_size,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            position_initializer=keras.initializers.serialize(self.position_initializer),
        )
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_current_argument_names(config, out_channels="conv_channels"))


@keras.saving.register_keras_serializable(package="perceiver_keras")
class ClassificationPostprocessor(keras.layers.Layer):
    """Takes the logits of the single classification query: (B, 1, K) -> (B, K).

    The logits come out in the variable dtype, float32 under mixed precision, as Keras advises
    for a model's outputs: predictions and the loss's inputs are float32.

    Example:
    >>> ClassificationPostprocessor()(keras.ops.ones((2, 1, 10))).shape
    (2, 10)
    """

    def call(self, inputs):
        _checks.tensor_shape(self.name, "inputs", inputs.shape, 3, length=1)
        return ops.cast(inputs[:, 0, :], self.variable_dtype)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], inputs_shape[-1])
