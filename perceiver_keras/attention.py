"""Multi-head QKV attention with separate query/key and value widths, as Perceiver IO uses it."""

import keras
from keras import ops

from perceiver_keras import _checks


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverAttention(keras.layers.Layer):
    """Multi-head attention whose query/key, value and output widths are set separately.

    Queries come from `query` (B, O, Cq), keys and values from `key_value` (B, M, Ckv).
    Scores are scaled by 1/sqrt(qk channels per head). Masked keys get zero weight; a query
    whose keys are all masked gets zero attention weights (and so a zero context), never NaN.

    Args:
        num_heads: int, attention heads; must divide `qk_channels` and `v_channels`.
        qk_channels: int, width of queries and keys; defaults to Cq.
        v_channels: int, width of values; defaults to `qk_channels`.
        output_channels: int, width of the output projection; defaults to Cq.
        dropout: float, dropout on the attention probabilities.
        use_bias: bool, biases in the projections.
        kernel_initializer: initializer of the projection kernels.

    Call arguments:
        query: tensor (B, O, Cq).
        key_value: tensor (B, M, Ckv).
        key_mask: optional (B, M), 1/True where a key may be attended to.
        query_mask: optional (B, O); masked queries output zeros.
        training: bool, enables dropout.
        return_attention_scores: bool, also return the probabilities (B, heads, O, M).

    Example:
    >>> attention = PerceiverAttention(num_heads=2, qk_channels=8, v_channels=16)
    >>> attention(keras.ops.ones((2, 3, 4)), keras.ops.ones((2, 10, 6))).shape
    (2, 3, 4)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, appendix E.
    """

    def __init__(self, num_heads, qk_channels=None, v_channels=None, output_channels=None, dropout=0.0,
                 use_bias=True, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.qk_channels = _checks.positive_int("qk_channels", qk_channels, allow_none=True)
        self.v_channels = _checks.positive_int("v_channels", v_channels, allow_none=True)
        self.output_channels = _checks.positive_int("output_channels", output_channels, allow_none=True)
        self.dropout = _checks.probability("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _checks.default_initializer())
        for name in ("qk_channels", "v_channels"):
            if getattr(self, name) is not None:
                _checks.divisible(name, getattr(self, name), "num_heads", num_heads)

    def build(self, query_shape, key_value_shape):
        _checks.tensor_shape(self.name, "query", query_shape, 3)
        _checks.tensor_shape(self.name, "key_value", key_value_shape, 3)
        self._query_channels, self._kv_channels = query_shape[-1], key_value_shape[-1]
        qk = self.qk_channels or self._query_channels
        v = self.v_channels or qk
        _checks.divisible("qk_channels", qk, "num_heads", self.num_heads)
        _checks.divisible("v_channels", v, "num_heads", self.num_heads)
        self._qk, self._v = qk, v
        out = self.output_channels or self._query_channels

        def dense(units, name, in_channels):
            layer = keras.layers.Dense(
                units, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer, name=name
            )
            layer.build((None, None, in_channels))
            return layer

        self.query_dense = dense(qk, "query", self._query_channels)
        self.key_dense = dense(qk, "key", self._kv_channels)
        self.value_dense = dense(v, "value", self._kv_channels)
        self.output_dense = dense(out, "output", v)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")

    def _split_heads(self, x, channels):
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], self.num_heads, channels // self.num_heads))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, query, key_value, key_mask=None, query_mask=None, training=None,
             return_attention_scores=False):
        _checks.tensor_shape(self.name, "query", query.shape, 3, channels=self._query_channels)
        _checks.tensor_shape(self.name, "key_value", key_value.shape, 3, channels=self._kv_channels)
        _checks.mask_shape(self.name, "key_mask", key_mask, key_value, "key_value")
        _checks.mask_shape(self.name, "query_mask", query_mask, query, "query")
        scale = float(self._qk // self.num_heads) ** -0.5
        q = self._split_heads(self.query_dense(query), self._qk)  # (B, H, O, dqk)
        k = self._split_heads(self.key_dense(key_value), self._qk)  # (B, H, M, dqk)
        v = self._split_heads(self.value_dense(key_value), self._v)  # (B, H, M, dv)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * ops.cast(scale, q.dtype)
        if key_mask is not None:
            keep = ops.cast(key_mask, scores.dtype)[:, None, None, :]
            # A large finite negative, not -inf: a fully masked row then stays finite and is
            # zeroed by the multiplication below instead of turning into NaN.
            very_negative = -1e9 if keras.backend.standardize_dtype(scores.dtype) == "float32" else -3e4
            scores = scores + (1.0 - keep) * ops.cast(very_negative, scores.dtype)
        probs = ops.softmax(scores, axis=-1)
        if key_mask is not None:
            probs = probs * keep
        probs = self.attention_dropout(probs, training=training)
        context = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))  # (B, O, H, dv)
        shape = ops.shape(context)
        output = self.output_dense(ops.reshape(context, (shape[0], shape[1], self._v)))
        if query_mask is not None:
            output = output * ops.cast(query_mask, output.dtype)[:, :, None]
        if return_attention_scores:
            return output, probs
        return output

    def compute_output_shape(self, query_shape, key_value_shape, *args, **kwargs):
        return (*query_shape[:-1], self.output_channels or query_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            qk_channels=self.qk_channels,
            v_channels=self.v_channels,
            output_channels=self.output_channels,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
