"""Language presets (parameter counts pinned to transformers'), subsampled decoding, bad inputs."""

import keras
import numpy as np
import pytest

import zoo
from zoo.language.presets import CLASSIFIER_PRESETS, GLUE_CLASSES, MASKED_LM_PRESETS

pytestmark = pytest.mark.tensorflow_only

# transformers' PerceiverForMaskedLM / PerceiverForSequenceClassification at deepmind/language-perceiver's
# configuration, by number of labels for the classifier.
MASKED_LM_PARAMETERS = 201_108_230
CLASSIFIER_PARAMETERS = {1: 206_097_409, 2: 206_098_690, 3: 206_099_971}


def test_reference_parameter_counts_come_from_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = dict(d_model=768, d_latents=1280, num_latents=256, num_blocks=1, num_self_attends_per_block=26,
                  num_self_attention_heads=8, num_cross_attention_heads=8, qk_channels=256, v_channels=1280,
                  vocab_size=262, max_position_embeddings=2048)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        mlm = transformers.PerceiverForMaskedLM(transformers.PerceiverConfig(**config))
        assert sum(p.numel() for p in mlm.parameters()) == MASKED_LM_PARAMETERS
        for labels, expected in CLASSIFIER_PARAMETERS.items():
            classifier = transformers.PerceiverForSequenceClassification(
                transformers.PerceiverConfig(**config, num_labels=labels))
            assert sum(p.numel() for p in classifier.parameters()) == expected


def test_paper_presets_have_the_reference_parameter_counts():
    model = zoo.create_model("language_perceiver")
    assert model.count_params() == MASKED_LM_PARAMETERS == zoo.get_preset("language_perceiver").metadata[
        "parameter_count"]
    assert model.output_shape == (None, 2048, 262)
    del model
    classifier = zoo.create_model("glue_stsb")  # the regression head: one output
    assert classifier.count_params() == CLASSIFIER_PARAMETERS[1] and classifier.output_shape == (None, 1)
    # The other GLUE / IMDb presets differ only in their number of classes (d_latents + 1 weights each).
    for name, (config, metadata) in CLASSIFIER_PRESETS.items():
        if config.get("sequence_length") == 2048:
            assert metadata["parameter_count"] == CLASSIFIER_PARAMETERS[config["num_classes"]], name
    assert {f"glue_{task}" for task in GLUE_CLASSES} <= set(zoo.list_models("text_classification"))
    assert set(MASKED_LM_PRESETS) == set(zoo.list_models("masked_language_modeling"))


def test_small_presets_build_with_dict_inputs():
    for name, outputs in (("pydoc_mlm", (None, 32, 262)), ("source_type", (None, 3))):
        model = zoo.create_model(name)
        assert sorted(model.input) == ["padding_mask", "token_ids"]
        assert model.output_shape == outputs


def test_subsampled_decoding_equals_the_full_logits_at_those_positions():
    full = zoo.create_model("pydoc_mlm", num_self_attention_layers_per_block=1)
    subsampled = zoo.create_model("pydoc_mlm", num_self_attention_layers_per_block=1, use_output_indices=True)
    subsampled.set_weights(full.get_weights())
    rng = np.random.default_rng(0)
    ids = rng.integers(6, 262, size=(2, 32)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, 25:] = 0
    indices = np.array([[0, 5, 31], [3, 3, 16]], "int32")
    logits = keras.ops.convert_to_numpy(full({"token_ids": ids, "padding_mask": mask}))
    picked = keras.ops.convert_to_numpy(
        subsampled({"token_ids": ids, "padding_mask": mask, "output_indices": indices}))
    assert picked.shape == (2, 3, 262)
    np.testing.assert_allclose(picked, np.take_along_axis(logits, indices[..., None], axis=1), atol=1e-5, rtol=0)


def test_bad_inputs_raise_clear_errors():
    model = zoo.create_model("source_type", num_self_attention_layers_per_block=1)
    ids = np.zeros((1, 128), "int32")
    with pytest.raises(ValueError, match=r"expected `padding_mask` of shape \('batch', 128\). Received: padding_mask.shape=\(1, 100\)"):
        model({"token_ids": ids, "padding_mask": np.ones((1, 100), "int32")})
    with pytest.raises(ValueError, match=r"token ids in \[0, 262\) in `token_ids`. Received: values from 300 to 300"):
        model({"token_ids": np.full((1, 128), 300, "int32"), "padding_mask": np.ones((1, 128), "int32")})
