"""`zoo.convert.from_transformers` on the language heads: parity with transformers' PyTorch models."""

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from zoo.convert import from_transformers  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

TOLERANCE = 1e-4
LENGTH = 24


def _reference(cls, **overrides):
    """A reduced language config (shapes as the released model's, widths divided) with random weights."""
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(
        d_model=16, d_latents=32, num_latents=8, num_blocks=1, num_self_attends_per_block=3,
        num_cross_attention_heads=2, num_self_attention_heads=4, qk_channels=16, v_channels=32,
        max_position_embeddings=LENGTH, num_labels=3, attention_probs_dropout_prob=0.0, **overrides,
    )
    model = cls(config).eval()
    with torch.no_grad():  # Larger-than-default random weights, so that outputs depend on the input.
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn_like(tensor) * 0.3)
    return model


def _inputs(batch=3, seed=0):
    """Random byte ids; row 1 and 2 are padded (ids 0, mask 0) after 15 and 5 bytes."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(6, 262, size=(batch, LENGTH)).astype("int32")
    mask = np.ones_like(ids)
    for row, length in ((1, 15), (2, 5)):
        ids[row, length:], mask[row, length:] = 0, 0
    return ids, mask


def _run_reference(reference, ids, mask):
    with torch.no_grad():
        return reference(inputs=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask)).logits.numpy()


@pytest.mark.parametrize("head", ["PerceiverForMaskedLM", "PerceiverForSequenceClassification"])
def test_from_transformers_matches_reference_with_and_without_padding(head, tmp_path):
    reference = _reference(getattr(transformers, head))
    reference.save_pretrained(tmp_path)
    model = from_transformers(tmp_path)
    ids, mask = _inputs()
    expected = _run_reference(reference, ids, mask)
    logits = keras.ops.convert_to_numpy(model({"token_ids": ids, "padding_mask": mask}, training=False))
    assert logits.shape == expected.shape == ((3, LENGTH, 262) if head.endswith("MaskedLM") else (3, 3))
    assert np.abs(expected[0] - expected[1]).max() > 100 * TOLERANCE  # outputs depend on the input
    print(f"{head}: logits max abs diff {np.abs(logits - expected).max():.2e}")  # shown with pytest -s
    np.testing.assert_allclose(logits, expected, atol=TOLERANCE, rtol=0)
    # Padding matters (the mask reaches the cross-attention): unmasked padding changes the outputs.
    unmasked = keras.ops.convert_to_numpy(model({"token_ids": ids, "padding_mask": np.ones_like(mask)}))
    assert np.abs(unmasked[2] - logits[2]).max() > 100 * TOLERANCE
    assert model.count_params() == sum(p.numel() for p in reference.parameters())


def test_masked_lm_logits_are_tied_to_the_byte_embedding(tmp_path):
    reference = _reference(transformers.PerceiverForMaskedLM)
    reference.save_pretrained(tmp_path)
    model = from_transformers(tmp_path)
    embedding = reference.perceiver.input_preprocessor.embeddings.weight.detach().numpy()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.preprocessor.token_embeddings), embedding)
    # One weight serves both ends: changing it changes the logits' projection too.
    before = keras.ops.convert_to_numpy(model.preprocessor(keras.ops.ones((1, 2, 16)), reverse=True))
    model.preprocessor.token_embeddings.assign(embedding * 2)
    after = keras.ops.convert_to_numpy(model.preprocessor(keras.ops.ones((1, 2, 16)), reverse=True))
    bias = keras.ops.convert_to_numpy(model.preprocessor.bias)
    np.testing.assert_allclose(after - bias, 2 * (before - bias), rtol=1e-5, atol=1e-5)


def test_tied_model_round_trips_through_a_keras_file(tmp_path):
    reference = _reference(transformers.PerceiverForMaskedLM)
    reference.save_pretrained(tmp_path / "hf")
    model = from_transformers(tmp_path / "hf")
    model.save(tmp_path / "mlm.keras")
    loaded = keras.saving.load_model(tmp_path / "mlm.keras")
    ids, mask = _inputs()
    feed = {"token_ids": ids, "padding_mask": mask}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(feed)), keras.ops.convert_to_numpy(model(feed)),
                               atol=1e-6, rtol=0)
    assert loaded.count_params() == model.count_params()  # still one embedding, not two
