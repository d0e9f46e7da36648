"""Video, audio and multimodal adapters, and a toy multimodal autoencoder built from them (every backend)."""

import re

import keras
import numpy as np
import pytest

from perceiver_keras import (
    AudioPreprocessor,
    FourierQuery,
    MultimodalPerceiverIO,
    MultimodalPostprocessor,
    MultimodalPreprocessor,
    MultimodalQuery,
    OneHotPreprocessor,
    PerceiverDecoder,
    PerceiverEncoder,
    TrainablePositionEncoding,
    VideoPreprocessor,
)

from .helpers import TOLERANCE, fourier_reference, randomize_weights, run_layer_test, to_numpy

BATCH, T, H, W, S, K = 2, 2, 8, 4, 32, 3
PATCH = (1, 4, 2)


def video(seed=0, batch=BATCH):
    return np.random.default_rng(seed).uniform(-1, 1, size=(batch, T, H, W, 3)).astype("float32")


def audio(seed=0, batch=BATCH):
    return np.random.default_rng(seed).uniform(-1, 1, size=(batch, S, 1)).astype("float32")


def inputs(seed=0, batch=BATCH):
    return {"audio": audio(seed, batch), "image": video(seed, batch), "label": np.eye(K, dtype="float32")[
        np.arange(batch) % K]}


def space_to_depth(x, patch):
    """transformers' `space_to_depth` on channels-last video: patch values ordered (frame, row, column, channel)."""
    b, t, h, w, c = x.shape
    pt, ph, pw = patch
    x = x.reshape(b, t // pt, pt, h // ph, ph, w // pw, pw, c).transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, -1, pt * ph * pw * c)


@pytest.mark.parametrize("patch", [PATCH, (2, 2, 2)])
def test_video_patches_follow_space_to_depth_with_3d_fourier_positions(patch, tmp_path):
    kwargs = dict(num_frames=T, frame_size=(H, W), patch_size=patch, num_bands=2)
    grid = (T // patch[0], H // patch[1], W // patch[2])
    channels = int(np.prod(patch)) * 3
    layer = run_layer_test(VideoPreprocessor, kwargs, {"inputs": video()}, (BATCH, int(np.prod(grid)), channels + 15),
                           tmp_path, run_training_check=False)
    outputs = to_numpy(layer(video()))
    np.testing.assert_array_equal(outputs[..., :channels], space_to_depth(video(), patch))
    positions = fourier_reference(grid, 2, max_resolution=(T, H, W))  # Nyquist: the video, not the patch grid
    np.testing.assert_allclose(outputs[0, :, channels:], positions, rtol=1e-5, atol=1e-5)


def test_audio_patches_with_1d_fourier_positions(tmp_path):
    kwargs = dict(num_samples=S, samples_per_patch=8, num_bands=3)
    layer = run_layer_test(AudioPreprocessor, kwargs, {"inputs": audio()}, (BATCH, 4, 8 + 7), tmp_path,
                           run_training_check=False)
    outputs = to_numpy(layer(audio()))
    np.testing.assert_array_equal(outputs[..., :8], audio().reshape(BATCH, 4, 8))
    np.testing.assert_allclose(outputs[1, :, 8:], fourier_reference((4,), 3, max_resolution=(S,)), rtol=1e-5, atol=1e-5)


def test_one_hot_label_is_one_input(tmp_path):
    labels = inputs()["label"]
    layer = run_layer_test(OneHotPreprocessor, dict(num_classes=K), {"inputs": labels}, (BATCH, 1, K), tmp_path,
                           run_training_check=False)
    np.testing.assert_array_equal(to_numpy(layer(labels)), labels[:, None])


def test_fourier_query_places_point_i_at_minus_one_plus_two_i_over_n(tmp_path):
    indices = np.array([[0, 5, 31], [7, 7, 16]])
    kwargs = dict(index_dims=(2, 4, 4), num_bands=2, max_resolution=(2, 8, 8))
    layer = run_layer_test(FourierQuery, kwargs, {"inputs": np.zeros((BATCH, 1)), "indices": indices}, (BATCH, 3, 15),
                           tmp_path, run_training_check=False)
    expected = [fourier_reference((2, 4, 4), 2, (2, 8, 8), indices=row) for row in indices]
    np.testing.assert_allclose(to_numpy(layer(np.zeros((BATCH, 1)), indices)), expected, rtol=1e-5, atol=1e-5)
    full = to_numpy(layer(np.zeros((BATCH, 1))))  # all points, in the same convention
    np.testing.assert_allclose(full[1], fourier_reference((2, 4, 4), 2, (2, 8, 8), indices=range(32)), atol=1e-5)


def preprocessor(**kwargs):
    return MultimodalPreprocessor({
        "image": VideoPreprocessor(T, (H, W), patch_size=PATCH, num_bands=2, name="image"),
        "audio": AudioPreprocessor(S, samples_per_patch=8, num_bands=3, name="audio"),
        "label": OneHotPreprocessor(K, name="label"),
    }, min_padding_size=4, **kwargs)


def functional(layer, symbolic, **kwargs):
    return keras.Model(symbolic, layer(symbolic, **kwargs))


def test_preprocessor_pads_each_modality_and_concatenates_in_sorted_order(tmp_path):
    prep, x = preprocessor(), inputs()
    outputs = to_numpy(prep(x))
    assert outputs.shape == (BATCH, 4 + 8 + 1, 39 + 4) == prep.compute_output_shape({k: v.shape for k, v in x.items()})
    start = 0
    for key in ("audio", "image", "label"):  # sorted, as the reference's `restructure`
        part = to_numpy(prep.modalities[key](x[key]))
        block, start = outputs[:, start:start + part.shape[1]], start + part.shape[1]
        np.testing.assert_array_equal(block[..., :part.shape[-1]], part)
        padding = np.broadcast_to(to_numpy(prep.padding[key]), block[..., part.shape[-1]:].shape)
        np.testing.assert_array_equal(block[..., part.shape[-1]:], padding)
    clone = MultimodalPreprocessor.from_config(prep.get_config())
    clone(x)
    clone.set_weights(prep.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x)), outputs)
    model = functional(prep, {key: keras.Input(value.shape[1:], name=key) for key, value in x.items()})
    model.save(tmp_path / "prep.keras")
    np.testing.assert_allclose(to_numpy(keras.saving.load_model(tmp_path / "prep.keras")(x)), outputs, **TOLERANCE)


def test_mask_probability_one_always_masks_and_others_mask_in_training_only():
    x = inputs(batch=200)
    prep = preprocessor(mask_probabilities={"image": 0.0, "label": 1.0})
    for training in (False, True):
        outputs = to_numpy(prep(x, training=training))
        np.testing.assert_array_equal(outputs[:, -1], np.broadcast_to(to_numpy(prep.mask_tokens["label"]), (200, 43)))
        assert not np.any(np.all(outputs[:, :-1] == to_numpy(prep.mask_tokens["image"]), axis=-1))  # p = 0: never
    half = preprocessor(mask_probabilities={"label": 0.5}, seed=3)
    kept = to_numpy(half(x))
    token = to_numpy(half.mask_tokens["label"])[0]
    assert not np.any(np.all(kept[:, -1] == token, axis=-1))  # inference: never masked
    trained = to_numpy(half(x, training=True))
    masked = np.all(trained[:, -1] == token, axis=-1)
    assert 0.3 < masked.mean() < 0.7  # about half of the labels, per example
    np.testing.assert_array_equal(trained[~masked], kept[~masked])
    np.testing.assert_array_equal(trained[:, :-1], kept[:, :-1])


def query():
    return MultimodalQuery({
        "image": FourierQuery((T, H, W), 2, name="image"),
        "audio": FourierQuery(4, 3, max_resolution=S, name="audio"),
        "label": TrainablePositionEncoding(1, 20, name="label"),
    })


def test_query_pads_modalities_and_decodes_any_subset(tmp_path):
    layer, reference = query(), np.zeros((BATCH, 1), "float32")
    full = to_numpy(layer(reference))
    assert full.shape == (BATCH, 4 + 64 + 1, 22) and layer.num_positions == {"audio": 4, "image": 64, "label": 1}
    indices = np.array([[0, 63, 9], [5, 5, 1]], "int32")
    picked = to_numpy(layer(reference, indices={"image": indices}))
    assert picked.shape == (BATCH, 4 + 3 + 1, 22)
    np.testing.assert_allclose(picked[:, :4], full[:, :4], **TOLERANCE)
    np.testing.assert_allclose(picked[:, 4:7], np.take_along_axis(full[:, 4:68], indices[..., None], 1), atol=1e-6)
    np.testing.assert_allclose(picked[:, 7], full[:, 68], **TOLERANCE)
    symbolic = {"reference": keras.Input((1,), name="reference"),
                "image": keras.Input((None,), dtype="int32", name="image")}
    model = keras.Model(symbolic, layer(symbolic["reference"], indices={"image": symbolic["image"]}))
    assert model.output_shape == (None, None, 22)
    model.save(tmp_path / "query.keras")
    loaded = keras.saving.load_model(tmp_path / "query.keras")
    feed = {"reference": reference, "image": indices}
    np.testing.assert_allclose(to_numpy(loaded(feed)), to_numpy(model(feed)), **TOLERANCE)


def postprocessor():
    return MultimodalPostprocessor({"audio": 8, "image": 3, "label": K},
                                   {"audio": (S, 1), "image": (T, H, W, 3), "label": (K,)})


def test_postprocessor_splits_by_modality_and_lays_out_each():
    layer = postprocessor()
    decoded = np.random.default_rng(0).normal(size=(BATCH, 4 + 64 + 1, 6)).astype("float32")
    full = {key: to_numpy(value) for key, value in layer(decoded).items()}
    assert {k: v.shape for k, v in full.items()} == {"audio": (BATCH, S, 1), "image": (BATCH, T, H, W, 3),
                                                     "label": (BATCH, K)}
    picked = layer(decoded[:, [0, 1, 4, 5, 6, 68]], indices={"audio": np.zeros((BATCH, 2), "int32"),
                                                             "image": np.zeros((BATCH, 3), "int32")})
    np.testing.assert_allclose(to_numpy(picked["audio"]), full["audio"].reshape(BATCH, 4, 8)[:, :2], atol=1e-6)
    np.testing.assert_allclose(to_numpy(picked["image"]), full["image"].reshape(BATCH, -1, 3)[:, :3], atol=1e-6)
    np.testing.assert_allclose(to_numpy(picked["label"]), full["label"], atol=1e-6)
    clone = MultimodalPostprocessor.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def toy_model(subsampled=(), **kwargs):
    return MultimodalPerceiverIO(
        preprocessor=preprocessor(**kwargs),
        encoder=PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
        query=query(), decoder=PerceiverDecoder(output_channels=8), postprocessor=postprocessor(),
        subsampled_modalities=subsampled,
    )


def numpy_dict(outputs):
    return {key: to_numpy(value) for key, value in outputs.items()}


def test_toy_model_decodes_any_subset_saves_and_trains(tmp_path):
    model = randomize_weights(toy_model(mask_probabilities={"label": 1.0}), scale=0.3)
    full = numpy_dict(model(inputs()))
    assert not np.allclose(full["image"][0], full["image"][1], atol=1e-3)  # outputs depend on the inputs
    subsampled = toy_model(("audio", "image"), mask_probabilities={"label": 1.0})
    subsampled.set_weights(model.get_weights())
    feed = {**inputs(), "image_indices": np.array([[0, 17, 63], [5, 5, 40]], "int32"),
            "audio_indices": np.array([[3], [0]], "int32")}
    picked = numpy_dict(subsampled(feed))
    np.testing.assert_allclose(picked["image"], np.take_along_axis(full["image"].reshape(BATCH, -1, 3),
                                                                   feed["image_indices"][..., None], 1), atol=1e-5)
    np.testing.assert_allclose(picked["audio"], np.take_along_axis(full["audio"].reshape(BATCH, 4, 8),
                                                                   feed["audio_indices"][..., None], 1), atol=1e-5)
    np.testing.assert_allclose(picked["label"], full["label"], atol=1e-5)
    subsampled.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.subsampled_modalities == ["audio", "image"] and loaded.count_params() == model.count_params()
    for key, value in numpy_dict(loaded(feed)).items():
        np.testing.assert_allclose(value, picked[key], **TOLERANCE)
    trainable = toy_model(("audio", "image"))  # no mask tokens: every weight gets a gradient
    before = [to_numpy(w).copy() for w in trainable.trainable_weights]
    trainable.compile(optimizer=keras.optimizers.Adam(1e-2, epsilon=1e-12), loss="mse",
                      run_eagerly=keras.backend.backend() == "tensorflow")
    targets = {key: np.zeros_like(value) for key, value in picked.items()}
    history = trainable.fit(feed, targets, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    moved = [not np.array_equal(to_numpy(w), b) for w, b in zip(trainable.trainable_weights, before)]
    assert all(m for m, w in zip(moved, trainable.trainable_weights) if not w.path.endswith("key/bias"))


@pytest.mark.parametrize("change, message", [
    (lambda x: {k: v for k, v in x.items() if k != "audio"},
     "missing the modality 'audio': expected `audio` of shape (batch, 32, 1)"),
    (lambda x: {**x, "image": x["image"][:, :1]},
     "`image` of shape (batch, 2, 8, 4, 3) (frames, height, width, channels). Received: image.shape=(2, 1, 8, 4, 3)"),
    (lambda x: {**x, "image": x["image"][:, :, :6]}, "Received: image.shape=(2, 2, 6, 4, 3)"),
    (lambda x: {**x, "audio": x["audio"][:, :30]},
     "`audio` of shape (batch, 32, 1) (samples: 4 patches of 8, 1 channel). Received: audio.shape=(2, 30, 1)"),
    (lambda x: {**x, "label": x["label"][:, :2]},
     "`label` of shape (batch, 3) (classes). Received: label.shape=(2, 2)"),
    (lambda x: {**x, "labels": x["label"]}, "has no input ['labels']"),
    (lambda x: x["image"], "takes a dict with the keys"),
])
def test_bad_inputs_raise_naming_the_modality_and_its_shape(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        toy_model()(change(inputs()))


def test_missing_indices_raise():
    with pytest.raises(ValueError, match=re.escape("`image_indices` of shape (batch, points)")):
        toy_model(("image",))(inputs())


@pytest.mark.parametrize("make, message", [
    (lambda: VideoPreprocessor(2, (8, 6), patch_size=(1, 4, 4)), r"patch_size=\(1, 4, 4\)"),
    (lambda: VideoPreprocessor(2, (8,)), r"frame_size=\(8,\)"),
    (lambda: AudioPreprocessor(30, samples_per_patch=16), "num_samples=30, samples_per_patch=16"),
    (lambda: OneHotPreprocessor(0), "num_classes=0"),
    (lambda: FourierQuery((2, 4), 2, max_resolution=(8,)), r"max_resolution=\(8,\)"),
    (lambda: preprocessor(mask_probabilities={"label": 1.5}), "'label': 1.5"),
    (lambda: preprocessor(mask_probabilities={"text": 0.5}), "'text': 0.5"),
    (lambda: MultimodalPreprocessor({}), "modalities={}"),
    (lambda: MultimodalPostprocessor({"audio": 5}, {"audio": (32, 1)}), r"output_shapes=\{'audio': \(32, 1\)\}"),
    (lambda: toy_model(("label", "text")), r"subsampled_modalities=\['label', 'text'\]"),
])
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()
