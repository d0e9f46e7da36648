"""Cross-attention and self-attention blocks: pre-LayerNorm attention plus MLP, with residuals."""

import keras

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.attention import PerceiverAttention
from perceiver_keras.mlp import PerceiverMLP, check_activation
from perceiver_keras.normalization import LayerNorm

SHAPES_FOR_ATTENTION = ("kv", "q")


class _Block(keras.layers.Layer):
    """What both blocks share: arguments, the MLP half and the config."""

    def __init__(self, num_heads=1, qk_channels=None, v_channels=None, widening_factor=1, dropout=0.0,
                 attention_dropout=0.0, activation="gelu", layer_norm_epsilon=1e-5, kernel_initializer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.qk_channels = _checks.positive_int("qk_channels", qk_channels, allow_none=True)
        self.v_channels = _checks.positive_int("v_channels", v_channels, allow_none=True)
        self.widening_factor = _checks.positive_int("widening_factor", widening_factor)
        self.dropout = _checks.probability("dropout", dropout)
        self.attention_dropout = _checks.probability("attention_dropout", attention_dropout)
        self.activation = check_activation(activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        for name in ("qk_channels", "v_channels"):
            if getattr(self, name) is not None:
                _checks.divisible(name, getattr(self, name), "num_heads", num_heads)

    def _norm(self, name, channels):
        # LayerNorm: Keras' LayerNormalization without its float NEG in integer TFLite files.
        norm = LayerNorm(epsilon=self.layer_norm_epsilon, name=name, dtype=self.dtype_policy)
        norm.build((None, None, channels))
        return norm

    def _build_attention_and_mlp(self, query_channels, kv_channels, qk_channels):
        self.attention = PerceiverAttention(
            self.num_heads, qk_channels=qk_channels, v_channels=self.v_channels or qk_channels,
            output_channels=query_channels, dropout=self.attention_dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer, "attention"), name="attention",
            dtype=self.dtype_policy,
        )
        self.attention.build((None, None, query_channels), (None, None, kv_channels))
        self.mlp_norm = self._norm("mlp_norm", query_channels)
        self.mlp = PerceiverMLP(
            self.widening_factor, self.activation, self.dropout, clone_initializer(self.kernel_initializer, "mlp"),
            name="mlp",
            dtype=self.dtype_policy,
        )
        self.mlp.build((None, None, query_channels))
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout", dtype=self.dtype_policy)

    def _mlp_residual(self, x, training):
        return x + self.mlp(self.mlp_norm(x), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            qk_channels=self.qk_channels,
            v_channels=self.v_channels,
            widening_factor=self.widening_factor,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class CrossAttentionBlock(_Block):
    """Queries attend to a key/value array; then an MLP. Pre-LayerNorm, residual connections.

    Queries and keys/values get separate LayerNorms (epsilon 1e-5, as the reference).
    Shapes: query (B, O, Cq), key_value (B, M, Ckv) -> (B, O, Cq).

    Args:
        num_heads: int, attention heads.
        qk_channels: int, query/key width; by default Ckv ("kv") or Cq ("q"), see below.
        v_channels: int, value width; defaults to the query/key width.
        shape_for_attention: "kv" or "q", which input sets the default query/key width
            (the reference's `cross_attention_shape_for_attention`).
        widening_factor: int, MLP width multiple.
        use_query_residual: bool, add the queries to the attention output. Omit it when the
            queries and outputs mean different things (positions in, pixels out).
        dropout: float, dropout on the attention output and the MLP output.
        attention_dropout: float, dropout on the attention probabilities.
        activation: MLP activation ("gelu", "gelu_tanh", ...).
        layer_norm_epsilon: float.
        kernel_initializer: initializer of the dense kernels, cloned for each (default: normal,
            stddev 0.02, as the reference). Biases start at 0, LayerNorm scales at 1 and offsets at 0.

    Call arguments:
        query: (B, O, Cq). key_value: (B, M, Ckv).
        key_mask: optional (B, M). query_mask: optional (B, O).
        training: bool. return_attention_scores: bool.

    Example:
    >>> block = CrossAttentionBlock(num_heads=1)
    >>> block(keras.ops.ones((2, 4, 8)), keras.ops.ones((2, 20, 3))).shape
    (2, 4, 8)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 2 and appendix E.
    """

    def __init__(self, num_heads=1, qk_channels=None, v_channels=None, shape_for_attention="kv",
                 widening_factor=1, use_query_residual=True, **kwargs):
        super().__init__(num_heads, qk_channels, v_channels, widening_factor, **kwargs)
        self.shape_for_attention = _checks.one_of(
            "shape_for_attention", shape_for_attention, SHAPES_FOR_ATTENTION
        )
        self.use_query_residual = bool(use_query_residual)

    def build(self, query_shape, key_value_shape):
        _checks.tensor_shape(self.name, "query", query_shape, 3)
        _checks.tensor_shape(self.name, "key_value", key_value_shape, 3)
        q_channels, kv_channels = query_shape[-1], key_value_shape[-1]
        self._query_channels, self._kv_channels = q_channels, kv_channels
        default_qk = kv_channels if self.shape_for_attention == "kv" else q_channels
        self.query_norm = self._norm("query_norm", q_channels)
        self.key_value_norm = self._norm("key_value_norm", kv_channels)
        self._build_attention_and_mlp(q_channels, kv_channels, self.qk_channels or default_qk)

    def call(self, query, key_value, key_mask=None, query_mask=None, training=None,
             return_attention_scores=False):
        # Checked here, before the LayerNorms, whose own errors differ from backend to backend.
        _checks.tensor_shape(self.name, "query", query.shape, 3, channels=self._query_channels)
        _checks.tensor_shape(self.name, "key_value", key_value.shape, 3, channels=self._kv_channels)
        attended = self.attention(
            self.query_norm(query), self.key_value_norm(key_value), key_mask=key_mask,
            query_mask=query_mask, training=training, return_attention_scores=return_attention_scores,
        )
        attended, scores = attended if return_attention_scores else (attended, None)
        x = self.output_dropout(attended, training=training)
        if self.use_query_residual:
            x = x + query
        x = self._mlp_residual(x, training)
        return (x, scores) if return_attention_scores else x

    def compute_output_shape(self, query_shape, key_value_shape, *args, **kwargs):
        return tuple(query_shape)

    def get_config(self):
        config = super().get_config()
        config.update(shape_for_attention=self.shape_for_attention, use_query_residual=self.use_query_residual)
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class SelfAttentionBlock(_Block):
    """Self-attention over the latent array, then an MLP. Pre-LayerNorm, residual connections.

    Shapes: (B, N, D) -> (B, N, D).

    Args:
        num_heads: int, attention heads.
        qk_channels: int, query/key width; defaults to D.
        v_channels: int, value width; defaults to the query/key width.
        widening_factor: int, MLP width multiple.
        dropout, attention_dropout, activation, layer_norm_epsilon, kernel_initializer:
            as in `CrossAttentionBlock`.

    Call arguments:
        inputs: (B, N, D).
        padding_mask: optional (B, N), 1 where a position may be attended to.
        training: bool. return_attention_scores: bool.

    Example:
    >>> SelfAttentionBlock(num_heads=2)(keras.ops.ones((2, 4, 8))).shape
    (2, 4, 8)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 2.
    """

    def build(self, inputs_shape):
        _checks.tensor_shape(self.name, "inputs", inputs_shape, 3)
        channels = self._channels = inputs_shape[-1]
        self.norm = self._norm("norm", channels)
        self._build_attention_and_mlp(channels, channels, self.qk_channels or channels)

    def call(self, inputs, padding_mask=None, training=None, return_attention_scores=False):
        _checks.tensor_shape(self.name, "inputs", inputs.shape, 3, channels=self._channels)
        normed = self.norm(inputs)
        attended = self.attention(
            normed, normed, key_mask=padding_mask, training=training, return_attention_scores=return_attention_scores
        )
        attended, scores = attended if return_attention_scores else (attended, None)
        x = inputs + self.output_dropout(attended, training=training)
        x = self._mlp_residual(x, training)
        return (x, scores) if return_attention_scores else x

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return tuple(inputs_shape)
