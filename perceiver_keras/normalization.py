"""Layer normalization and GELU written so that a fully-integer TFLite file keeps every op in integers.

Keras' `LayerNormalization` computes `x * inv + (-mean * inv + beta)`: the `-mean` lowers to a
float NEG that the int8 and 16x8 quantizers leave in float (each wrapped in DEQUANTIZE/QUANTIZE),
cutting an NPU graph at every LayerNorm. `LayerNorm` computes the same function as
`(x - mean) * (rsqrt(var + eps) * gamma) + beta`, which lowers to MEAN, SUB, MUL, RSQRT and ADD,
all of which have integer kernels.

The exact GELU (erf) is one TFLite GELU op, which TensorFlow Lite Micro's resolver lacks. Inside
`integer_friendly()` (used by the integer exports), the Perceiver MLPs compute the tanh form
`0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` as `x sigmoid(2 sqrt(2/pi) (...))`, with MUL/ADD/LOGISTIC
(the converter fuses the literal tanh form back into a GELU op); its largest
difference from the exact GELU is about 4.7e-4, far below int8's resolution. Everything else
(training, float exports, parity with the reference) keeps the exact GELU.
"""

import contextlib
import math
import threading

import keras
from keras import ops

_STATE = threading.local()
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@contextlib.contextmanager
def integer_friendly():
    """While active, Perceiver MLPs trace GELU in its tanh form (MUL/ADD/TANH ops, no GELU op).

    Only graphs traced inside the block change (e.g. the SavedModel an int8 file is converted from);
    the layers and their weights do not.

    Example:
    >>> with integer_friendly():
    ...     assert integer_friendly_active()
    """
    previous = integer_friendly_active()
    _STATE.active = True
    try:
        yield
    finally:
        _STATE.active = previous


def integer_friendly_active():
    return getattr(_STATE, "active", False)


def gelu_tanh(x):
    """GELU's tanh approximation written as `x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`: MUL, ADD, LOGISTIC."""
    x = ops.convert_to_tensor(x)
    # 0.5 (1 + tanh(z)) = sigmoid(2 z): written with tanh, the TFLite converter fuses it back into GELU.
    inner = (x + x * x * x * 0.044715) * (2.0 * _SQRT_2_OVER_PI)
    return x * ops.sigmoid(inner)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis, lowered without a NEG op.

    Same weights (`gamma`, `beta`), arguments and results as Keras' layer (within float rounding);
    only the arithmetic order differs: `(x - mean) * (rsqrt(var + eps) * gamma) + beta`, so a
    fully-integer TFLite file has no float island per LayerNorm. Like Keras' layer it computes in at
    least float32 under mixed precision. On the PyTorch backend it uses Keras' fused kernel.

    Args:
        epsilon: added to the variance (the reference uses 1e-5; Keras' default is 1e-3).
        **kwargs: as `keras.layers.LayerNormalization`.

    Example:
    >>> LayerNorm(epsilon=1e-5)(keras.ops.ones((2, 3, 4))).shape
    (2, 3, 4)
    """

    def call(self, inputs):
        if keras.backend.backend() == "torch" or self.rms_scaling or self.axis not in (-1, [-1], [len(inputs.shape) - 1]):
            return super().call(inputs)
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        mean = ops.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        variance = ops.mean(centred * centred, axis=-1, keepdims=True)
        scale = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            scale = scale * ops.cast(self.gamma, dtype)
        outputs = centred * scale
        if self.center:
            outputs = outputs + ops.cast(self.beta, dtype)
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class RMSNorm(keras.layers.Layer):
    """Root-mean-square normalization over the last axis with a learned scale: T5's LayerNorm.

    `x * rsqrt(mean(x^2) + epsilon) * scale`: no centring and no bias, the norm of T5 and of the
    T5X (flaxformer) Perceiver AR. Like `LayerNorm` it computes in at least float32 under mixed
    precision; its ops (MUL, MEAN, ADD, RSQRT) all have integer kernels.

    Shapes: (..., C) -> (..., C).

    Args:
        epsilon: float, added to the mean square (T5 and flaxformer use 1e-6).

    Example:
    >>> RMSNorm()(keras.ops.ones((2, 3, 4))).shape
    (2, 3, 4)

    Reference: Zhang and Sennrich, "Root Mean Square Layer Normalization", NeurIPS 2019.
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, inputs_shape):
        self.scale = self.add_weight(name="scale", shape=(inputs_shape[-1],), initializer="ones")

    def call(self, inputs):
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        scale = ops.rsqrt(ops.mean(x * x, axis=-1, keepdims=True) + self.epsilon)
        return ops.cast(x * scale * ops.cast(self.scale, dtype), self.compute_dtype)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


NORMALIZATIONS = ("layer_norm", "rms_norm")


def check_normalization(normalization):
    """Returns `normalization` if it is one of NORMALIZATIONS, else raises ValueError."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"`normalization` must be one of {list(NORMALIZATIONS)}. "
                         f"Received: normalization={normalization!r}")
    return normalization


def normalization_layer(normalization, channels, epsilon, name, dtype):
    """A built `LayerNorm` ("layer_norm") or `RMSNorm` ("rms_norm") over `channels`."""
    kind = LayerNorm if check_normalization(normalization) == "layer_norm" else RMSNorm
    layer = kind(epsilon=epsilon, name=name, dtype=dtype)
    layer.build((None, None, channels))
    return layer
