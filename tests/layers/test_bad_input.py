"""Bad arguments and bad tensors raise ValueError naming what was received."""

import re
from functools import partial

import numpy as np
import pytest

from perceiver_keras import (
    CrossAttentionBlock,
    FourierPositionEncoding,
    PerceiverAttention,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    PerceiverMLP,
    SelfAttentionBlock,
    TrainablePositionEncoding,
)


def zeros(*shape):
    return np.zeros(shape, "float32")


ENCODER = dict(num_latents=4, num_latent_channels=8, num_self_attention_layers_per_block=1,
               num_self_attention_heads=2)

CONSTRUCTOR_CASES = {
    "attention_heads": (lambda: PerceiverAttention(num_heads=0), "num_heads=0"),
    "cross_heads": (lambda: CrossAttentionBlock(num_heads=0), "num_heads=0"),
    "self_heads": (lambda: SelfAttentionBlock(num_heads=-1), "num_heads=-1"),
    "decoder_heads": (lambda: PerceiverDecoder(num_heads=0), "num_heads=0"),
    "encoder_heads": (lambda: PerceiverEncoder(**dict(ENCODER, num_self_attention_heads=0)),
                      "num_self_attention_heads=0"),
    "attention_qk_divisible": (lambda: PerceiverAttention(num_heads=3, qk_channels=8), "qk_channels=8, num_heads=3"),
    "attention_v_divisible": (lambda: PerceiverAttention(num_heads=2, v_channels=5), "v_channels=5, num_heads=2"),
    "block_qk_divisible": (lambda: SelfAttentionBlock(num_heads=4, qk_channels=6), "qk_channels=6, num_heads=4"),
    "encoder_latents_divisible": (lambda: PerceiverEncoder(**dict(ENCODER, num_latent_channels=10,
                                                                   num_self_attention_heads=4)),
                                  "num_latent_channels=10, num_self_attention_heads=4"),
    "mlp_activation": (lambda: PerceiverMLP(activation="swishy"), "activation='swishy'"),
    "block_activation": (lambda: SelfAttentionBlock(activation="swishy"), "activation='swishy'"),
    "encoder_activation": (lambda: PerceiverEncoder(**ENCODER, activation="swishy"), "activation='swishy'"),
    "decoder_activation": (lambda: PerceiverDecoder(activation="swishy"), "activation='swishy'"),
    "cross_shape": (lambda: CrossAttentionBlock(shape_for_attention="k"), "shape_for_attention='k'"),
    "decoder_shape": (lambda: PerceiverDecoder(shape_for_attention="x"), "shape_for_attention='x'"),
    "encoder_shape": (lambda: PerceiverEncoder(**ENCODER, cross_attention_shape_for_attention="kq"),
                      "shape_for_attention='kq'"),
    "cross_attends": (lambda: PerceiverEncoder(**ENCODER, num_blocks=2, num_cross_attends=3),
                      "num_cross_attends=3, num_blocks=2"),
    "attention_dropout_one": (lambda: PerceiverAttention(num_heads=1, dropout=1.0), "dropout=1.0"),
    "mlp_dropout_negative": (lambda: PerceiverMLP(dropout=-0.1), "dropout=-0.1"),
    "block_attention_dropout": (lambda: CrossAttentionBlock(attention_dropout=1.5), "attention_dropout=1.5"),
    "encoder_dropout": (lambda: PerceiverEncoder(**ENCODER, dropout=1.0), "dropout=1.0"),
    "decoder_dropout": (lambda: PerceiverDecoder(dropout=2), "dropout=2"),
    "fourier_index_dims": (lambda: FourierPositionEncoding(index_dims=(4, 0), num_bands=2), "index_dims=(4, 0)"),
    "fourier_bands": (lambda: FourierPositionEncoding(index_dims=4, num_bands=0), "num_bands=0"),
    "fourier_resolution": (lambda: FourierPositionEncoding(index_dims=(4, 4), num_bands=2, max_resolution=(4,)),
                           "max_resolution=(4,)"),
    "trainable_channels": (lambda: TrainablePositionEncoding(index_dims=4, encoding_channels=0), "encoding_channels=0"),
    "model_inputs_shape": (lambda: PerceiverIO(PerceiverEncoder(**ENCODER), PerceiverDecoder(),
                                               TrainablePositionEncoding(1, 8), inputs_shape=()), "inputs_shape=()"),
}


@pytest.mark.parametrize("case", CONSTRUCTOR_CASES)
def test_bad_constructor_argument(case):
    make, received = CONSTRUCTOR_CASES[case]
    with pytest.raises(ValueError, match=re.escape(received)):
        make()


BUILD_CASES = {
    "attention_default_width": (lambda: PerceiverAttention(num_heads=3)(zeros(2, 3, 8), zeros(2, 5, 6)),
                                "qk_channels=8, num_heads=3"),
    "cross_default_kv_width": (lambda: CrossAttentionBlock(num_heads=2)(zeros(2, 3, 8), zeros(2, 5, 3)),
                               "qk_channels=3, num_heads=2"),
    "encoder_default_kv_width": (lambda: PerceiverEncoder(**ENCODER, num_cross_attention_heads=2)(zeros(2, 5, 3)),
                                 "qk_channels=3, num_heads=2"),
    "attention_rank": (lambda: PerceiverAttention(num_heads=1)(zeros(3, 8), zeros(2, 5, 6)), "query.shape=(3, 8)"),
    "encoder_rank": (lambda: PerceiverEncoder(**ENCODER)(zeros(2, 5, 3, 1)), "inputs.shape=(2, 5, 3, 1)"),
    "self_rank": (lambda: SelfAttentionBlock(num_heads=2)(zeros(4, 8)), "inputs.shape=(4, 8)"),
}


@pytest.mark.parametrize("case", BUILD_CASES)
def test_bad_shape_at_build(case):
    build, received = BUILD_CASES[case]
    with pytest.raises(ValueError, match=re.escape(received)):
        build()


Q, KV, N, X = (2, 3, 8), (2, 5, 6), (2, 4, 8), (2, 5, 3)  # query, key/value, latents, encoder inputs
ZEROS = dict(kernel_initializer="zeros")  # the values do not matter here, and zeros initialise fastest
ATTENTION = partial(PerceiverAttention, 2, **ZEROS)
CROSS = partial(CrossAttentionBlock, 2, **ZEROS)
SELF = partial(SelfAttentionBlock, 2, **ZEROS)
MLP = partial(PerceiverMLP, 2, **ZEROS)
ENCODE = partial(PerceiverEncoder, **ENCODER, **ZEROS)
DECODE = partial(PerceiverDecoder, **ZEROS)

# name: (layer, shapes it is built for first or None, shapes it is called on, call kwargs, received)
CALL_CASES = {
    "attention_query_channels": (ATTENTION, [Q, KV], [(2, 3, 9), KV], {}, "query.shape=(2, 3, 9)"),
    "attention_key_value_channels": (ATTENTION, [Q, KV], [Q, (2, 5, 7)], {}, "key_value.shape=(2, 5, 7)"),
    "attention_rank": (ATTENTION, [Q, KV], [(2, 3, 1, 8), KV], {}, "query.shape=(2, 3, 1, 8)"),
    "attention_key_mask": (ATTENTION, None, [Q, KV], {"key_mask": np.ones((2, 4))}, "key_mask.shape=(2, 4)"),
    "attention_query_mask_rank": (ATTENTION, None, [Q, KV], {"query_mask": np.ones((2, 3, 1))},
                                  "query_mask.shape=(2, 3, 1)"),
    "cross_query_channels": (CROSS, [Q, KV], [(2, 3, 9), KV], {}, "query.shape=(2, 3, 9)"),
    "cross_key_value_channels": (CROSS, [Q, KV], [Q, (2, 5, 5)], {}, "key_value.shape=(2, 5, 5)"),
    "self_channels": (SELF, [N], [(2, 4, 9)], {}, "inputs.shape=(2, 4, 9)"),
    "self_padding_mask": (SELF, None, [N], {"padding_mask": np.ones((2, 5))}, "shape=(2, 5)"),
    "mlp_channels": (MLP, [N], [(2, 4, 9)], {}, "(2, 4, 9)"),
    "encoder_channels": (ENCODE, [X], [(2, 5, 4)], {}, "inputs.shape=(2, 5, 4)"),
    "encoder_rank": (ENCODE, [X], [(2, 5, 3, 1)], {}, "inputs.shape=(2, 5, 3, 1)"),
    "encoder_input_mask": (ENCODE, None, [X], {"input_mask": np.ones((2, 6))}, "shape=(2, 6)"),
    "decoder_query_channels": (DECODE, [Q, N], [(2, 3, 7), N], {}, "query.shape=(2, 3, 7)"),
    "decoder_query_mask": (DECODE, None, [Q, N], {"query_mask": np.ones((3, 3))}, "query_mask.shape=(3, 3)"),
}


@pytest.mark.parametrize("case", CALL_CASES)
def test_bad_tensor_at_call(case):
    make, build_shapes, call_shapes, kwargs, received = CALL_CASES[case]
    layer = make()
    if build_shapes:
        layer.build(*build_shapes)
    with pytest.raises(ValueError, match=re.escape(received)):
        layer(*(zeros(*shape) for shape in call_shapes), **kwargs)
