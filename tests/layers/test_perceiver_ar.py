"""The Perceiver AR model: parity with lucidrains' perceiver-ar-pytorch, and the cache equals the full pass."""

from pathlib import Path

import keras
import numpy as np
import pytest

from perceiver_keras.perceiver_ar import T5X_LAYOUT, PerceiverAR

from .helpers import TOLERANCE, assert_fit_step, assert_saved_model_round_trip, to_numpy

TINY = dict(vocabulary_size=20, max_sequence_length=12, num_latents=5, num_channels=16, num_heads=2, head_channels=8,
            rotary_channels=4, num_self_attention_layers=2, widening_factor=2, seed=0)
T5X_TINY = dict(TINY, rotary_channels=8, **T5X_LAYOUT)  # the T5X (flaxformer) layout
LAYOUTS = pytest.mark.parametrize("config", [TINY, T5X_TINY], ids=["reference_layout", "t5x_layout"])
FLAXFORMER = Path(__file__).parents[1] / "reference" / "flaxformer_perceiver_ar.npz"


def _ids(shape, seed=0, low=1):
    return np.random.default_rng(seed).integers(low, 20, shape).astype("int32")


def _randomized(model, scale=0.3):
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in model.weights])
    return model


@pytest.mark.reference
@pytest.mark.parametrize("reference", [
    dict(num_tokens=40, dim=64, depth=2, max_seq_len=24, cross_attn_seq_len=16, dim_head=32, heads=2),
    dict(num_tokens=30, dim=48, depth=1, max_seq_len=20, cross_attn_seq_len=8, dim_head=64, heads=3, ff_mult=2,
         perceive_depth=2),
])
def test_matches_perceiver_ar_pytorch(reference):
    torch = pytest.importorskip("torch")
    reference_module = pytest.importorskip("perceiver_ar_pytorch")
    from zoo.convert.perceiver_ar import from_perceiver_ar_pytorch

    torch.manual_seed(0)
    theirs = reference_module.PerceiverAR(**reference).eval()
    with torch.no_grad():  # larger-than-default weights, so that every part moves the logits
        for name, tensor in theirs.state_dict().items():
            if not name.endswith("inv_freq"):
                tensor.copy_(torch.randn_like(tensor) * 0.2)
    ours = from_perceiver_ar_pytorch(theirs.state_dict(), **reference)
    ids = np.random.default_rng(0).integers(1, reference["num_tokens"], (2, reference["max_seq_len"]))
    ids[1, :3] = 0  # padding in the prefix: masked on both sides
    for length in (reference["max_seq_len"], reference["cross_attn_seq_len"] + 3):
        window = ids[:, :length]
        mask = torch.tensor(window[:, :reference["cross_attn_seq_len"]] != 0)
        with torch.no_grad():
            want = theirs(torch.tensor(window), prefix_mask=mask).numpy()
        got = to_numpy(ours(window.astype("int32")))
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4


@pytest.mark.reference
def test_matches_the_t5x_perceiver_ar_of_flaxformer():
    """flaxformer's logits, saved by tests/reference/flaxformer_fixture.py (flaxformer is not on PyPI)."""
    from zoo.convert.flaxformer import from_flaxformer

    fixture = np.load(FLAXFORMER)
    params = {name[len("param:"):]: fixture[name] for name in fixture.files if name.startswith("param:")}
    ours = from_flaxformer(params, num_heads=int(fixture["num_heads"]), head_channels=int(fixture["head_dim"]),
                           num_latents=int(fixture["num_latents"]), max_sequence_length=int(fixture["window"]))
    assert ours.count_params() == sum(value.size for value in params.values())
    got = to_numpy(ours(fixture["tokens"]))
    assert got.shape == fixture["logits"].shape
    assert np.abs(got - fixture["logits"]).max() <= 1e-4
    logits, _ = ours.prefill(fixture["tokens"])
    assert np.abs(to_numpy(logits) - fixture["logits"]).max() <= 1e-4


def test_from_flaxformer_reads_nested_trees_and_refuses_other_architectures():
    from zoo.convert.flaxformer import from_flaxformer

    fixture = np.load(FLAXFORMER)
    flat = {name[len("param:"):]: fixture[name] for name in fixture.files if name.startswith("param:")}
    nested = {}
    for name, value in flat.items():  # as flax keeps them, under a T5X checkpoint's "target"
        *path, leaf = ["target", *name.split("/")]
        node = nested
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    shape = dict(num_heads=2, head_channels=16, num_latents=8, max_sequence_length=24)
    for a, b in zip(from_flaxformer(nested, **shape).weights, from_flaxformer(flat, **shape).weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    with pytest.raises(ValueError, match=r"num_heads \* head_channels must equal the query kernel's width 32"):
        from_flaxformer(flat, **dict(shape, num_heads=3))
    with pytest.raises(ValueError, match="does not use"):
        from_flaxformer({**flat, "decoder/extra/kernel": np.zeros((2, 2))}, **shape)
    with pytest.raises(ValueError, match="'decoder' tree"):
        from_flaxformer({"encoder": flat}, **shape)


@LAYOUTS
def test_cached_steps_equal_the_full_pass(config):
    model = _randomized(PerceiverAR(**config))
    ids = _ids((2, 12))
    ids[0, :4] = 0  # a left-padded prompt
    known = 9  # prefill holds 9 tokens (7 prefix + 2 latents); the rest arrive one step at a time
    window = np.concatenate([ids[:, :known], np.zeros((2, 12 - known), "int32")], axis=1)
    logits, cache = model.prefill(window)
    np.testing.assert_allclose(to_numpy(logits)[:, :known - 7], to_numpy(model(ids[:, :known])), **TOLERANCE)
    for position in range(known, 12):
        step, cache = model.decode_step(ids[:, position], position, cache)
        full = to_numpy(model(ids[:, :position + 1]))[:, -1]
        np.testing.assert_allclose(to_numpy(step), full, rtol=1e-5, atol=1e-5)


def test_a_cache_of_the_wrong_shape_is_refused():
    model = PerceiverAR(**TINY)
    _, cache = model.prefill(_ids((1, 12)))
    bad = dict(cache, self_keys=cache["self_keys"][:, :, :, :3])
    with pytest.raises(ValueError, match=r"cache\['self_keys'\] must have shape"):
        model.decode_step(np.array([3], "int32"), 10, bad)
    with pytest.raises(ValueError, match="keys"):
        model.decode_step(np.array([3], "int32"), 10, {"token_ids": cache["token_ids"]})


@LAYOUTS
def test_saves_loads_and_fits(tmp_path, config):
    model = PerceiverAR(**dict(config, prefix_dropout=0.3, dropout=0.1))
    ids = _ids((2, 12))
    clone = PerceiverAR.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(to_numpy(clone(ids)), to_numpy(model(ids)), **TOLERANCE)
    assert_saved_model_round_trip(model, ids, tmp_path)
    assert_fit_step(model, ids)


def test_seed_makes_weights_reproducible_and_plain_causal_transformer_has_no_prefix():
    first, second = PerceiverAR(**TINY), PerceiverAR(**TINY)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    transformer = PerceiverAR(**dict(TINY, num_latents=12))
    assert transformer.prefix_length == 0
    assert tuple(transformer(_ids((1, 12))).shape) == (1, 12, 20)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_latents=13), "num_latents"), (dict(num_self_attention_layers=-1), "num_self_attention_layers"),
    (dict(num_cross_attention_layers=0), "num_cross_attention_layers"), (dict(prefix_dropout=1.5), "prefix_dropout"),
    (dict(normalization="batch_norm"), "normalization"), (dict(mlp_activation="gleu"), "activation"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PerceiverAR(**dict(TINY, **kwargs))


@LAYOUTS
def test_mixed_bfloat16_stays_close_to_float32(config):
    model = _randomized(PerceiverAR(**config), scale=0.1)
    ids = _ids((1, 12))
    want = to_numpy(model(ids))
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        half = PerceiverAR(**config)
    finally:
        keras.config.set_dtype_policy("float32")
    half.set_weights(model.get_weights())
    got = to_numpy(half(ids))
    assert got.dtype == np.float32 or str(got.dtype) == "float32"
    np.testing.assert_allclose(got, want, rtol=0.1, atol=0.1)


def test_generation_is_the_same_with_and_without_the_cache_and_follows_new_weights():
    from zoo.language.generation import generate

    with pytest.raises(ValueError, match="vocabulary_size=20"):
        generate(PerceiverAR(**TINY), "ab", 4)
    model = _randomized(PerceiverAR(**dict(TINY, vocabulary_size=262)))
    cached = generate(model, "ab", 12, greedy=True, return_bytes=True)  # 12 + 1 > N: the window slides
    assert cached == generate(model, "ab", 12, greedy=True, use_cache=False, return_bytes=True)
    model.set_weights([0.5 * w for w in model.get_weights()])  # compiled steps must read the weights anew
    halved = generate(model, "ab", 12, greedy=True, return_bytes=True)
    assert halved == generate(model, "ab", 12, greedy=True, use_cache=False, return_bytes=True)
    assert halved != cached
