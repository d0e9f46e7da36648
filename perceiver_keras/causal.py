"""Perceiver AR's causally masked attentions, each with a full pass and a cached one-position step.

A window of L tokens is split into a prefix (the first P) and latents (the last N = L - P). The
cross-attention reads the prefix and the latents into the latents: latent i sees every prefix
position and the latents up to i. The latent self-attention is causal over the latents. Both
rotate queries and keys by position (rotary) and compute in the pre-norm residual layout of
lucidrains' perceiver-ar-pytorch (the layer returns the update; the caller adds the residual).

A step computes one new latent at window position t from caches holding every earlier position's
rotated keys and values, (B, H, capacity, head_channels), so generating a token costs one latent
step instead of a pass over the window; caches are updated by a one-hot blend, which stays a
builtin op in TFLite.

Reference: Hawthorne et al., "General-purpose, long-context autoregressive modeling with Perceiver
AR", ICML 2022.
"""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.attention import MASK_MARGIN
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.normalization import check_normalization, normalization_layer
from perceiver_keras.prenorm_mlp import PrenormMLP  # noqa: F401  (Perceiver AR's MLP, imported from here before)
from perceiver_keras.rotary import apply_rotary, rotary_rows, rotary_tables


def _blend(cache, new, index):
    """`cache` (B, H, C, d) with position `index` (a scalar tensor) replaced by `new` (B, H, 1, d).

    A select (SELECT_V2 in TFLite) rather than a one-hot product: an int8 file then copies the
    cache's other positions unchanged instead of requantizing them through a MUL and an ADD.
    """
    slot = ops.equal(ops.arange(cache.shape[2]), index)[None, None, :, None]
    return ops.where(slot, ops.cast(new, cache.dtype), cache)


class _CausalAttention(keras.layers.Layer):
    """What both causal attentions share: arguments, head split, rotary and the masked softmax."""

    default_output_bias = False

    def __init__(self, num_heads, head_channels=64, rotary_channels=None, dropout=0.0, epsilon=1e-5,
                 kernel_initializer=None, normalization="layer_norm", output_bias=None, **kwargs):
        super().__init__(**kwargs)
        self.normalization = check_normalization(normalization)
        self.output_bias = self.default_output_bias if output_bias is None else bool(output_bias)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.head_channels = _checks.positive_int("head_channels", head_channels)
        if rotary_channels is None:
            rotary_channels = min(head_channels, max(32, head_channels // 2))
        self.rotary_channels = _checks.positive_int("rotary_channels", rotary_channels)
        if rotary_channels % 2 or rotary_channels > head_channels:
            raise ValueError(
                "`rotary_channels` must be even and at most `head_channels`. "
                f"Received: rotary_channels={rotary_channels}, head_channels={head_channels}"
            )
        self.dropout = _checks.probability("dropout", dropout)
        self.epsilon = float(epsilon)
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)

    @property
    def inner_channels(self):
        return self.num_heads * self.head_channels

    def _dense(self, units, name, in_channels, use_bias=False):
        layer = keras.layers.Dense(
            units, use_bias=use_bias, kernel_initializer=clone_initializer(self.kernel_initializer, name),
            name=name, dtype=self.dtype_policy,
        )
        layer.build((None, None, in_channels))
        return layer

    def _norm(self, name, channels):
        return normalization_layer(self.normalization, channels, self.epsilon, name, self.dtype_policy)

    def _heads(self, x):
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_channels))
        return ops.transpose(x, (0, 2, 1, 3))

    def _merge(self, x):
        x = ops.transpose(x, (0, 2, 1, 3))
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.inner_channels))

    def _rotate(self, x, positions, num_positions=None):
        """`x` rotated for `positions` (L,) or (B, L); with `num_positions`, one runtime position (1,) < num_positions."""
        if num_positions is None:
            cos, sin = rotary_tables(positions, self.rotary_channels, x.dtype)
        else:
            cos, sin = rotary_rows(positions, num_positions, self.rotary_channels, x.dtype)
        return apply_rotary(x, cos, sin)

    def _attend(self, q, k, v, keep, training):
        """softmax(q k^T) v over the keys where `keep` (broadcast to (B, H, Lq, Lk)) holds."""
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        # As PerceiverAttention: masked keys sit MASK_MARGIN below the row's lowest score, a finite
        # value that integer exports can quantize, and are zeroed after the softmax.
        if scores.shape[-1] == 1:  # one key (a window with one latent): its weight is 1 (Keras warns on a size-1 softmax)
            probs = ops.where(keep, ops.ones_like(scores), ops.zeros_like(scores))
        else:
            lowest = ops.min(scores, axis=-1, keepdims=True) - ops.cast(MASK_MARGIN, scores.dtype)
            probs = ops.softmax(ops.where(keep, scores, lowest), axis=-1)
            probs = ops.where(keep, probs, ops.cast(0.0, probs.dtype))
        probs = self.attention_dropout(probs, training=training)
        return ops.matmul(probs, v)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_channels=self.head_channels,
            rotary_channels=self.rotary_channels,
            dropout=self.dropout,
            epsilon=self.epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            normalization=self.normalization,
            output_bias=self.output_bias,
        )
        return config


@keras.saving.register_keras_serializable(package="perceiver_keras")
class CausalSelfAttention(_CausalAttention):
    """Pre-norm causal self-attention with rotary positions: Perceiver AR's latent self-attention.

    Shapes: latents (B, N, D) -> update (B, N, D); latent i attends to latents 0..i.

    Args:
        num_heads: int, attention heads.
        head_channels: int, query/key/value channels per head.
        rotary_channels: even int <= head_channels, channels of each head rotated by position
            (default max(32, head_channels // 2) as the reference, at most head_channels).
        dropout: float, dropout on the attention probabilities.
        epsilon: norm epsilon (the reference's 1e-5).
        kernel_initializer: initializer of the projections (default normal, stddev 0.02).
        normalization: "layer_norm" (the reference's) or "rms_norm" (T5's, as the T5X Perceiver AR).
        output_bias: bool, a bias in the output projection (default False).

    Call arguments:
        latents: tensor (B, N, D).
        first_position: int or scalar tensor, the window position of latent 0 (the prefix length).
        training: bool, enables dropout.
        return_cache: bool, also return the rotated keys and values (B, heads, N, head_channels)
            that `step` continues from.

    Example:
    >>> layer = CausalSelfAttention(num_heads=2, head_channels=32)
    >>> layer(keras.ops.ones((1, 5, 16)), first_position=3).shape
    (1, 5, 16)

    Reference: Hawthorne et al., Perceiver AR, ICML 2022.
    """

    def build(self, latents_shape):
        _checks.tensor_shape(self.name, "latents", latents_shape, 3)
        self._channels = latents_shape[-1]
        self.norm = self._norm("norm", self._channels)
        self.qkv_dense = self._dense(3 * self.inner_channels, "qkv", self._channels)
        self.output_dense = self._dense(self._channels, "output", self.inner_channels, use_bias=self.output_bias)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout", dtype=self.dtype_policy)

    def _qkv(self, latents, positions, num_positions=None):
        qkv = self.qkv_dense(self.norm(latents))
        q, k, v = (self._heads(part) for part in ops.split(qkv, 3, axis=-1))
        q = q * ops.cast(self.head_channels ** -0.5, q.dtype)
        return self._rotate(q, positions, num_positions), self._rotate(k, positions, num_positions), v

    def call(self, latents, first_position=0, training=None, return_cache=False):
        _checks.tensor_shape(self.name, "latents", latents.shape, 3, channels=self._channels)
        count = ops.shape(latents)[1]
        index = ops.arange(count)
        q, k, v = self._qkv(latents, index + first_position)
        keep = (index[None, :] <= index[:, None])[None, None]
        output = self.output_dense(self._merge(self._attend(q, k, v, keep, training)))
        return (output, k, v) if return_cache else output

    def step(self, latent, position, index, key_cache, value_cache, num_positions):
        """One latent (B, 1, D) at window `position` (< `num_positions`, the window length L), latent
        `index`: (update, key_cache, value_cache)."""
        q, k, v = self._qkv(latent, position, num_positions)
        key_cache, value_cache = _blend(key_cache, k, index), _blend(value_cache, v, index)
        keep = (ops.arange(ops.shape(key_cache)[2]) <= index)[None, None, None, :]
        output = self.output_dense(self._merge(self._attend(q, key_cache, value_cache, keep, False)))
        return output, key_cache, value_cache

    def compute_output_shape(self, latents_shape, *args, **kwargs):
        return latents_shape


@keras.saving.register_keras_serializable(package="perceiver_keras")
class CausalCrossAttention(_CausalAttention):
    """Perceiver AR's cross-attention from a prefix and the latents into the latents, causally masked.

    Shapes: latents (B, N, D) at window positions P..P+N-1, prefix (B, P, D) at 0..P-1 -> update
    (B, N, D). Latent i attends to every (unmasked) prefix position and to latents 0..i. Queries and
    the latents' keys/values come from one LayerNorm, the prefix's from another; keys and values of
    both come from one shared projection.

    Args:
        num_heads, head_channels, rotary_channels, dropout, epsilon, kernel_initializer,
            normalization: as `CausalSelfAttention`.
        output_bias: bool, a bias in the output projection (default True, as the reference).
        separate_prefix_norm: bool, the prefix has its own norm (default, as the reference); False
            normalizes prefix and latents with one norm, as the T5X Perceiver AR's first layer.
        prefix_dropout: float in [0, 1), the fraction of prefix positions each example drops
            while training (the paper's cross-attention dropout; keeps P - int(P * rate)).
        seed: int or None, seeds the choice of dropped prefix positions.

    Call arguments:
        latents: tensor (B, N, D).
        prefix: tensor (B, P, D).
        prefix_mask: optional (B, P), True where a prefix position may be attended to (False for
            padding).
        training: bool, enables both dropouts.
        return_cache: bool, also return the rotated keys and values of every window position
            (B, heads, P + N, head_channels) that `step` continues from (no prefix dropout then).

    Example:
    >>> layer = CausalCrossAttention(num_heads=2, head_channels=32)
    >>> layer(keras.ops.ones((1, 4, 16)), keras.ops.ones((1, 6, 16))).shape
    (1, 4, 16)

    Reference: Hawthorne et al., Perceiver AR, ICML 2022, section 3.
    """

    default_output_bias = True

    def __init__(self, num_heads, head_channels=64, rotary_channels=None, dropout=0.0, prefix_dropout=0.0,
                 epsilon=1e-5, kernel_initializer=None, seed=None, separate_prefix_norm=True, **kwargs):
        super().__init__(num_heads, head_channels, rotary_channels, dropout, epsilon, kernel_initializer, **kwargs)
        self.separate_prefix_norm = bool(separate_prefix_norm)
        self.prefix_dropout = _checks.probability("prefix_dropout", prefix_dropout)
        self.seed = _checks.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, latents_shape, prefix_shape):
        _checks.tensor_shape(self.name, "latents", latents_shape, 3)
        _checks.tensor_shape(self.name, "prefix", prefix_shape, 3, channels=latents_shape[-1])
        self._channels = latents_shape[-1]
        self.norm = self._norm("norm", self._channels)
        self.prefix_norm = self._norm("prefix_norm", self._channels) if self.separate_prefix_norm else self.norm
        self.query_dense = self._dense(self.inner_channels, "query", self._channels)
        self.key_value_dense = self._dense(2 * self.inner_channels, "key_value", self._channels)
        self.output_dense = self._dense(self._channels, "output", self.inner_channels, use_bias=self.output_bias)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout", dtype=self.dtype_policy)

    def _key_values(self, inputs, positions, num_positions=None):
        k, v = (self._heads(part) for part in ops.split(self.key_value_dense(inputs), 2, axis=-1))
        return self._rotate(k, positions, num_positions), v

    def _query(self, normed, positions, num_positions=None):
        q = self._heads(self.query_dense(normed))
        return self._rotate(q * ops.cast(self.head_channels ** -0.5, q.dtype), positions, num_positions)

    def _drop_prefix(self, prefix, positions, prefix_mask):
        """Keeps a random P - int(P * rate) prefix positions per example, with their positions and mask."""
        batch, length = ops.shape(prefix)[0], prefix.shape[1]
        if length is None:
            raise ValueError(f"Layer '{self.name}' needs a static prefix length for `prefix_dropout`. "
                             f"Received: prefix.shape={tuple(prefix.shape)}")
        keep = length - int(length * self.prefix_dropout)
        noise = keras.random.uniform((batch, length), seed=self.seed_generator)
        chosen = ops.top_k(noise, keep, sorted=False)[1]
        prefix = ops.take_along_axis(prefix, chosen[:, :, None], axis=1)
        positions = ops.take_along_axis(ops.broadcast_to(positions[None], (batch, length)), chosen, axis=1)
        if prefix_mask is not None:
            prefix_mask = ops.take_along_axis(prefix_mask, chosen, axis=1)
        return prefix, positions, prefix_mask

    def call(self, latents, prefix, prefix_mask=None, training=None, return_cache=False):
        _checks.tensor_shape(self.name, "latents", latents.shape, 3, channels=self._channels)
        _checks.tensor_shape(self.name, "prefix", prefix.shape, 3, channels=self._channels)
        _checks.mask_shape(self.name, "prefix_mask", prefix_mask, prefix, "prefix")
        length, count = ops.shape(prefix)[1], ops.shape(latents)[1]
        prefix_positions = ops.arange(length)
        latent_positions = ops.arange(count) + length
        if prefix_mask is not None:
            prefix_mask = ops.cast(prefix_mask, "bool")
        dropping = training and self.prefix_dropout > 0 and not return_cache and prefix.shape[1] != 0
        if dropping:
            prefix, prefix_positions, prefix_mask = self._drop_prefix(prefix, prefix_positions, prefix_mask)
            latent_positions = ops.broadcast_to(latent_positions[None], (ops.shape(latents)[0], count))
        normed = self.norm(latents)
        q = self._query(normed, ops.arange(count) + length)
        prefix_k, prefix_v = self._key_values(self.prefix_norm(prefix), prefix_positions)
        latent_k, latent_v = self._key_values(normed, latent_positions)
        k = ops.concatenate([prefix_k, latent_k], axis=2)
        v = ops.concatenate([prefix_v, latent_v], axis=2)
        index = ops.arange(count)
        causal = index[None, :] <= index[:, None]  # (N, N)
        prefix_keep = ops.ones((count, ops.shape(prefix_k)[2]), dtype="bool")
        keep = ops.concatenate([prefix_keep, causal], axis=1)[None, None]
        if prefix_mask is not None:
            latent_keep = ops.ones((ops.shape(prefix_mask)[0], count), dtype="bool")
            keep = ops.logical_and(keep, ops.concatenate([prefix_mask, latent_keep], axis=1)[:, None, None, :])
        output = self.output_dense(self._merge(self._attend(q, k, v, keep, training)))
        return (output, k, v) if return_cache else output

    def step(self, latent, position, key_mask, key_cache, value_cache):
        """One latent (B, 1, D) at window `position` against caches over every window position.

        key_mask (B, capacity) is True for the keys that exist and may be attended to (the
        unpadded prefix and the positions up to `position`). Returns (update, key_cache, value_cache).
        """
        capacity = key_cache.shape[2]  # every window position: the rotary tables' length
        normed = self.norm(latent)
        q = self._query(normed, position, capacity)
        k, v = self._key_values(normed, position, capacity)
        key_cache, value_cache = _blend(key_cache, k, position), _blend(value_cache, v, position)
        keep = ops.cast(key_mask, "bool")[:, None, None, :]
        output = self.output_dense(self._merge(self._attend(q, key_cache, value_cache, keep, False)))
        return output, key_cache, value_cache

    def compute_output_shape(self, latents_shape, *args, **kwargs):
        return latents_shape

    def get_config(self):
        config = super().get_config()
        config.update(prefix_dropout=self.prefix_dropout, seed=self.seed,
                      separate_prefix_norm=self.separate_prefix_norm)
        return config
