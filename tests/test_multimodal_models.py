"""Multimodal autoencoding presets (parameter count pinned to transformers'), chunked decoding, bad inputs."""

import re

import keras
import numpy as np
import pytest

import zoo
from zoo.multimodal import build_multimodal_autoencoder, reconstruct

pytestmark = pytest.mark.tensorflow_only

# transformers' PerceiverForMultimodalAutoencoding at deepmind/multimodal-perceiver's configuration.
MULTIMODAL_PARAMETERS = 19_858_855
MULTIMODAL_SMALL_PARAMETERS = 357_255
_TOY = dict(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, image_num_bands=2,
            audio_num_bands=3, label_query_channels=6, num_latents=4, num_latent_channels=16,
            num_self_attention_layers_per_block=1, num_self_attention_heads=2, decoder_output_channels=8)


def _inputs(seed=0, batch=2):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(-1, 1, size=(batch, 2, 8, 8, 3)).astype("float32"),
            "audio": rng.uniform(-1, 1, size=(batch, 64, 1)).astype("float32"),
            "label": np.eye(5, dtype="float32")[rng.integers(0, 5, size=batch)]}


def _toy(**kwargs):
    model = build_multimodal_autoencoder(**_TOY, **kwargs)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    return model


def _shapes(tensors):
    return {key: tuple(value.shape) for key, value in tensors.items()}


def _numpy(outputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


def test_reference_parameter_count_comes_from_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.PerceiverConfig(
        num_latents=784, d_latents=512, num_blocks=1, num_self_attends_per_block=8, num_self_attention_heads=8,
        num_cross_attention_heads=1, num_frames=16, audio_samples_per_frame=1920, samples_per_patch=16,
        image_size=224, output_shape=[1, 16, 224, 224], output_num_channels=512, num_labels=700,
    )
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = transformers.PerceiverForMultimodalAutoencoding(config)
    assert sum(p.numel() for p in model.parameters()) == MULTIMODAL_PARAMETERS


def test_paper_preset_has_the_reference_parameter_count():
    model = zoo.create_model("multimodal_autoencoding")  # built symbolically: no activations of 802,816 pixels
    metadata = zoo.get_preset("multimodal_autoencoding").metadata
    assert model.count_params() == MULTIMODAL_PARAMETERS == metadata["parameter_count"]
    assert model.preprocessor.output_channels == 704 and model.query.output_channels == 1026
    assert model.preprocessor.num_positions == {"audio": 1920, "image": 16 * 56 * 56, "label": 1}
    shapes = {"audio": (None, 30720, 1), "image": (None, 16, 224, 224, 3), "label": (None, 700)}
    assert _shapes(model.input) == _shapes(model.output) == shapes


def test_small_preset_builds_and_decodes_subsets():
    assert zoo.list_models("multimodal_autoencoding") == ["multimodal_autoencoding", "multimodal_small"]
    model = zoo.create_model("multimodal_small", use_output_indices=True)
    assert model.count_params() == MULTIMODAL_SMALL_PARAMETERS == zoo.get_preset("multimodal_small").metadata[
        "parameter_count"]
    assert sorted(model.input) == ["audio", "audio_indices", "image", "image_indices", "label"]
    assert _shapes(model.output) == {"audio": (None, None, 32), "image": (None, None, 3), "label": (None, 10)}


def test_subsampled_model_trains():
    model = build_multimodal_autoencoder(**_TOY, use_output_indices=True, label_mask_probability=0.5, seed=0)
    rng = np.random.default_rng(0)
    inputs = {**_inputs(batch=4), "image_indices": rng.integers(0, 128, size=(4, 10)).astype("int32"),
              "audio_indices": rng.integers(0, 4, size=(4, 2)).astype("int32")}
    targets = {"image": rng.normal(size=(4, 10, 3)), "audio": rng.normal(size=(4, 2, 16)), "label": inputs["label"]}
    model.compile(optimizer="adam", loss={"image": "mse", "audio": "mse", "label": "categorical_crossentropy"},
                  run_eagerly=True)  # tracing a train step takes longer
    history = model.fit(inputs, targets, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("chunk_size", [7, 50, 1000])
def test_chunked_reconstruction_equals_full_decoding(chunk_size):
    model = _toy()
    full = _numpy(model(_inputs()))
    subsampled = build_multimodal_autoencoder(**_TOY, use_output_indices=True)
    subsampled.set_weights(model.get_weights())
    for source in (model, subsampled):  # either kind of model decodes through its own layers
        outputs = reconstruct(source, _inputs(), chunk_size=chunk_size)
        assert sorted(outputs) == ["audio", "image", "label"]
        for key, value in outputs.items():
            assert value.shape == full[key].shape
            np.testing.assert_allclose(value, full[key], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="chunk_size=0"):
        reconstruct(model, _inputs(), chunk_size=0)


def test_subsampled_indices_address_pixels_and_audio_patches_row_major():
    model, subsampled = _toy(), _toy(use_output_indices=True)
    full = _numpy(model(_inputs()))
    t, y, x, patch = 1, 6, 3, 2
    picked = _numpy(subsampled({**_inputs(), "image_indices": np.full((2, 1), (t * 8 + y) * 8 + x, "int32"),
                                "audio_indices": np.full((2, 1), patch, "int32")}))
    np.testing.assert_allclose(picked["image"][:, 0], full["image"][:, t, y, x], atol=1e-5)
    np.testing.assert_allclose(picked["audio"][:, 0], full["audio"][:, 16 * patch:16 * (patch + 1), 0], atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (lambda x: {k: v for k, v in x.items() if k != "image"}, "missing the modality 'image': expected `image` of shape "
                                                             "(batch, 2, 8, 8, 3)"),
    (lambda x: {**x, "image": np.zeros((2, 3, 8, 8, 3), "float32")}, "Received: image.shape=(2, 3, 8, 8, 3)"),
    (lambda x: {**x, "image": np.zeros((2, 2, 8, 6, 3), "float32")}, "Received: image.shape=(2, 2, 8, 6, 3)"),
    (lambda x: {**x, "audio": np.zeros((2, 70, 1), "float32")},
     "`audio` of shape (batch, 64, 1) (samples: 4 patches of 16, 1 channel). Received: audio.shape=(2, 70, 1)"),
    (lambda x: {**x, "label": np.zeros((2, 700), "float32")}, "`label` of shape (batch, 5) (classes)"),
])
def test_bad_inputs_raise_naming_the_modality_and_expected_shape(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _toy()(change(_inputs()))


def test_bad_frame_size_raises():
    with pytest.raises(ValueError, match=r"Received: frame_size=\(64,\)"):
        build_multimodal_autoencoder(frame_size=(64,))


def test_toy_model_converts_to_builtin_only_tflite(tmp_path):
    """Patches are reshapes and 4-D transposes, queries sin/cos of index arithmetic: no Flex op."""
    from ai_edge_litert.interpreter import Interpreter

    from export.savedmodel import write_saved_model
    from export.signature import signature_of
    from export.tflite import convert

    model = _toy(use_output_indices=True, label_mask_probability=0.5)
    write_saved_model(model, signature_of(model), tmp_path / "saved", "serving_default")
    runner = Interpreter(model_content=convert(tmp_path / "saved", "serving_default", "float32")).get_signature_runner(
        "serving_default")
    feed = {**_inputs(batch=1), "image_indices": np.array([[0, 5, 127]], "int32"),
            "audio_indices": np.array([[3, 0]], "int32")}
    outputs, expected = runner(**feed), _numpy(model(feed))
    assert sorted(outputs) == sorted(expected)
    for key, value in outputs.items():
        np.testing.assert_allclose(value, expected[key], atol=1e-5, rtol=0)


def test_predict_and_the_eager_call_give_keras_own_outputs():
    """The graph-speed call and predict (perceiver_keras.graph_call) against Keras' own paths, dict outputs."""
    fast, plain = _toy(), _toy()
    plain.graph_call = False
    x = _inputs(batch=3)
    expected = plain.predict(x, batch_size=2, verbose=0)
    actual = fast.predict(x, batch_size=2, verbose=0)
    assert set(actual) == set(expected) and "_predict_cache" in fast.__dict__
    for key in expected:
        assert actual[key].shape == expected[key].shape
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=1e-5)
    called, reference = _numpy(fast(x)), _numpy(plain(x))
    for key in reference:
        np.testing.assert_allclose(called[key], reference[key], rtol=1e-4, atol=1e-5)
    assert "_graph_call_cache" in fast.__dict__ and "_graph_call_cache" not in plain.__dict__
