import numpy as np
import pytest

from perceiver_keras import CrossAttentionBlock, PerceiverEncoder, SelfAttentionBlock

from .helpers import random_inputs, randomize_weights, replace_masked, run_layer_test, to_numpy

M, C, N, D, LAYERS = 12, 5, 4, 8, 2  # the sizes of the PerceiverIO model tests, so JAX reuses their kernels
ARGS = dict(num_latents=N, num_latent_channels=D, num_self_attention_layers_per_block=LAYERS,
            num_self_attention_heads=2)


def test_layer(tmp_path):
    # Two cross-attends, so the shared second set of weights goes through the round trips too;
    # the single cross-attend is covered by the PerceiverIO model tests.
    inputs = random_inputs(0, inputs=(2, M, C))
    inputs["input_mask"] = np.array([[1] * 8 + [0] * 4, [1, 0] * 6])
    kwargs = dict(ARGS, num_blocks=2, num_cross_attends=2, num_self_attention_layers_per_block=1,
                  use_query_residual=False, activation="gelu_tanh")
    run_layer_test(PerceiverEncoder, kwargs, inputs, (2, N, D), tmp_path)


def built_encoder(**kwargs):
    encoder = PerceiverEncoder(**ARGS, **kwargs, kernel_initializer="zeros", latent_initializer="zeros")
    encoder.build((None, None, C))
    return encoder


def one_block_count():
    """Parameters of one cross-attention block and of one stack of self-attention layers."""
    cross = CrossAttentionBlock(num_heads=1, kernel_initializer="zeros")
    cross.build((None, N, D), (None, None, C))
    layer = SelfAttentionBlock(num_heads=2, kernel_initializer="zeros")
    layer.build((None, N, D))
    return cross.count_params(), LAYERS * layer.count_params()


def test_parameter_count_does_not_grow_with_num_blocks():
    cross, stack = one_block_count()
    counts = {blocks: built_encoder(num_blocks=blocks).count_params() for blocks in (1, 4)}
    assert counts[1] == counts[4] == N * D + cross + stack


@pytest.mark.parametrize("num_blocks, num_cross_attends", [(3, 2), (5, 2), (5, 4)])
def test_repeated_cross_attends_hold_two_sets_of_weights(num_blocks, num_cross_attends):
    cross, stack = one_block_count()
    one = built_encoder(num_blocks=num_blocks).count_params()
    many = built_encoder(num_blocks=num_blocks, num_cross_attends=num_cross_attends).count_params()
    assert many == N * D + 2 * (cross + stack)
    assert many - one == cross + stack


def test_blocks_reapply_the_same_stack():
    x = random_inputs(0, x=(2, M, C))["x"]
    once, twice = randomize_weights(built_encoder(num_blocks=1)), built_encoder(num_blocks=2)
    twice.set_weights(once.get_weights())
    latents = once(x)
    for layer in once.self_attention_stacks[0]:
        latents = layer(latents)
    np.testing.assert_allclose(to_numpy(twice(x)), to_numpy(latents), rtol=1e-5, atol=1e-5)
    assert not np.allclose(to_numpy(twice(x)), to_numpy(once(x)), atol=1e-3)


def test_input_mask_hides_masked_inputs():
    encoder = randomize_weights(built_encoder(num_blocks=1))
    x = random_inputs(0, x=(2, M, C))["x"]
    mask = np.array([[1] * 8 + [0] * 4, [1, 0] * 6])
    changed = replace_masked(x, mask)
    np.testing.assert_allclose(to_numpy(encoder(changed, input_mask=mask)), to_numpy(encoder(x, input_mask=mask)),
                               atol=1e-5)
    assert not np.allclose(to_numpy(encoder(changed)), to_numpy(encoder(x)), atol=1e-3)
