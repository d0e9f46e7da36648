"""Perceiver AR's causal layers: the layer contract, causality, prefix masking and prefix dropout."""

import itertools

import keras
import numpy as np
import pytest

from perceiver_keras.causal import CausalCrossAttention, CausalSelfAttention, PrenormMLP
from perceiver_keras.normalization import RMSNorm
from perceiver_keras.perceiver_ar import CausalEmbedding

from .helpers import TOLERANCE, random_inputs, randomize_weights, run_layer_test, to_numpy

HEADS = dict(num_heads=2, head_channels=8, rotary_channels=4)


T5X = dict(normalization="rms_norm", epsilon=1e-6, output_bias=False)  # the T5X Perceiver AR's attentions


@pytest.mark.parametrize("layout", [{}, T5X], ids=["reference_layout", "t5x_layout"])
def test_self_attention_layer_contract(tmp_path, layout):
    run_layer_test(CausalSelfAttention, dict(HEADS, dropout=0.1, **layout), random_inputs(0, latents=(2, 5, 12)),
                   (2, 5, 12), tmp_path)


@pytest.mark.parametrize("layout", [{}, dict(T5X, separate_prefix_norm=False)], ids=["reference_layout", "t5x_layout"])
def test_cross_attention_layer_contract(tmp_path, layout):
    inputs = random_inputs(0, latents=(2, 3, 12), prefix=(2, 6, 12))
    inputs["prefix_mask"] = np.array([[0, 0, 1, 1, 1, 1], [1] * 6], "int32")
    run_layer_test(CausalCrossAttention, dict(HEADS, prefix_dropout=0.25, seed=3, **layout), inputs, (2, 3, 12),
                   tmp_path)


@pytest.mark.parametrize("layout", [dict(use_bias=True),
                                    dict(normalization="rms_norm", activation="gelu_tanh", gated=True)],
                         ids=["reference_layout", "t5x_layout"])
def test_mlp_layer_contract(tmp_path, layout):
    run_layer_test(PrenormMLP, dict(widening_factor=2, **layout), random_inputs(0, inputs=(2, 4, 6)), (2, 4, 6),
                   tmp_path)


def test_rms_norm_layer_contract_and_formula(tmp_path):
    inputs = random_inputs(0, inputs=(2, 4, 6))
    run_layer_test(RMSNorm, dict(epsilon=1e-6), inputs, (2, 4, 6), tmp_path)
    layer = RMSNorm(epsilon=1e-6)
    layer.build((None, 6))
    layer.scale.assign(np.linspace(0.5, 1.5, 6).astype("float32"))
    x = inputs["inputs"]
    want = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * np.linspace(0.5, 1.5, 6)
    np.testing.assert_allclose(to_numpy(layer(x)), want, rtol=1e-5, atol=1e-5)


def test_shared_prefix_norm_and_gated_mlp_change_the_weights():
    cross = CausalCrossAttention(**HEADS, separate_prefix_norm=False, output_bias=False)
    cross.build((None, 3, 12), (None, 6, 12))
    assert cross.prefix_norm is cross.norm and cross.output_dense.bias is None
    mlp = PrenormMLP(widening_factor=2, gated=True)
    mlp.build((None, 4, 6))
    assert [w.shape for w in mlp.trainable_weights].count((6, 12)) == 2  # dense_in and dense_gate


@pytest.mark.parametrize("position_embedding", [True, False])
def test_embedding_layer_contract(tmp_path, position_embedding):
    ids = {"token_ids": np.arange(10, dtype="int32").reshape(2, 5)}
    run_layer_test(CausalEmbedding, dict(vocabulary_size=12, max_sequence_length=7, output_channels=4,
                                         position_embedding=position_embedding), ids,
                   (2, 5, 4), tmp_path, run_training_check=False)


def test_self_attention_is_causal():
    layer = CausalSelfAttention(**HEADS)
    x = random_inputs(0, x=(1, 6, 12))["x"]
    base = to_numpy(randomize_weights(layer.build((None, 6, 12)) or layer)(x))
    changed = x.copy()
    changed[:, 3] += np.linspace(-3, 3, 12, dtype="float32")  # not a constant: LayerNorm removes those
    out = to_numpy(layer(changed))
    np.testing.assert_allclose(out[:, :3], base[:, :3], **TOLERANCE)
    assert np.abs(out[:, 3:] - base[:, 3:]).min() > 1e-4


def _cross(**kwargs):
    layer = CausalCrossAttention(**HEADS, **kwargs)
    layer.build((None, 3, 12), (None, 4, 12))
    return randomize_weights(layer)


def test_cross_attention_sees_the_prefix_and_earlier_latents_only():
    layer = _cross()
    inputs = random_inputs(0, latents=(1, 3, 12), prefix=(1, 4, 12))
    base = to_numpy(layer(**inputs))
    later = dict(inputs, latents=inputs["latents"].copy())
    later["latents"][:, 2] += np.linspace(-3, 3, 12, dtype="float32")
    np.testing.assert_allclose(to_numpy(layer(**later))[:, :2], base[:, :2], **TOLERANCE)
    moved = dict(inputs, prefix=inputs["prefix"] + np.linspace(-1, 1, 12, dtype="float32"))
    assert np.abs(to_numpy(layer(**moved)) - base).min() > 1e-4


def test_masked_prefix_positions_are_ignored():
    layer = _cross()
    inputs = random_inputs(0, latents=(2, 3, 12), prefix=(2, 4, 12))
    mask = np.array([[0, 1, 1, 1], [0, 0, 1, 1]], "int32")
    noisy = dict(inputs, prefix=np.where(mask[..., None] == 0, 7.0, inputs["prefix"]).astype("float32"))
    np.testing.assert_allclose(to_numpy(layer(**noisy, prefix_mask=mask)), to_numpy(layer(**inputs, prefix_mask=mask)),
                               **TOLERANCE)


def test_prefix_dropout_attends_to_a_random_subset_of_the_prefix_while_training():
    layer = _cross(prefix_dropout=0.5, seed=1)
    inputs = random_inputs(0, latents=(3, 3, 12), prefix=(3, 4, 12))
    trained = to_numpy(layer(**inputs, training=True))
    # Each example's output is the inference output with exactly 2 of its 4 prefix positions kept.
    subsets = [np.isin(np.arange(4), kept).astype("int32") for kept in itertools.combinations(range(4), 2)]
    batch = len(trained)
    candidates = [to_numpy(layer(**inputs, prefix_mask=np.tile(mask, (batch, 1)))) for mask in subsets]
    for example in range(batch):
        errors = [np.abs(candidate[example] - trained[example]).max() for candidate in candidates]
        assert min(errors) < 1e-5, errors
    assert np.abs(trained - to_numpy(layer(**inputs))).max() > 1e-4  # inference keeps the whole prefix


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(num_heads=0), "num_heads"), (dict(num_heads=2, head_channels=8, rotary_channels=10), "rotary_channels"),
     (dict(num_heads=2, head_channels=8, rotary_channels=3), "rotary_channels"),
     (dict(num_heads=2, prefix_dropout=1.0), "prefix_dropout")],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CausalCrossAttention(**kwargs)


def test_embedding_refuses_a_window_longer_than_its_positions():
    with pytest.raises(ValueError, match="max_sequence_length=4"):
        CausalEmbedding(10, 4, 8)(keras.ops.ones((1, 5), "int32"))
