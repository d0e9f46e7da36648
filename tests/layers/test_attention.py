import numpy as np
import pytest

from perceiver_keras import PerceiverAttention

from .helpers import random_inputs, randomize_weights, run_layer_test, to_numpy

BATCH, O, M = 2, 3, 5
KWARGS = dict(num_heads=2, qk_channels=8, v_channels=12, output_channels=6)


def make_attention(seed=0, **kwargs):
    layer = PerceiverAttention(**{**KWARGS, **kwargs}, kernel_initializer="zeros", name="attention")
    inputs = random_inputs(seed, query=(BATCH, O, 4), key_value=(BATCH, M, 7))
    layer(**inputs)
    return randomize_weights(layer, seed), inputs


def numpy_attention(weights, query, key_value, num_heads, key_mask=None):
    """Multi-head attention: per-head softmax(q k^T / sqrt(d_qk)) v, heads concatenated, projected."""
    def project(x, name):
        return x @ weights[f"attention/{name}/kernel"] + weights[f"attention/{name}/bias"]

    def heads(x):  # (B, L, C) -> (B, H, L, C / H)
        return x.reshape(*x.shape[:2], num_heads, -1).transpose(0, 2, 1, 3)

    q, k, v = heads(project(query, "query")), heads(project(key_value, "key")), heads(project(key_value, "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    keep = np.ones(scores.shape, bool) if key_mask is None else np.broadcast_to(key_mask[:, None, None, :] > 0,
                                                                                 scores.shape)
    scores = np.where(keep, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs = probs / probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], -1)
    return project(context, "output"), probs


def test_layer(tmp_path):
    inputs = random_inputs(0, query=(BATCH, O, 4), key_value=(BATCH, M, 7))
    inputs["key_mask"] = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]])
    inputs["query_mask"] = np.array([[1, 0, 1], [1, 1, 1]])
    run_layer_test(PerceiverAttention, dict(KWARGS, dropout=0.1), inputs, (BATCH, O, 6), tmp_path)


def test_default_widths():
    layer = PerceiverAttention(num_heads=4, kernel_initializer="zeros")
    layer.build((None, O, 8), (None, M, 6))
    assert [tuple(w.shape) for w in layer.weights] == [(8, 8), (8,), (6, 8), (8,), (6, 8), (8,), (8, 8), (8,)]
    assert layer.compute_output_shape((BATCH, O, 8), (BATCH, M, 6)) == (BATCH, O, 8)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("num_heads, v_channels", [(2, 12), (4, 8)])  # scale 1/2, then 1/sqrt(2)
def test_matches_numpy_multi_head_attention(num_heads, v_channels, masked):
    layer, inputs = make_attention(num_heads=num_heads, v_channels=v_channels)
    weights = {w.path: to_numpy(w).astype("float64") for w in layer.weights}
    assert sorted(weights) == sorted(f"attention/{n}/{p}" for n in ("query", "key", "value", "output")
                                     for p in ("kernel", "bias"))
    key_mask = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 0]]) if masked else None
    outputs, probs = layer(**inputs, key_mask=key_mask, return_attention_scores=True)
    expected_outputs, expected_probs = numpy_attention(weights, *inputs.values(), num_heads, key_mask=key_mask)
    np.testing.assert_allclose(to_numpy(probs), expected_probs, atol=1e-5)
    np.testing.assert_allclose(to_numpy(outputs), expected_outputs, rtol=1e-4, atol=1e-4)


def test_key_mask_gives_masked_keys_zero_weight():
    layer, inputs = make_attention()
    key_mask = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0]])  # the second example masks every key
    outputs, probs = layer(**inputs, key_mask=key_mask, return_attention_scores=True)
    outputs, probs = to_numpy(outputs), to_numpy(probs)
    assert np.all(probs[0][..., key_mask[0] == 0] == 0.0)
    assert np.all(probs[0][..., key_mask[0] == 1] > 0.0)
    np.testing.assert_allclose(probs[0].sum(-1), 1.0, atol=1e-6)
    # All keys masked: zero weights, so a zero context and an output equal to the output bias.
    assert np.all(probs[1] == 0.0)
    assert np.all(np.isfinite(outputs))
    bias = to_numpy(layer.output_dense.bias)
    np.testing.assert_allclose(outputs[1], np.broadcast_to(bias, outputs[1].shape), atol=1e-6)


def test_query_mask_zeroes_masked_queries():
    layer, inputs = make_attention()
    query_mask = np.array([[1, 0, 1], [0, 0, 1]])
    masked = to_numpy(layer(**inputs, query_mask=query_mask))
    unmasked = to_numpy(layer(**inputs))
    assert np.all(masked[query_mask == 0] == 0.0)
    assert np.all(np.abs(unmasked[query_mask == 0]) > 0.0)
    np.testing.assert_allclose(masked[query_mask == 1], unmasked[query_mask == 1], atol=1e-6)


@pytest.mark.parametrize("masked", [False, True])
def test_folded_projections_compute_the_same_function(masked):
    # Narrow, many inputs (the image cross-attention's case): folding the key and value
    # projections into the queries and probabilities is taken, and changes nothing but the order.
    shapes = dict(query=(BATCH, 4, 16), key_value=(BATCH, 40, 3))
    inputs = random_inputs(1, **shapes)
    kwargs = dict(num_heads=2, qk_channels=16, v_channels=8, kernel_initializer="zeros")
    folded = PerceiverAttention(**kwargs, name="attention")
    plain = PerceiverAttention(**kwargs, fold_projections=False, name="attention")
    folded(**inputs), plain(**inputs)
    randomize_weights(folded, seed=3)
    plain.set_weights(folded.get_weights())
    assert folded._folding(4) == (True, True) and plain._folding(4) == (False, False)
    key_mask = (np.random.default_rng(2).random((BATCH, 40)) > 0.4).astype("int32") if masked else None
    out_folded, probs_folded = folded(**inputs, key_mask=key_mask, return_attention_scores=True)
    out_plain, probs_plain = plain(**inputs, key_mask=key_mask, return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(probs_folded), to_numpy(probs_plain), atol=1e-5)
    np.testing.assert_allclose(to_numpy(out_folded), to_numpy(out_plain), rtol=1e-4, atol=1e-4)
    assert PerceiverAttention.from_config(plain.get_config()).fold_projections is False
