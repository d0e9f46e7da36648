"""The Perceiver IO decoder: output queries cross-attend to the latent array."""

import keras

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.blocks import CrossAttentionBlock


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverDecoder(keras.layers.Layer):
    """Decodes latents (B, N, D) at output queries (B, O, E) into outputs (B, O, E or P).

    Cost is O(O N): linear in the number of outputs, and any subset of the queries can be
    decoded alone (subsampled or chunked decoding), since queries do not interact.

    Args:
        num_heads: int, cross-attention heads.
        qk_channels: int, query/key width; default set by `shape_for_attention`.
        v_channels: int, value width; defaults to the query/key width.
        shape_for_attention: "kv" (default width D, as the reference) or "q" (width E).
        widening_factor: int, MLP width multiple.
        use_query_residual: bool; the reference omits it when queries are positions.
        output_channels: optional int P; adds a final Dense projection to P channels.
        projection_initializer: initializer of that projection's kernel (default: as the other
            kernels; "zeros" starts a flow model at zero flow).
        dropout, attention_dropout, activation, layer_norm_epsilon, kernel_initializer:
            as in `CrossAttentionBlock` (kernels: normal, stddev 0.02, as the reference, by default).

    Call arguments:
        query: (B, O, E). latents: (B, N, D).
        query_mask: optional (B, O); masked queries give zero attention output.
        training: bool. return_attention_scores: bool, also return (B, heads, O, N).

    Example:
    >>> decoder = PerceiverDecoder(output_channels=10)
    >>> decoder(keras.ops.ones((2, 1, 16)), keras.ops.ones((2, 8, 32))).shape
    (2, 1, 10)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 2.
    """

    def __init__(self, num_heads=1, qk_channels=None, v_channels=None, shape_for_attention="kv",
                 widening_factor=1, use_query_residual=False, output_channels=None, projection_initializer=None,
                 dropout=0.0, attention_dropout=0.0, activation="gelu", layer_norm_epsilon=1e-5,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.output_channels = _checks.positive_int("output_channels", output_channels, allow_none=True)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        self.projection_initializer = _checks.initializer(
            "projection_initializer", projection_initializer, lambda: self.kernel_initializer
        )
        self.block_args = dict(
            num_heads=num_heads, qk_channels=qk_channels, v_channels=v_channels,
            shape_for_attention=shape_for_attention, widening_factor=widening_factor,
            use_query_residual=use_query_residual, dropout=dropout, attention_dropout=attention_dropout,
            activation=activation, layer_norm_epsilon=layer_norm_epsilon,
        )
        CrossAttentionBlock(**self.block_args)  # validates the arguments now

    def build(self, query_shape, latents_shape):
        _checks.tensor_shape(self.name, "query", query_shape, 3)
        _checks.tensor_shape(self.name, "latents", latents_shape, 3)
        self.cross_attention = CrossAttentionBlock(
            **self.block_args, kernel_initializer=clone_initializer(self.kernel_initializer, "cross_attention"),
            name="cross_attention", dtype=self.dtype_policy,
        )
        self.cross_attention.build(query_shape, latents_shape)
        self.projection = None
        if self.output_channels:
            self.projection = keras.layers.Dense(
                self.output_channels, kernel_initializer=clone_initializer(self.projection_initializer, "projection"),
                name="projection", dtype=self.dtype_policy,
            )
            self.projection.build((None, None, query_shape[-1]))

    def call(self, query, latents, query_mask=None, training=None, return_attention_scores=False):
        outputs = self.cross_attention(
            query, latents, query_mask=query_mask, training=training,
            return_attention_scores=return_attention_scores,
        )
        outputs, scores = outputs if return_attention_scores else (outputs, None)
        if self.projection is not None:
            outputs = self.projection(outputs)
        return (outputs, scores) if return_attention_scores else outputs

    def compute_output_shape(self, query_shape, latents_shape, query_mask_shape=None):
        return (*query_shape[:-1], self.output_channels or query_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            **self.block_args,
            output_channels=self.output_channels,
            projection_initializer=keras.initializers.serialize(self.projection_initializer),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
