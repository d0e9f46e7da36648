"""Writes flaxformer_perceiver_ar.npz: the T5X Perceiver AR (google/flaxformer) on a reduced configuration.

Run by `make flaxformer-fixture`, which installs flax, aqtp and chex from PyPI into a scratch folder
and flaxformer from GitHub at FLAXFORMER_COMMIT (it is not on PyPI). The model is built as the gin
files in flaxformer/t5x/configs/perceiver_ar build it (architectures/perceiver_ar.gin over
t5_1_1_flaxformer.gin), with random parameters; the file holds those parameters ("param:" + their
"/"-joined flax names), the token windows and flaxformer's logits for them, so the suite compares
`zoo.convert.from_flaxformer` against an executable reference without installing it.

`python flaxformer_fixture.py --count` prints the parameter counts of perceiver_ar_small.gin and
perceiver_ar_base.gin at the c4_lm.gin window (8,192 tokens), which the `c4_ar_*` presets pin.
"""

import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flaxformer.architectures.perceiver_ar import decoder_layer, dense_attention, perceiver_ar_architecture
from flaxformer.components import dense, embedding, layer_norm

FLAXFORMER_COMMIT = "399ea3a85e9807ada653fd0de1a9de627eb0acde"
REDUCED = dict(num_latents=8, num_layers=3, num_heads=2, head_dim=16, embed_dim=32, mlp_dim=128, vocab=300)
WINDOW = 24
GIN = {  # models/perceiver_ar_small.gin and perceiver_ar_base.gin (vocabulary 32,128: NUM_EMBEDDINGS)
    "small": dict(num_latents=1024, num_layers=6, num_heads=8, head_dim=64, embed_dim=512, mlp_dim=2048, vocab=32128),
    "base": dict(num_latents=1024, num_layers=12, num_heads=12, head_dim=64, embed_dim=768, mlp_dim=3072, vocab=32128),
}


def build(num_latents, num_layers, num_heads, head_dim, embed_dim, mlp_dim, vocab, dtype=jnp.float32):
    """flaxformer's DecoderOnly with the gin files' components (dropout 0: the reference is compared in inference)."""
    scaling = nn.initializers.variance_scaling
    bias_init = nn.initializers.normal(1e-6)
    norm = functools.partial(layer_norm.T5LayerNorm, dtype=dtype)
    drop = functools.partial(nn.Dropout, rate=0.0, broadcast_dims=(-2,))

    def layer(shared_relative_position_bias=None):
        attention = dense_attention.MultiHeadDotProductAttention(
            num_heads=num_heads, dtype=dtype, head_dim=head_dim, kernel_init=scaling(1.0, "fan_in", "normal"),
            bias_init=bias_init, use_bias=False, broadcast_dropout=True, dropout_rate=0.0, use_rotary_embedding=True)
        mlp = dense.MlpBlock(use_bias=False, intermediate_dim=mlp_dim, activations=("gelu", "linear"),
                             kernel_init=scaling(1.0, "fan_in", "truncated_normal"), bias_init=bias_init,
                             intermediate_dropout_rate=0.0, final_dropout_rate=0, dtype=dtype)
        return decoder_layer.DecoderLayer(self_attention=attention, encoder_decoder_attention=None, mlp=mlp,
                                          dropout_factory=drop, layer_norm_factory=norm,
                                          relative_position_bias_factory=None, num_latents=num_latents)

    def decoder(shared_token_embedder=None):
        return perceiver_ar_architecture.Decoder(
            num_layers=num_layers, layer_factory=layer, dropout_factory=drop, layer_norm_factory=norm,
            token_embedder_factory=lambda: embedding.Embed(
                num_embeddings=vocab, features=embed_dim, cast_input_dtype=jnp.int32, dtype=dtype,
                attend_dtype=jnp.float32, embedding_init=nn.initializers.normal(1.0), one_hot=True,
                name="token_embedder"),
            output_logits_factory=lambda: dense.DenseGeneral(
                vocab, use_bias=False, dtype=jnp.float32, kernel_init=scaling(1.0, "fan_in", "truncated_normal"),
                bias_init=bias_init),
            position_embedder_factory=None, dtype=dtype, num_latents=num_latents)

    return perceiver_ar_architecture.DecoderOnly(decoder_factory=decoder, num_latents=num_latents, dtype=dtype)


def parameter_count(name, window=8192):
    model = build(**GIN[name])
    tokens = jnp.ones((1, window), jnp.int32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), decoder_input_tokens=tokens,
                                               decoder_target_tokens=tokens, enable_dropout=False))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(shapes["params"]))


def main():
    if "--count" in sys.argv:
        for name in GIN:
            print(f"perceiver_ar_{name}.gin: {parameter_count(name):,} parameters")
        return
    model = build(**REDUCED)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, REDUCED["vocab"], size=(2, WINDOW)).astype(np.int32)  # no padding (id 0)
    variables = model.init(jax.random.PRNGKey(0), decoder_input_tokens=tokens, decoder_target_tokens=tokens,
                           enable_dropout=False)
    # Scales of one would make every norm the identity's: draw them too, so the conversion of each is checked.
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: x * jnp.asarray(rng.uniform(0.5, 1.5, x.shape), x.dtype)
        if jax.tree_util.keystr(path).endswith("['scale']") else x, variables["params"])
    logits = model.apply({"params": params}, decoder_input_tokens=tokens, decoder_target_tokens=tokens,
                         enable_dropout=False)
    flat = {"param:" + "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
    out = Path(__file__).with_name("flaxformer_perceiver_ar.npz")
    np.savez_compressed(out, tokens=tokens, logits=np.asarray(logits, np.float32), window=WINDOW,
                        commit=FLAXFORMER_COMMIT, **{k: np.asarray(v) for k, v in REDUCED.items()}, **flat)
    print(f"wrote {out}: logits {logits.shape}, {len(flat)} parameters")


if __name__ == "__main__":
    main()
