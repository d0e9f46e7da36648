"""Perceiver AR's pre-norm feed-forward update, plain or gated (T5 1.1's gated GELU)."""

import keras

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.mlp import activate, check_activation
from perceiver_keras.normalization import check_normalization, normalization_layer


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PrenormMLP(keras.layers.Layer):
    """Norm -> Dense(widening_factor * D) -> activation -> Dense(D): Perceiver AR's feed-forward update.

    Gated (`gated=True`, T5 1.1's MLP): the activated projection is multiplied by a second, linear
    projection of the same input (`dense_gate`) before the output projection.

    Shapes: (B, L, D) -> (B, L, D) (the update; the caller adds the residual).

    Args:
        widening_factor: int, hidden width as a multiple of D.
        use_bias: bool, biases in the Dense layers (the reference has none).
        dropout: float, dropout after the activation (after the gate when gated).
        epsilon: norm epsilon.
        kernel_initializer: initializer of the kernels (default normal, stddev 0.02).
        normalization: "layer_norm" (the reference's) or "rms_norm" (T5's).
        activation: "gelu" (exact, the reference's), "gelu_tanh" (flax's default GELU) or a Keras
            activation name.
        gated: bool, T5 1.1's gated form (three kernels instead of two).

    Example:
    >>> PrenormMLP()(keras.ops.ones((1, 3, 8))).shape
    (1, 3, 8)

    Reference: Shazeer, "GLU Variants Improve Transformer", arXiv 2002.05202 (the gated form).
    """

    def __init__(self, widening_factor=4, use_bias=False, dropout=0.0, epsilon=1e-5, kernel_initializer=None,
                 normalization="layer_norm", activation="gelu", gated=False, **kwargs):
        super().__init__(**kwargs)
        self.widening_factor = _checks.positive_int("widening_factor", widening_factor)
        self.use_bias = bool(use_bias)
        self.dropout = _checks.probability("dropout", dropout)
        self.epsilon = float(epsilon)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        self.normalization = check_normalization(normalization)
        self.activation = check_activation(activation)
        self.gated = bool(gated)

    def _dense(self, units, name, in_channels):
        layer = keras.layers.Dense(units, use_bias=self.use_bias, name=name, dtype=self.dtype_policy,
                                   kernel_initializer=clone_initializer(self.kernel_initializer, name))
        layer.build((None, None, in_channels))
        return layer

    def build(self, inputs_shape):
        channels, hidden = inputs_shape[-1], self.widening_factor * inputs_shape[-1]
        self.norm = normalization_layer(self.normalization, channels, self.epsilon, "norm", self.dtype_policy)
        self.dense_in = self._dense(hidden, "dense_in", channels)
        if self.gated:
            self.dense_gate = self._dense(hidden, "dense_gate", channels)
        self.dense_out = self._dense(channels, "dense_out", hidden)
        self.hidden_dropout = keras.layers.Dropout(self.dropout, name="hidden_dropout", dtype=self.dtype_policy)

    def call(self, inputs, training=None):
        normed = self.norm(inputs)
        hidden = activate(self.dense_in(normed), self.activation)
        if self.gated:
            hidden = hidden * self.dense_gate(normed)
        return self.dense_out(self.hidden_dropout(hidden, training=training))

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            widening_factor=self.widening_factor,
            use_bias=self.use_bias,
            dropout=self.dropout,
            epsilon=self.epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            normalization=self.normalization,
            activation=self.activation,
            gated=self.gated,
        )
        return config
