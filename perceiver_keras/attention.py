"""Multi-head QKV attention with separate query/key and value widths, as Perceiver IO uses it."""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer

MASK_MARGIN = 24.0
"""How far below a row's lowest score masked keys are put before the softmax."""


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
        kernel_initializer: initializer of the projection kernels, cloned for each of the four
            (default: normal, stddev 0.02, as the reference; biases start at 0).
        fold_projections: bool, fold the key/value projections into the queries and the
            attention probabilities where that takes fewer operations (narrow, many inputs);
            the same function and weights, computed in another order.

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
                 use_bias=True, kernel_initializer=None, fold_projections=True, **kwargs):
        super().__init__(**kwargs)
        self.fold_projections = bool(fold_projections)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.qk_channels = _checks.positive_int("qk_channels", qk_channels, allow_none=True)
        self.v_channels = _checks.positive_int("v_channels", v_channels, allow_none=True)
        self.output_channels = _checks.positive_int("output_channels", output_channels, allow_none=True)
        self.dropout = _checks.probability("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
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
                units, use_bias=self.use_bias, kernel_initializer=clone_initializer(self.kernel_initializer, name),
                name=name, dtype=self.dtype_policy,
            )
            layer.build((None, None, in_channels))
            return layer

        self.query_dense = dense(qk, "query", self._query_channels)
        self.key_dense = dense(qk, "key", self._kv_channels)
        self.value_dense = dense(v, "value", self._kv_channels)
        self.output_dense = dense(out, "output", v)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout", dtype=self.dtype_policy)

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
        fold_keys, fold_values = self._folding(query.shape[1])
        q = self._split_heads(self.query_dense(query), self._qk)  # (B, H, O, dqk)
        if fold_keys:
            scores = self._folded_scores(q, key_value)
        else:
            k = self._split_heads(self.key_dense(key_value), self._qk)  # (B, H, M, dqk)
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        scores = scores * ops.cast(scale, scores.dtype)
        keep = None
        if key_mask is not None:
            # A boolean compared in the mask's own (integer) dtype: a float cast of an int32 mask
            # would stay a float op (CAST + QUANTIZE) in a fully-integer TFLite file.
            keep = _as_bool(key_mask)[:, None, None, :]
            # Masked keys score MASK_MARGIN below the row's lowest score (weight < e^-24 each)
            # rather than a huge constant such as -1e9: full-integer TFLite quantizes the scores
            # to 256 steps over their calibrated range, and -1e9 would put every real score in
            # the same step. A fully masked row stays finite and is zeroed by the product below.
            lowest = ops.min(scores, axis=-1, keepdims=True) - ops.cast(MASK_MARGIN, scores.dtype)
            scores = ops.where(keep, scores, lowest)
        probs = ops.softmax(scores, axis=-1)
        if keep is not None:
            probs = ops.where(keep, probs, ops.cast(0.0, probs.dtype))
        probs = self.attention_dropout(probs, training=training)
        if fold_values:
            exact_sums = keep is not None or (training and self.dropout > 0)
            context = self._folded_context(probs, key_value, exact_sums)
        else:
            v = self._split_heads(self.value_dense(key_value), self._v)  # (B, H, M, dv)
            context = ops.matmul(probs, v)  # (B, H, O, dv)
        context = ops.transpose(context, (0, 2, 1, 3))  # (B, O, H, dv)
        shape = ops.shape(context)
        output = self.output_dense(ops.reshape(context, (shape[0], shape[1], self._v)))
        if query_mask is not None:
            output = ops.where(_as_bool(query_mask)[:, :, None], output, ops.cast(0.0, output.dtype))
        if return_attention_scores:
            return output, probs
        return output

    def _folding(self, num_queries):
        """Whether to fold the key and/or value projection into the queries / the probabilities.

        (X Wk + bk) q = X (Wk q) + bk q: scores can be taken against the raw inputs X (M, Ckv)
        after mapping each query into input space (bk q is one number per query). Likewise
        P (X Wv + bv) = (P X) Wv + rowsum(P) bv.
        When the inputs are narrow (Ckv small) and many (M large), as in the image encoders'
        cross-attention (261 channels against 1,024-wide keys), this skips the (M, qk) and (M, v)
        projections; it is the same function with the same weights. Per key, folding costs
        H * O * Ckv multiply-adds against Ckv * qk + O * qk for the projection plus product.
        """
        if not self.fold_projections or num_queries is None:
            return False, False
        dense_layers = (self.key_dense, self.value_dense)
        if any(getattr(layer, "quantization_mode", None) for layer in dense_layers):
            return False, False
        folded = self.num_heads * num_queries * self._kv_channels
        fold_keys = folded < self._kv_channels * self._qk + num_queries * self._qk
        fold_values = folded < self._kv_channels * self._v + num_queries * self._v
        return fold_keys, fold_values

    def _folded_scores(self, q, key_value):
        batch, heads, num_queries = ops.shape(q)[0], self.num_heads, ops.shape(q)[2]
        kernel = ops.cast(self.key_dense.kernel, q.dtype)  # (Ckv, qk)
        kernel = ops.reshape(kernel, (self._kv_channels, heads, self._qk // heads))
        q_in = ops.einsum("bhod,chd->bhoc", q, kernel)  # queries in input space
        q_in = ops.reshape(q_in, (batch, heads * num_queries, self._kv_channels))
        scores = ops.einsum("bnc,bmc->bnm", q_in, ops.cast(key_value, q.dtype))
        scores = ops.reshape(scores, (batch, heads, num_queries, -1))
        if self.use_bias:
            # q . bk is the same for every key, so the softmax ignores it; it is added anyway so the
            # bias keeps its (zero) gradient and the scores equal the unfolded ones.
            bias = ops.reshape(ops.cast(self.key_dense.bias, q.dtype), (heads, self._qk // heads))
            scores = scores + ops.einsum("bhod,hd->bho", q, bias)[..., None]
        return scores

    def _folded_context(self, probs, key_value, exact_sums):
        batch, heads, num_queries = ops.shape(probs)[0], self.num_heads, ops.shape(probs)[2]
        flat = ops.reshape(probs, (batch, heads * num_queries, -1))
        mixed = ops.matmul(flat, ops.cast(key_value, probs.dtype))  # (B, H*O, Ckv)
        mixed = ops.reshape(mixed, (batch, heads, num_queries, self._kv_channels))
        kernel = ops.cast(self.value_dense.kernel, probs.dtype)
        kernel = ops.reshape(kernel, (self._kv_channels, heads, self._v // heads))
        context = ops.einsum("bhoc,chd->bhod", mixed, kernel)
        if self.use_bias:
            bias = ops.reshape(ops.cast(self.value_dense.bias, probs.dtype), (1, heads, 1, self._v // heads))
            weight = ops.sum(probs, axis=-1, keepdims=True) if exact_sums else 1.0
            context = context + weight * bias
        return context

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
            fold_projections=self.fold_projections,
        )
        return config


def _as_bool(mask):
    """A mask as booleans: itself if boolean, else `mask != 0` in its own dtype."""
    if keras.backend.standardize_dtype(mask.dtype) == "bool":
        return mask
    return ops.not_equal(mask, ops.cast(0, mask.dtype))
