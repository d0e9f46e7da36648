"""The Transformer-style MLP that follows each attention in Perceiver IO."""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.normalization import gelu_tanh, integer_friendly_active

GELU_VARIANTS = ("gelu", "gelu_tanh")


def check_activation(activation):
    """Returns `activation` if it is a GELU variant or a Keras activation name, else raises ValueError."""
    if activation not in GELU_VARIANTS:
        try:
            keras.activations.get(activation)
        except ValueError as error:
            raise ValueError(
                f"`activation` must be one of {list(GELU_VARIANTS)} or a Keras activation name. "
                f"Received: activation={activation!r}"
            ) from error
    return activation


def activate(x, activation):
    """`activation` (a GELU variant or a Keras activation name) of `x`; GELU in its tanh form inside an integer export."""
    if activation in GELU_VARIANTS:
        if integer_friendly_active():  # an integer export: no GELU op (TensorFlow Lite Micro has no kernel)
            return gelu_tanh(x)
        return ops.gelu(x, approximate=activation == "gelu_tanh")
    return keras.activations.get(activation)(x)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverMLP(keras.layers.Layer):
    """Dense(widening_factor * C) -> activation -> Dense(C).

    Shapes: (B, L, C) -> (B, L, C).

    Args:
        widening_factor: int, hidden width as a multiple of the input width.
        activation: "gelu" (exact erf form, as the PyTorch reference), "gelu_tanh" (tanh
            approximation, as DeepMind's JAX code), or any Keras activation name.
        dropout: float, dropout on the output.
        kernel_initializer: initializer of the kernels, cloned for each (default: normal, stddev 0.02,
            as the reference; biases start at 0).

    Call arguments:
        inputs: tensor (B, L, C).
        training: bool, enables dropout.

    Example:
    >>> PerceiverMLP(widening_factor=2)(keras.ops.ones((1, 3, 8))).shape
    (1, 3, 8)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, appendix E.
    """

    def __init__(self, widening_factor=4, activation="gelu", dropout=0.0, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.widening_factor = _checks.positive_int("widening_factor", widening_factor)
        self.activation = check_activation(activation)
        self.dropout = _checks.probability("dropout", dropout)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)

    def build(self, inputs_shape):
        channels = inputs_shape[-1]
        self.dense_in = keras.layers.Dense(
            self.widening_factor * channels, kernel_initializer=clone_initializer(self.kernel_initializer, "dense_in"),
            name="dense_in",
            dtype=self.dtype_policy,
        )
        self.dense_in.build((None, None, channels))
        self.dense_out = keras.layers.Dense(
            channels, kernel_initializer=clone_initializer(self.kernel_initializer, "dense_out"), name="dense_out",
            dtype=self.dtype_policy,
        )
        self.dense_out.build((None, None, self.widening_factor * channels))
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout", dtype=self.dtype_policy)

    def _activate(self, x):
        return activate(x, self.activation)

    def call(self, inputs, training=None):
        hidden = self._activate(self.dense_in(inputs))
        return self.output_dropout(self.dense_out(hidden), training=training)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            widening_factor=self.widening_factor,
            activation=self.activation,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
