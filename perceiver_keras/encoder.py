"""The Perceiver encoder: a latent array cross-attends to the inputs, then self-attends."""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.blocks import CrossAttentionBlock, SelfAttentionBlock


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverEncoder(keras.layers.Layer):
    """Encodes an input array (B, M, C) into a latent array (B, N, D).

    One cross-attention from N trainable latents to the M inputs (cost O(MN)), then
    `num_blocks` applications of ONE stack of `num_self_attention_layers_per_block`
    self-attention layers: the stack's weights are shared, so the parameter count does not
    grow with `num_blocks`.

    With `num_cross_attends > 1` it is the original Perceiver: blocks 0 .. num_cross_attends-1
    each begin with a cross-attend; the first cross-attend and the first latent stack have
    their own weights, all later ones share a second set.

    Names map to DeepMind's / transformers' as: num_latents = z_index_dim / num_latents,
    num_latent_channels = num_z_channels / d_latents, num_self_attention_layers_per_block =
    num_self_attends_per_block, num_blocks = num_blocks.

    Args:
        num_latents: int N.
        num_latent_channels: int D.
        num_blocks: int, repeats of the shared self-attention stack.
        num_self_attention_layers_per_block: int, layers in the stack.
        num_cross_attention_heads: int.
        num_self_attention_heads: int.
        cross_attention_qk_channels, cross_attention_v_channels: optional ints.
        self_attention_qk_channels, self_attention_v_channels: optional ints.
        cross_attention_shape_for_attention: "kv" or "q", the default cross-attention width.
        cross_attention_widening_factor, self_attention_widening_factor: ints.
        use_query_residual: bool, residual around the cross-attention.
        num_cross_attends: int, 1 for Perceiver IO; more for the original Perceiver.
        dropout, attention_dropout, activation, layer_norm_epsilon: passed to every block.
        latent_initializer: initializer of the latent array (default: normal, stddev 0.02, as the
            reference).
        kernel_initializer: initializer of the dense kernels, cloned for each (default: normal,
            stddev 0.02, as the reference). Biases start at 0, LayerNorm scales at 1 and offsets at 0.

    Call arguments:
        inputs: (B, M, C). input_mask: optional (B, M), 1 where an input may be attended to.
        training: bool. return_attention_scores: bool, also return the first cross-attention's
            probabilities (B, heads, N, M).

    Example:
    >>> encoder = PerceiverEncoder(num_latents=8, num_latent_channels=16, num_blocks=2,
    ...                            num_self_attention_layers_per_block=2, num_self_attention_heads=2)
    >>> encoder(keras.ops.ones((2, 50, 3))).shape
    (2, 8, 16)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 2.
    """

    def __init__(self, num_latents, num_latent_channels, num_blocks=1, num_self_attention_layers_per_block=6,
                 num_cross_attention_heads=1, num_self_attention_heads=8, cross_attention_qk_channels=None,
                 cross_attention_v_channels=None, self_attention_qk_channels=None, self_attention_v_channels=None,
                 cross_attention_shape_for_attention="kv", cross_attention_widening_factor=1,
                 self_attention_widening_factor=1, use_query_residual=True, num_cross_attends=1, dropout=0.0,
                 attention_dropout=0.0, activation="gelu", layer_norm_epsilon=1e-5, latent_initializer=None,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_latents = _checks.positive_int("num_latents", num_latents)
        self.num_latent_channels = _checks.positive_int("num_latent_channels", num_latent_channels)
        self.num_blocks = _checks.positive_int("num_blocks", num_blocks)
        self.num_self_attention_layers_per_block = _checks.positive_int(
            "num_self_attention_layers_per_block", num_self_attention_layers_per_block
        )
        self.num_cross_attention_heads = _checks.positive_int("num_cross_attention_heads", num_cross_attention_heads)
        self.num_self_attention_heads = _checks.positive_int("num_self_attention_heads", num_self_attention_heads)
        _checks.divisible("num_latent_channels", num_latent_channels, "num_self_attention_heads",
                          num_self_attention_heads)
        _checks.divisible("num_latent_channels", num_latent_channels, "num_cross_attention_heads",
                          num_cross_attention_heads)
        self.num_cross_attends = _checks.positive_int("num_cross_attends", num_cross_attends)
        if num_cross_attends > num_blocks:
            raise ValueError(
                "`num_cross_attends` cannot exceed `num_blocks` (each cross-attend begins a block). "
                f"Received: num_cross_attends={num_cross_attends}, num_blocks={num_blocks}"
            )
        self.cross_attention_args = dict(
            num_heads=num_cross_attention_heads, qk_channels=cross_attention_qk_channels,
            v_channels=cross_attention_v_channels, shape_for_attention=cross_attention_shape_for_attention,
            widening_factor=cross_attention_widening_factor, use_query_residual=use_query_residual,
        )
        self.self_attention_args = dict(
            num_heads=num_self_attention_heads, qk_channels=self_attention_qk_channels,
            v_channels=self_attention_v_channels, widening_factor=self_attention_widening_factor,
        )
        self.block_args = dict(dropout=dropout, attention_dropout=attention_dropout, activation=activation,
                               layer_norm_epsilon=layer_norm_epsilon)
        self.latent_initializer = _checks.initializer("latent_initializer", latent_initializer, reference_initializer)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        # Fail at construction, not at build, on bad block arguments.
        CrossAttentionBlock(**self.cross_attention_args, **self.block_args)
        SelfAttentionBlock(**self.self_attention_args, **self.block_args)

    def build(self, inputs_shape, input_mask_shape=None):
        _checks.tensor_shape(self.name, "inputs", inputs_shape, 3)
        self._input_channels = inputs_shape[-1]
        latent_shape = (None, self.num_latents, self.num_latent_channels)
        self.latents = self.add_weight(
            name="latents", shape=latent_shape[1:], initializer=clone_initializer(self.latent_initializer, "latents")
        )
        self.cross_attentions, self.self_attention_stacks = [], []
        # Weights are shared by calling the same layer objects again: at most two sets exist.
        for i in range(min(self.num_cross_attends, 2)):
            name = "cross_attention" if i == 0 else "shared_cross_attention"
            block = CrossAttentionBlock(
                **self.cross_attention_args, **self.block_args,
                kernel_initializer=clone_initializer(self.kernel_initializer, name), name=name, dtype=self.dtype_policy,
            )
            block.build(latent_shape, inputs_shape)
            self.cross_attentions.append(block)
            prefix = "self_attention" if i == 0 else "shared_self_attention"
            stack = []
            for j in range(self.num_self_attention_layers_per_block):
                name = f"{prefix}_{j}"
                layer = SelfAttentionBlock(
                    **self.self_attention_args, **self.block_args,
                    kernel_initializer=clone_initializer(self.kernel_initializer, name), name=name,
                    dtype=self.dtype_policy,
                )
                layer.build(latent_shape)
                stack.append(layer)
            self.self_attention_stacks.append(stack)

    def call(self, inputs, input_mask=None, training=None, return_attention_scores=False):
        _checks.tensor_shape(self.name, "inputs", inputs.shape, 3, channels=self._input_channels)
        batch = ops.shape(inputs)[0]
        latents = _checks.broadcast_batch(
            ops.expand_dims(ops.cast(self.latents, inputs.dtype), 0),
            (batch, self.num_latents, self.num_latent_channels),
        )
        first_scores = None
        for block in range(self.num_blocks):
            unshared = 0 if block == 0 else -1
            if block < self.num_cross_attends:
                latents = self.cross_attentions[unshared](
                    latents, inputs, key_mask=input_mask, training=training,
                    return_attention_scores=return_attention_scores and block == 0,
                )
                if return_attention_scores and block == 0:
                    latents, first_scores = latents
            for layer in self.self_attention_stacks[unshared]:
                latents = layer(latents, training=training)
        return (latents, first_scores) if return_attention_scores else latents

    def compute_output_shape(self, inputs_shape, input_mask_shape=None):
        return (inputs_shape[0], self.num_latents, self.num_latent_channels)

    def get_config(self):
        config = super().get_config()
        cross, latent = self.cross_attention_args, self.self_attention_args
        config.update(
            num_latents=self.num_latents,
            num_latent_channels=self.num_latent_channels,
            num_blocks=self.num_blocks,
            num_self_attention_layers_per_block=self.num_self_attention_layers_per_block,
            num_cross_attention_heads=self.num_cross_attention_heads,
            num_self_attention_heads=self.num_self_attention_heads,
            cross_attention_qk_channels=cross["qk_channels"],
            cross_attention_v_channels=cross["v_channels"],
            self_attention_qk_channels=latent["qk_channels"],
            self_attention_v_channels=latent["v_channels"],
            cross_attention_shape_for_attention=cross["shape_for_attention"],
            cross_attention_widening_factor=cross["widening_factor"],
            self_attention_widening_factor=latent["widening_factor"],
            use_query_residual=cross["use_query_residual"],
            num_cross_attends=self.num_cross_attends,
            latent_initializer=keras.initializers.serialize(self.latent_initializer),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            **self.block_args,
        )
        return config
