"""keras-hub presets of zoo models: `save_to_preset` then keras-hub's own `from_preset`, for every task."""

import json
import warnings

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import perceiver_keras  # noqa: E402
from perceiver_keras import hub  # noqa: E402
from perceiver_keras.byte_tokenizer import ByteTokenizer  # noqa: E402
from tests.hub_fixtures import TOY, numpy_outputs, task_inputs, toy_inputs, toy_model  # noqa: E402

pytestmark = pytest.mark.tensorflow_only

FILES = {"config.json", "task.json", "metadata.json", "model.weights.h5", "task.weights.h5", "preprocessor.json"}
EXTRA_FILES = {"digits": {"image_converter.json"}, "source_type": {"tokenizer.json"}, "pydoc_mlm": {"tokenizer.json"},
               "flow_small": {"image_converter.json"}, "multimodal_small": {"image_converter.json"}}


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """preset name -> (zoo model, its preset folder)."""
    folder = tmp_path_factory.mktemp("presets")
    saved = {}
    for name in TOY:
        model = toy_model(name)
        model.save_to_preset(folder / name)
        saved[name] = (model, folder / name)
    return saved


def _base_class(name):
    base = TOY[name][1]
    return getattr(keras_hub.models, base, None) or getattr(hub, base)


@pytest.mark.parametrize("name", sorted(TOY))
def test_every_task_round_trips_through_keras_hub(presets, name):
    model, folder = presets[name]
    files = {path.name for path in folder.iterdir() if path.is_file()}
    assert files == FILES | EXTRA_FILES[name]
    loaded = _base_class(name).from_preset(str(folder))
    assert type(loaded) is type(hub.to_task(model))  # keras-hub's base class resolved to ours
    inputs = toy_inputs(name)
    expected, received = numpy_outputs(model(inputs)), numpy_outputs(loaded(task_inputs(name, inputs)))
    assert np.abs(expected[0][0] - expected[0][1]).max() > 1e-3  # the outputs depend on the inputs
    for ours, theirs in zip(received, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    backbone = keras_hub.models.Backbone.from_preset(str(folder))
    assert isinstance(backbone, hub.PerceiverBackbone)
    assert len(loaded.weights) == len(model.weights)
    loaded.save(folder.parent / f"{name}.keras")  # a task is a Keras model: .keras files round-trip too
    reloaded = keras.saving.load_model(folder.parent / f"{name}.keras", compile=False)
    for ours, theirs in zip(numpy_outputs(reloaded(task_inputs(name, inputs))), expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    metadata = json.loads((folder / "metadata.json").read_text())["perceiver_keras"]
    assert metadata["preset"] == name and metadata["task_class"] == type(loaded).__name__


def test_backbone_gives_the_zoo_models_latents(presets):
    model, folder = presets["digits"]
    backbone = keras_hub.models.Backbone.from_preset(str(folder))
    images = toy_inputs("digits")
    latents = model.encoder(model.preprocessor(images))
    np.testing.assert_array_equal(*numpy_outputs([backbone(images), latents]))


def test_a_new_num_classes_keeps_the_backbone_and_builds_a_new_head(presets):
    model, folder = presets["digits"]
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder), num_classes=3)
    assert tuple(classifier(toy_inputs("digits")).shape) == (2, 3)
    for ours, theirs in zip(classifier.backbone.weights, hub.to_task(model).backbone.weights, strict=True):
        np.testing.assert_array_equal(*numpy_outputs([ours, theirs]))
    text = keras_hub.models.TextClassifier.from_preset(str(presets["pydoc_mlm"][1]), num_classes=4)
    assert isinstance(text, hub.PerceiverTextClassifier)  # a classifier on the masked LM's encoder


def test_from_preset_takes_a_dtype_policy(presets):
    model, folder = presets["source_type"]
    classifier = keras_hub.models.TextClassifier.from_preset(str(folder), dtype="mixed_bfloat16")
    assert {layer.dtype_policy.name for layer in (classifier.backbone.encoder, classifier.decoder)} == {"mixed_bfloat16"}
    inputs = toy_inputs("source_type")
    np.testing.assert_allclose(*numpy_outputs([classifier(inputs), model(inputs)]), atol=0.05, rtol=0.05)


def test_predict_takes_raw_pixels_and_strings(presets):
    """The preset's preprocessor holds the zoo's normalisation and tokenizer."""
    model, folder = presets["digits"]
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder))
    pixels = np.random.default_rng(1).integers(0, 17, size=(4, 8, 8, 1)).astype("float32")
    normalised = (pixels / 16 - 0.3054) / 0.3761  # zoo.image_classification.data.NORMALIZATION["digits"]
    np.testing.assert_allclose(classifier.predict(pixels, verbose=0), numpy_outputs(model(normalised))[0], atol=1e-5)
    model, folder = presets["source_type"]
    classifier = keras_hub.models.TextClassifier.from_preset(str(folder))
    texts = ["import os", "#include <stdio.h>"]
    ids = {key: value.numpy() for key, value in ByteTokenizer(sequence_length=16)(texts).items()}
    np.testing.assert_array_equal(classifier.predict(texts, verbose=0), numpy_outputs(model(ids))[0])


def test_masked_lm_fits_on_strings(presets):
    masked_lm = keras_hub.models.MaskedLM.from_preset(str(presets["pydoc_mlm"][1]))
    masked_lm.compile(run_eagerly=True)  # keras-hub's default loss and metric; tracing a step costs more than it
    x, labels, weights = masked_lm.preprocessor(["hello world", "def f(x): return x"])
    assert tuple(x["mask_positions"].shape) == tuple(labels.shape) == tuple(weights.shape) == (2, 3)
    history = masked_lm.fit(["hello world", "def f(x): return x"], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_task_fits_on_the_zoo_pipeline(presets):
    """With `preprocessor=None` a task takes the zoo's tf.data pipeline (already normalised) as it is."""
    from zoo.image_classification.data import make_dataset

    classifier = keras_hub.models.ImageClassifier.from_preset(str(presets["digits"][1]))
    classifier.preprocessor = None
    classifier.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                       metrics=[keras.metrics.CategoricalAccuracy()], run_eagerly=True)
    data = make_dataset("digits", "train", batch_size=16, training=True, seed=0, one_hot=True, take=32)
    assert np.isfinite(classifier.fit(data, epochs=1, verbose=0).history["loss"][0])


def test_a_trained_task_preset_holds_no_optimizer_state(presets, tmp_path):
    """task.weights.h5 holds the head, not AdamW's moments, and reloads without the optimizer-mismatch warning."""
    import h5py

    classifier = keras_hub.models.ImageClassifier.from_preset(str(presets["digits"][1]), num_classes=3)
    classifier.compile(optimizer="adamw", run_eagerly=True)
    pixels = np.random.default_rng(2).integers(0, 17, size=(4, 8, 8, 1)).astype("float32")
    classifier.fit(pixels, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    classifier.save_to_preset(tmp_path / "tuned")
    with h5py.File(tmp_path / "tuned" / "task.weights.h5", "r") as file:
        assert "optimizer" not in file and "layers" in file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "tuned"))
    assert not [w for w in caught if "optimizer" in str(w.message)]
    np.testing.assert_array_equal(*numpy_outputs([reloaded(pixels), classifier(pixels)]))


def test_metadata_names_the_models_own_classes(tmp_path):
    """A model built with another `num_classes` than its preset's says so in metadata.json."""
    toy_model("digits", num_classes=3).save_to_preset(tmp_path / "three")
    metadata = json.loads((tmp_path / "three" / "metadata.json").read_text())["perceiver_keras"]
    assert metadata["num_classes"] == 3 and metadata["overrides"]["num_classes"] == 3 and metadata["preset"] == "digits"


def test_flow_preset_decodes_subsampled_pixels_as_the_zoo_training_model(presets):
    model, folder = presets["flow_small"]
    subsampled = toy_model("flow_small", use_output_indices=True)  # the zoo's training model, same weights
    flow = hub.PerceiverOpticalFlow.from_preset(str(folder), use_output_indices=True)
    batch = {"frames": toy_inputs("flow_small"), "output_indices": np.array([[0, 5, 47]] * 2, "int32")}
    np.testing.assert_array_equal(*numpy_outputs([flow(batch), subsampled(batch)]))


def test_task_exports_to_builtin_only_tflite(presets, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from export.savedmodel import write_saved_model
    from export.signature import signature_of
    from export.tflite import convert

    classifier = keras_hub.models.ImageClassifier.from_preset(str(presets["digits"][1]))
    classifier.preprocessor = None
    write_saved_model(classifier, signature_of(classifier), tmp_path / "saved", "serving_default")
    runner = Interpreter(model_content=convert(tmp_path / "saved", "serving_default", "float32")).get_signature_runner(
        "serving_default")
    images = toy_inputs("digits")[:1]
    (logits,) = runner(**{runner.get_input_details().popitem()[0]: images}).values()
    np.testing.assert_allclose(logits, numpy_outputs(classifier(images))[0], atol=1e-4)


def test_tokenizer_is_the_byte_tokenizer():
    tokenizer = hub.PerceiverTokenizer()
    ids = ByteTokenizer(add_special_tokens=False).tokenize(["héllo [MASK]"])
    assert tokenizer.tokenize(["héllo [MASK]"]).to_list() == ids.to_list()
    assert tokenizer.vocabulary_size() == perceiver_keras.VOCAB_SIZE == len(tokenizer.get_vocabulary())
    assert (tokenizer.start_token_id, tokenizer.end_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id) == (
        4, 5, 0, 3)
    assert tokenizer.token_to_id("a") == ord("a") + 6 and tokenizer.id_to_token(3) == "[MASK]"
    assert tokenizer.detokenize([[4, 110, 111, 5]], skip_special_tokens=True).numpy().tolist() == [b"hi"]
