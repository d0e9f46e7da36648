"""Text adapter: byte/token ids -> embeddings plus trainable positions, and back to tied logits."""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.rows import take_rows
from perceiver_keras.saving import with_current_argument_names


@keras.saving.register_keras_serializable(package="perceiver_keras")
class TextPreprocessor(keras.layers.Layer):
    """Embeds token ids (B, M) into a Perceiver input array (B, M, C); reversed, gives tied logits.

    Forward: a token embedding (V x C) plus a trainable position embedding (max_length x C),
    added, as the reference's text preprocessor. Reversed (`reverse=True`), it maps decoder
    outputs (B, O, C) to logits (B, O, V) with the transposed token embedding plus a bias: the
    masked language model's output shares its weights with its input, as in the paper. Calling the
    same layer object both ways is what ties the weights.

    Args:
        vocab_size: int V (262 for the byte vocabulary).
        output_channels: int C, the embedding width (`d_model` in transformers).
        max_length: int, the number of trainable positions (`max_position_embeddings`).
        output_bias: bool, create the bias of the reversed call (needed for `reverse=True`).
        embeddings_initializer: initializer of the token embedding (default: normal, stddev 0.02, as
            the reference; the output bias starts at 0).
        position_initializer: initializer of the position embedding (default: as the tokens';
            `SinusoidalInitializer()` makes a small model learn far faster from scratch).

    Call arguments:
        inputs: int token ids (B, M) with M <= max_length, or with `reverse=True` float (B, O, C).
        reverse: bool, compute logits from hidden states instead of embedding ids.

    Example:
    >>> text = TextPreprocessor(vocab_size=262, output_channels=16, max_length=32, output_bias=True)
    >>> embedded = text(keras.ops.ones((2, 10), "int32"))
    >>> embedded.shape, text(embedded, reverse=True).shape
    ((2, 10, 16), (2, 10, 262))

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.1 (bytes, tied embeddings).
    """

    def __init__(self, vocab_size, output_channels, max_length, output_bias=False, embeddings_initializer=None,
                 position_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = _checks.positive_int("vocab_size", vocab_size)
        self.output_channels = _checks.positive_int("output_channels", output_channels)
        self.max_length = _checks.positive_int("max_length", max_length)
        self.output_bias = bool(output_bias)
        self.embeddings_initializer = _checks.initializer(
            "embeddings_initializer", embeddings_initializer, reference_initializer
        )
        self.position_initializer = _checks.initializer(
            "position_initializer", position_initializer, lambda: self.embeddings_initializer
        )

    def build(self, inputs_shape):
        self.token_embeddings = self.add_weight(
            name="token_embeddings", shape=(self.vocab_size, self.output_channels),
            initializer=clone_initializer(self.embeddings_initializer, "token_embeddings"),
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_length, self.output_channels),
            initializer=clone_initializer(self.position_initializer, "position_embeddings"),
        )
        self.bias = None
        if self.output_bias:
            self.bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")

    def call(self, inputs, reverse=False):
        if reverse:
            return self._logits(inputs)
        _checks.tensor_shape(self.name, "token_ids", inputs.shape, 2)
        length = inputs.shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"Layer '{self.name}' has {self.max_length} positions. "
                f"Received: token_ids.shape={tuple(inputs.shape)}"
            )
        if length is None:
            length = ops.shape(inputs)[1]
        embedded = take_rows(self.token_embeddings, ops.cast(inputs, "int32"))
        return embedded + ops.expand_dims(self.position_embeddings[:length], 0)

    def _logits(self, hidden):
        _checks.tensor_shape(self.name, "hidden states", hidden.shape, 3, channels=self.output_channels)
        if self.bias is None:
            raise ValueError(f"Layer '{self.name}' was built without an output bias; pass output_bias=True "
                             "to use it in reverse. Received: output_bias=False")
        logits = ops.matmul(hidden, ops.transpose(ops.cast(self.token_embeddings, hidden.dtype)))
        # float32 under mixed precision, as Keras advises for a model's outputs.
        return ops.cast(logits + ops.cast(self.bias, hidden.dtype), self.variable_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, output_channels=self.output_channels, max_length=self.max_length,
            output_bias=self.output_bias,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            position_initializer=keras.initializers.serialize(self.position_initializer),
        )
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_current_argument_names(config, num_channels="output_channels"))
