"""Perceiver AR: a causal language model whose latents are the last N positions of a long window."""

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.causal import CausalCrossAttention, CausalSelfAttention
from perceiver_keras.initialization import clone_initializer, derive_seed, reference_initializer, seed_initializers
from perceiver_keras.mlp import check_activation
from perceiver_keras.normalization import check_normalization, normalization_layer
from perceiver_keras.prenorm_mlp import PrenormMLP
from perceiver_keras.rows import take_rows

PAD_ID = 0
VOCAB_SIZE = 262
"""The byte vocabulary of `ByteTokenizer`: 6 special ids (0 is padding), then the bytes at 6..261."""

T5X_LAYOUT = dict(normalization="rms_norm", epsilon=1e-6, position_embedding=False, final_norm=True,
                  mlp_activation="gelu_tanh", gated_mlp=True, separate_prefix_norm=False,
                  cross_attention_output_bias=False)
"""`PerceiverAR` arguments of the T5X Perceiver AR's layout (google/flaxformer, by the paper's authors):
T5 1.1 layers (RMS norms with epsilon 1e-6, no biases, gated GELU in flax's tanh form), positions from
rotary alone, one norm over prefix and latents in the first layer, a final norm, untied logits. Its
rotary covers every head channel: pass `rotary_channels=head_channels` too."""


@keras.saving.register_keras_serializable(package="perceiver_keras")
class CausalEmbedding(keras.layers.Layer):
    """Token embedding plus (optionally) a learned embedding of the position in the window.

    Shapes: token ids (B, L) -> (B, L, D), L <= max_sequence_length.

    Args:
        vocabulary_size: int, number of token ids.
        max_sequence_length: int, number of learned positions.
        output_channels: int, D.
        embeddings_initializer: initializer of both tables (default normal, stddev 0.02).
        position_embedding: bool, add the learned position table (default); False leaves positions
            to the attentions' rotary encoding alone, as the T5X Perceiver AR.

    Example:
    >>> CausalEmbedding(262, 16, 8)(keras.ops.ones((2, 5), "int32")).shape
    (2, 5, 8)
    """

    def __init__(self, vocabulary_size, max_sequence_length, output_channels, embeddings_initializer=None,
                 position_embedding=True, **kwargs):
        super().__init__(**kwargs)
        self.position_embedding = bool(position_embedding)
        self.vocabulary_size = _checks.positive_int("vocabulary_size", vocabulary_size)
        self.max_sequence_length = _checks.positive_int("max_sequence_length", max_sequence_length)
        self.output_channels = _checks.positive_int("output_channels", output_channels)
        self.embeddings_initializer = _checks.initializer(
            "embeddings_initializer", embeddings_initializer, reference_initializer)

    def build(self, token_ids_shape=None):
        self.token_embeddings = self.add_weight(
            name="token_embeddings", shape=(self.vocabulary_size, self.output_channels),
            initializer=clone_initializer(self.embeddings_initializer, "token_embeddings"))
        if not self.position_embedding:
            return
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_sequence_length, self.output_channels),
            initializer=clone_initializer(self.embeddings_initializer, "position_embeddings"))

    def call(self, token_ids):
        _checks.tensor_shape(self.name, "token_ids", token_ids.shape, 2)
        length = token_ids.shape[1]
        if length is not None and length > self.max_sequence_length:
            raise ValueError(f"Layer '{self.name}' takes at most max_sequence_length={self.max_sequence_length} "
                             f"tokens. Received: token_ids.shape={tuple(token_ids.shape)}")
        tokens = take_rows(self.token_embeddings, ops.cast(token_ids, "int32"))
        if self.position_embedding:
            tokens = tokens + self.position_embeddings[: ops.shape(token_ids)[1]][None]
        return ops.cast(tokens, self.compute_dtype)

    def step(self, token, position):
        """token ids (B,) at window `position` (a scalar or (1,)) -> (B, 1, D)."""
        tokens = take_rows(self.token_embeddings, ops.cast(token, "int32"))
        if self.position_embedding:
            tokens = tokens + take_rows(self.position_embeddings, ops.reshape(ops.cast(position, "int32"), (1,)))
        return ops.cast(tokens[:, None], self.compute_dtype)

    def compute_output_shape(self, token_ids_shape):
        return (*token_ids_shape, self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary_size=self.vocabulary_size, max_sequence_length=self.max_sequence_length,
                      output_channels=self.output_channels,
                      embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
                      position_embedding=self.position_embedding)
        return config


def _per_layer(stacked):
    """A cache tensor (layers, B, H, C, d) as its layers' (B, H, C, d), sliced in 4-D.

    TensorFlow Lite Micro's STRIDED_SLICE takes at most 4-D inputs, so the layers are cut from a
    (layers * B, H, C, d) view rather than from the 5-D tensor.
    """
    layers = stacked.shape[0]
    if not layers:
        return []
    batch = ops.shape(stacked)[1]
    flat = ops.reshape(stacked, (-1, *stacked.shape[2:]))
    return [flat[i * batch:(i + 1) * batch] for i in range(layers)]


def _stacked(layers, unchanged):
    """Each layer's (B, H, C, d) stacked to (layers, B, H, C, d); `unchanged` when there are none."""
    if not layers:
        return unchanged
    return ops.reshape(ops.concatenate(layers, axis=0), (len(layers), -1, *layers[0].shape[1:]))


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverAR(keras.Model):
    """Perceiver AR (Hawthorne et al., ICML 2022): a causal model over a window of up to L tokens.

    The first P = max_sequence_length - num_latents positions of a window are the prefix; the rest
    are latents. One causally masked cross-attention reads prefix and latents into the latents,
    a causal self-attention stack processes them, and the model returns next-token logits for each
    latent position. A window may be shorter than L (at least P + 1 tokens): its latents are then
    fewer. Padding (`pad_id`) in the prefix is not attended to, so a short prompt is left-padded.

    Inputs: token ids (B, W), P < W <= max_sequence_length. Outputs: logits (B, W - P, vocabulary_size);
    row i predicts the token after window position P + i.

    Args:
        vocabulary_size: int, token ids (default 262, `ByteTokenizer`'s bytes and special ids).
        max_sequence_length: int, L, the longest window.
        num_latents: int, N, the latent positions at the end of a full window (N <= L; N = L is a
            plain causal Transformer over the window).
        num_channels: int, D, the width of embeddings and latents.
        num_heads: int, attention heads of every attention.
        head_channels: int, query/key/value channels per head.
        num_self_attention_layers: int, causal self-attention layers after the cross-attention.
        num_cross_attention_layers: int, cross-attention layers (the reference's `perceive_depth`).
        widening_factor: int, MLP hidden width as a multiple of D.
        rotary_channels: even int or None, rotated channels per head (default max(32, head_channels // 2)).
        dropout: float, dropout on attention probabilities and MLP activations.
        prefix_dropout: float, fraction of prefix positions dropped per example while training.
        pad_id: int, the padding token id (masked in the prefix).
        epsilon: norm epsilon.
        kernel_initializer: initializer of every projection and of the logits (default normal, stddev
            0.02, as the reference; each weight gets its own clone). Embeddings stay normal(0.02).
        seed: optional int, seeds every initializer (each weight its own derived seed).
        normalization: "layer_norm" (default, the reference's) or "rms_norm" (T5's scale-only norm).
        position_embedding: bool, learned absolute positions added to the token embedding (default).
        final_norm: bool, a norm before the logits (default False, as the reference).
        mlp_activation: "gelu" (exact, default), "gelu_tanh" or a Keras activation name.
        gated_mlp: bool, T5 1.1's gated MLPs (default False).
        separate_prefix_norm: bool, the cross-attention normalizes the prefix with its own norm
            (default, as the reference) or with the latents' one.
        cross_attention_output_bias: bool, a bias in the cross-attention's output projection
            (default True, as the reference).

    The defaults are the layout of lucidrains' perceiver-ar-pytorch. `T5X_LAYOUT` (with
    `rotary_channels=head_channels`) is the layout of the paper's authors' T5X Perceiver AR
    (google/flaxformer; the `c4_ar_*` presets), whose parameters `zoo.convert.from_flaxformer` loads.

    Example:
    >>> model = PerceiverAR(max_sequence_length=12, num_latents=4, num_channels=32, num_heads=2,
    ...                     head_channels=16, rotary_channels=16, num_self_attention_layers=1)
    >>> model(keras.ops.ones((1, 12), "int32")).shape
    (1, 4, 262)

    Reference: Hawthorne et al., "General-purpose, long-context autoregressive modeling with
    Perceiver AR", ICML 2022; the layer layout of lucidrains' perceiver-ar-pytorch, the executable
    reference the tests compare against (bias-free projections but the cross-attention's output,
    GELU MLPs, rotary on the first channels of each head as two halves with base 10,000, learned
    absolute positions, no final LayerNorm, untied logits). DeepMind's perceiver-ar code differs in
    those details (biases everywhere, squared-ReLU MLPs, interleaved rotary pairs with the context
    length as longest wavelength, a final LayerNorm); the masks, the prefix/latent split and the
    strided cached sampling are the paper's.
    """

    def __init__(self, vocabulary_size=VOCAB_SIZE, max_sequence_length=1024, num_latents=256, num_channels=256,
                 num_heads=4, head_channels=64, num_self_attention_layers=4, num_cross_attention_layers=1,
                 widening_factor=4, rotary_channels=None, dropout=0.0, prefix_dropout=0.0, pad_id=PAD_ID,
                 epsilon=1e-5, kernel_initializer=None, seed=None, normalization="layer_norm", position_embedding=True,
                 final_norm=False, mlp_activation="gelu", gated_mlp=False, separate_prefix_norm=True,
                 cross_attention_output_bias=True, **kwargs):
        _checks.positive_int("max_sequence_length", max_sequence_length)
        check_normalization(normalization)
        check_activation(mlp_activation)
        _checks.positive_int("num_latents", num_latents)
        if num_latents > max_sequence_length:
            raise ValueError("`num_latents` must be at most `max_sequence_length`. "
                             f"Received: num_latents={num_latents}, max_sequence_length={max_sequence_length}")
        _checks.positive_int("num_cross_attention_layers", num_cross_attention_layers)
        if isinstance(num_self_attention_layers, bool) or not isinstance(num_self_attention_layers, int) \
                or num_self_attention_layers < 0:
            raise ValueError("`num_self_attention_layers` must be a non-negative integer. "
                             f"Received: num_self_attention_layers={num_self_attention_layers!r}")
        seed = _checks.seed("seed", seed)
        # Every layer's dtype policy, saved in the config, so a mixed-precision model reloads mixed (None: the global one).
        dtype = keras.dtype_policies.get(kwargs.pop("dtype", None) or keras.config.dtype_policy())
        kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)
        prefix_length = max_sequence_length - num_latents
        kernels = dict(kernel_initializer=kernel_initializer, dtype=dtype)
        attention_args = dict(num_heads=num_heads, head_channels=head_channels, rotary_channels=rotary_channels,
                              dropout=dropout, epsilon=epsilon, normalization=normalization, **kernels)
        mlp_args = dict(dropout=dropout, epsilon=epsilon, normalization=normalization, activation=mlp_activation,
                        gated=gated_mlp, **kernels)
        embedding = CausalEmbedding(vocabulary_size, max_sequence_length, num_channels, name="embedding",
                                    position_embedding=position_embedding, dtype=dtype)
        cross_layers = [
            (CausalCrossAttention(prefix_dropout=prefix_dropout, seed=None if seed is None else derive_seed(seed, "drop", i),
                                  separate_prefix_norm=separate_prefix_norm, output_bias=cross_attention_output_bias,
                                  name=f"cross_attention_{i}", **attention_args),
             PrenormMLP(widening_factor, name=f"cross_mlp_{i}", **mlp_args))
            for i in range(num_cross_attention_layers)]
        self_layers = [
            (CausalSelfAttention(name=f"self_attention_{i}", **attention_args),
             PrenormMLP(widening_factor, name=f"self_mlp_{i}", **mlp_args))
            for i in range(num_self_attention_layers)]
        # The norm's weights are ones (no initializer to seed); built here so the graph below sees its weights.
        output_norm = (normalization_layer(normalization, num_channels, epsilon, "final_norm", dtype) if final_norm
                       else None)
        head = keras.layers.Dense(vocabulary_size, use_bias=False, name="logits", dtype=dtype,
                                  kernel_initializer=clone_initializer(kernel_initializer, "logits"))
        if seed is not None:
            parts = [embedding, head, *[layer for pair in cross_layers + self_layers for layer in pair]]
            for part in parts:
                seed_initializers(part, derive_seed(seed, part.name))

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        embedded = embedding(token_ids)
        prefix, latents = embedded[:, :prefix_length], embedded[:, prefix_length:]
        prefix_mask = ops.not_equal(token_ids[:, :prefix_length], pad_id)
        for cross, mlp in cross_layers:
            latents = latents + cross(latents, prefix, prefix_mask=prefix_mask)
            latents = latents + mlp(latents)
        for attention, mlp in self_layers:
            latents = latents + attention(latents, first_position=prefix_length)
            latents = latents + mlp(latents)
        if output_norm is not None:
            latents = output_norm(latents)
        # Logits in float32 under mixed precision, as the other models' outputs: the loss and sampling need the range.
        logits = ops.cast(head(latents), "float32")
        super().__init__(inputs=token_ids, outputs=logits, **kwargs)

        self.embedding, self.cross_layers, self.self_layers, self.head = embedding, cross_layers, self_layers, head
        self.output_norm = output_norm
        self.normalization, self.position_embedding, self.final_norm = normalization, position_embedding, final_norm
        self.mlp_activation, self.gated_mlp = mlp_activation, gated_mlp
        self.separate_prefix_norm, self.cross_attention_output_bias = separate_prefix_norm, cross_attention_output_bias
        self.vocabulary_size, self.max_sequence_length = vocabulary_size, max_sequence_length
        self.num_latents, self.prefix_length, self.num_channels = num_latents, prefix_length, num_channels
        self.num_heads, self.head_channels = num_heads, head_channels
        self.num_self_attention_layers = num_self_attention_layers
        self.num_cross_attention_layers = num_cross_attention_layers
        self.widening_factor, self.rotary_channels = widening_factor, cross_layers[0][0].rotary_channels
        self.dropout, self.prefix_dropout, self.pad_id, self.epsilon, self.seed = (
            dropout, prefix_dropout, pad_id, epsilon, seed)
        self.kernel_initializer, self.layers_dtype = kernel_initializer, dtype

    # Cached decoding -------------------------------------------------------------------------------

    def cache_shapes(self, batch_size):
        """name -> shape of each cache tensor of `prefill` and `decode_step`."""
        heads = (batch_size, self.num_heads)
        return {
            "token_ids": (batch_size, self.max_sequence_length),
            "cross_keys": (self.num_cross_attention_layers, *heads, self.max_sequence_length, self.head_channels),
            "cross_values": (self.num_cross_attention_layers, *heads, self.max_sequence_length, self.head_channels),
            "self_keys": (self.num_self_attention_layers, *heads, self.num_latents, self.head_channels),
            "self_values": (self.num_self_attention_layers, *heads, self.num_latents, self.head_channels),
        }

    def prefill(self, token_ids):
        """A full window (B, L) (right-padded beyond its tokens) -> (logits (B, N, V), cache).

        The cache holds the window's ids and every layer's rotated keys and values at every
        position; positions past the real tokens hold values that `decode_step` overwrites before
        any query can see them (the mask is causal).
        """
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        if tuple(token_ids.shape[1:]) != (self.max_sequence_length,):
            raise ValueError(f"`prefill` takes a full window of max_sequence_length={self.max_sequence_length} "
                             f"tokens. Received: token_ids.shape={tuple(token_ids.shape)}")
        embedded = self.embedding(token_ids)
        prefix, latents = embedded[:, :self.prefix_length], embedded[:, self.prefix_length:]
        prefix_mask = ops.not_equal(token_ids[:, :self.prefix_length], self.pad_id)
        caches = {"cross_keys": [], "cross_values": [], "self_keys": [], "self_values": []}
        for cross, mlp in self.cross_layers:
            update, keys, values = cross(latents, prefix, prefix_mask=prefix_mask, return_cache=True)
            latents = latents + update
            latents = latents + mlp(latents)
            caches["cross_keys"].append(keys)
            caches["cross_values"].append(values)
        for attention, mlp in self.self_layers:
            update, keys, values = attention(latents, first_position=self.prefix_length, return_cache=True)
            latents = latents + update
            latents = latents + mlp(latents)
            caches["self_keys"].append(keys)
            caches["self_values"].append(values)
        if self.output_norm is not None:
            latents = self.output_norm(latents)
        cache = {"token_ids": token_ids}
        shapes = self.cache_shapes(ops.shape(token_ids)[0])
        for name, tensors in caches.items():
            cache[name] = ops.stack(tensors) if tensors else ops.zeros(shapes[name], latents.dtype)
        return ops.cast(self.head(latents), "float32"), cache

    def decode_step(self, token, position, cache):
        """The next-token logits (B, V) after `token` (B,) placed at window `position`, and the updated cache.

        `position` is a scalar (or a (1,) tensor) in [P, L): the window position the token takes (each
        example's).
        """
        self._check_cache(cache, ops.shape(token)[0])
        position = ops.cast(ops.convert_to_tensor(position), "int32")
        token = ops.cast(token, "int32")
        slots = ops.arange(self.max_sequence_length)
        token_ids = ops.where(ops.equal(slots, position)[None], token[:, None], cache["token_ids"])
        # The padding mask reads the ids before the update: the token lands at position >= P, outside
        # the prefix the mask looks at, so an export may leave the ids' update to its caller.
        in_prefix_and_padding = ops.logical_and(slots[None] < self.prefix_length,
                                                ops.equal(cache["token_ids"], self.pad_id))
        key_mask = ops.logical_and((slots <= position)[None], ops.logical_not(in_prefix_and_padding))
        latent = self.embedding.step(token, position)
        layers = {name: _per_layer(cache[name]) for name in ("cross_keys", "cross_values", "self_keys", "self_values")}
        updated = {"token_ids": token_ids, "cross_keys": [], "cross_values": [], "self_keys": [], "self_values": []}
        for i, (cross, mlp) in enumerate(self.cross_layers):
            update, keys, values = cross.step(latent, position, key_mask, layers["cross_keys"][i],
                                              layers["cross_values"][i])
            latent = latent + update
            latent = latent + mlp(latent)
            updated["cross_keys"].append(keys)
            updated["cross_values"].append(values)
        for i, (attention, mlp) in enumerate(self.self_layers):
            update, keys, values = attention.step(latent, position, position - self.prefix_length,
                                                  layers["self_keys"][i], layers["self_values"][i],
                                                  self.max_sequence_length)
            latent = latent + update
            latent = latent + mlp(latent)
            updated["self_keys"].append(keys)
            updated["self_values"].append(values)
        for name in ("cross_keys", "cross_values", "self_keys", "self_values"):
            updated[name] = _stacked(updated[name], cache[name])
        if self.output_norm is not None:
            latent = self.output_norm(latent)
        return ops.cast(self.head(latent)[:, 0], "float32"), updated

    def _check_cache(self, cache, batch_size):
        expected = self.cache_shapes(batch_size)
        if not isinstance(cache, dict) or set(cache) != set(expected):
            received = sorted(cache) if isinstance(cache, dict) else type(cache).__name__
            raise ValueError(f"`cache` must be the dict `prefill` returns, with keys {sorted(expected)}. "
                             f"Received: {received}")
        for name, shape in expected.items():
            got = tuple(cache[name].shape)
            batch_axis = 0 if name == "token_ids" else 1
            want = tuple(None if axis == batch_axis else size for axis, size in enumerate(shape))
            if len(got) != len(want) or any(w is not None and g is not None and g != w for g, w in zip(got, want)):
                raise ValueError(f"cache[{name!r}] must have shape {want} (None: the batch). "
                                 f"Received: cache[{name!r}].shape={got}")

    def get_config(self):
        return {
            "name": self.name, "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size, "max_sequence_length": self.max_sequence_length,
            "num_latents": self.num_latents, "num_channels": self.num_channels, "num_heads": self.num_heads,
            "head_channels": self.head_channels, "num_self_attention_layers": self.num_self_attention_layers,
            "num_cross_attention_layers": self.num_cross_attention_layers,
            "widening_factor": self.widening_factor, "rotary_channels": self.rotary_channels,
            "dropout": self.dropout, "prefix_dropout": self.prefix_dropout, "pad_id": self.pad_id,
            "epsilon": self.epsilon, "seed": self.seed, "normalization": self.normalization,
            "position_embedding": self.position_embedding, "final_norm": self.final_norm,
            "mlp_activation": self.mlp_activation, "gated_mlp": self.gated_mlp,
            "separate_prefix_norm": self.separate_prefix_norm,
            "cross_attention_output_bias": self.cross_attention_output_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "dtype": keras.dtype_policies.serialize(self.layers_dtype),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
