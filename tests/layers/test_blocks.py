import keras
import numpy as np
import pytest

from perceiver_keras import CrossAttentionBlock, SelfAttentionBlock

from .helpers import random_inputs, randomize_weights, replace_masked, run_layer_test, to_numpy


def test_cross_attention_block(tmp_path):
    inputs = random_inputs(0, query=(2, 3, 8), key_value=(2, 5, 4))
    inputs.update(key_mask=np.array([[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]]), query_mask=np.array([[1, 0, 1], [1, 1, 0]]))
    kwargs = dict(num_heads=2, qk_channels=6, v_channels=10, shape_for_attention="q", widening_factor=2,
                  use_query_residual=False, dropout=0.1, attention_dropout=0.2, activation="gelu_tanh",
                  layer_norm_epsilon=1e-6)
    run_layer_test(CrossAttentionBlock, kwargs, inputs, (2, 3, 8), tmp_path)


def built_cross_attention_block(**kwargs):
    block = CrossAttentionBlock(**{"num_heads": 2, "kernel_initializer": "zeros", **kwargs})
    block.build((None, 3, 8), (None, 5, 4))
    return block


@pytest.mark.parametrize("kwargs, qk, v", [
    (dict(num_heads=2), 4, 4),  # the reference's default: the key/value width
    (dict(num_heads=4, shape_for_attention="q"), 8, 8),
    (dict(num_heads=2, qk_channels=6, v_channels=10), 6, 10),
])
def test_cross_attention_widths(kwargs, qk, v):
    attention = built_cross_attention_block(**kwargs).attention
    assert tuple(attention.query_dense.kernel.shape) == (8, qk)
    assert tuple(attention.key_dense.kernel.shape) == (4, qk)
    assert tuple(attention.value_dense.kernel.shape) == (4, v)
    assert tuple(attention.output_dense.kernel.shape) == (v, 8)


def test_layer_norm_epsilon_is_the_reference_one():
    block = built_cross_attention_block()  # Keras' default would be 1e-3
    assert block.query_norm.epsilon == block.key_value_norm.epsilon == block.mlp_norm.epsilon == 1e-5


def test_self_attention_block(tmp_path):
    inputs = random_inputs(0, inputs=(2, 4, 8))
    inputs["padding_mask"] = np.array([[1, 1, 1, 0], [1, 0, 1, 1]])
    kwargs = dict(num_heads=4, qk_channels=4, v_channels=12, widening_factor=2, activation="relu")
    layer = randomize_weights(run_layer_test(SelfAttentionBlock, kwargs, inputs, (2, 4, 8), tmp_path))
    # Positions nobody may attend to do not change the other positions' outputs.
    changed = dict(inputs, inputs=replace_masked(inputs["inputs"], inputs["padding_mask"]))
    keep = inputs["padding_mask"] == 1
    np.testing.assert_allclose(to_numpy(layer(**changed))[keep], to_numpy(layer(**inputs))[keep], atol=1e-5)
    unmasked = dict(changed, padding_mask=np.ones_like(inputs["padding_mask"]))
    assert not np.allclose(to_numpy(layer(**unmasked))[keep], to_numpy(layer(**inputs))[keep], atol=1e-3)


@pytest.mark.parametrize("use_query_residual", [True, False])
def test_cross_attention_block_is_pre_norm_residual(use_query_residual):
    block = randomize_weights(built_cross_attention_block(use_query_residual=use_query_residual))
    query, key_value = map(keras.ops.convert_to_tensor, random_inputs(0, query=(2, 3, 8), key_value=(2, 5, 4)).values())
    x = block.attention(block.query_norm(query), block.key_value_norm(key_value))
    x = x + query if use_query_residual else x
    expected = x + block.mlp(block.mlp_norm(x))
    np.testing.assert_allclose(to_numpy(block(query, key_value)), to_numpy(expected), rtol=1e-5, atol=1e-5)


def test_self_attention_block_is_pre_norm_residual():
    block = SelfAttentionBlock(num_heads=2, kernel_initializer="zeros")
    block.build((2, 4, 8))
    randomize_weights(block)
    inputs = keras.ops.convert_to_tensor(random_inputs(0, inputs=(2, 4, 8))["inputs"])
    normed = block.norm(inputs)
    x = inputs + block.attention(normed, normed)
    expected = x + block.mlp(block.mlp_norm(x))
    np.testing.assert_allclose(to_numpy(block(inputs)), to_numpy(expected), rtol=1e-5, atol=1e-5)
