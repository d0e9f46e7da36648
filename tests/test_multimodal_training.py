"""Multimodal autoencoding through the zoo: weighted loss, PSNRs, subsampled decoding, masked-label test metrics."""

import csv
import json
import math

import keras
import numpy as np
import pytest

from zoo import registry, training
from zoo.multimodal import reconstruct
from zoo.multimodal.baselines import psnr
from zoo.multimodal.metrics import PAPER_LOSS_WEIGHTS, PeakSignalToNoiseRatio, loss_weights, losses, metrics
from zoo.multimodal.task import RECIPE, clip_datasets

pytestmark = pytest.mark.tensorflow_only

TOY = dict(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, samples_per_patch=16,
           image_num_bands=2, audio_num_bands=3, input_padding=4, label_query_channels=6, num_latents=4,
           num_latent_channels=16, num_self_attention_layers_per_block=1, num_cross_attention_heads=1,
           num_self_attention_heads=2, decoder_num_heads=1, decoder_output_channels=8)
OPTIONS = dict(epochs=2, steps_per_epoch=2, batch_size=4, decoded_pixels=16, decoded_audio_patches=2, take=16,
               eval_take=8, learning_rate=1e-3, label_loss_weight=0.5, tensorboard=False, verbose=0)
METRICS = {"loss", "image_loss", "audio_loss", "label_loss", "image_psnr", "audio_psnr", "label_accuracy"}


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated kill")


@pytest.fixture(scope="module")
def multimodal_run(tmp_path_factory):
    """A toy autoencoder on synthetic clips, killed after its first epoch and then resumed."""
    out = tmp_path_factory.mktemp("multimodal") / "run"
    with pytest.MonkeyPatch.context() as patch:
        original_fit = keras.Model.fit
        patch.setattr(keras.Model, "fit", lambda self, *args, callbacks=(), **kwargs: original_fit(
            self, *args, callbacks=[*callbacks, _Interrupt()], **kwargs))
        with pytest.raises(KeyboardInterrupt):
            training.train("multimodal_autoencoding", "multimodal_small", out, model_overrides=TOY, **OPTIONS)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    return out, training.train("multimodal_autoencoding", "multimodal_small", out, model_overrides=TOY, **OPTIONS)


def test_resumed_run_reports_masked_label_metrics_beside_the_baselines(multimodal_run):
    out, run = multimodal_run
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1]  # epoch 0 was not repeated
    assert {f"val_{name}" for name in METRICS} <= set(rows[0])  # validated every epoch, label masked
    assert run["status"] == "finished" and run["model_overrides"]["use_output_indices"] is True
    assert set(run["test_metrics"]) == METRICS and all(math.isfinite(v) for v in run["test_metrics"].values())
    assert set(run["baselines"]) == {"image_psnr", "audio_psnr", "majority_accuracy", "chance_accuracy",
                                     "time_average_image_psnr"}
    assert run["baselines"]["chance_accuracy"] == 0.2 and run["baselines"]["time_average_image_psnr"] > 15
    assert run["data"] == {"builder": "zoo.multimodal.export:export_arrays", "kwargs": {
        "dataset": "synthetic_audiovisual", "num_frames": 2, "frame_size": [8, 8], "num_audio_samples": 64,
        "num_classes": 5, "data_dir": None, "tone_period": 32}}

    # The test metrics are the full clips decoded by the trained weights with the label masked.
    model, _ = training.load_run(out)
    preset = training.with_overrides(registry.get_preset("multimodal_small"), run["model_overrides"])
    masked = RECIPE.evaluation_model(model, preset, run["options"])
    assert masked.preprocessor.mask_probabilities["label"] == 1.0
    assert model.preprocessor.mask_probabilities["label"] == 0.5
    _, test = clip_datasets(preset, 4, 0, run["options"])
    clips = [x for x, _ in test.as_numpy_iterator()]
    x = {key: np.concatenate([c[key] for c in clips]) for key in ("image", "audio", "label")}
    out_full = reconstruct(masked, x, chunk_size=32)
    assert x["image"].shape == (8, 2, 8, 8, 3)
    assert run["test_metrics"]["image_psnr"] == pytest.approx(psnr(x["image"], out_full["image"], 1.0), abs=1e-3)
    assert run["test_metrics"]["audio_psnr"] == pytest.approx(psnr(x["audio"], out_full["audio"], 2.0), abs=1e-3)
    accuracy = np.mean(np.argmax(out_full["label"], -1) == np.argmax(x["label"], -1))
    assert run["test_metrics"]["label_accuracy"] == pytest.approx(accuracy)
    assert training.evaluate(out)["image_psnr"] == pytest.approx(run["test_metrics"]["image_psnr"], abs=1e-3)


def test_training_batches_decode_random_points_without_replacement_with_their_targets():
    preset = training.with_overrides(registry.get_preset("multimodal_small"), {**TOY, "use_output_indices": True})
    train, test = RECIPE.datasets(preset, 3, 0, dict(decoded_pixels=20, decoded_audio_patches=3, steps_per_epoch=2))
    (inputs, targets), (later, _) = list(train.take(2).as_numpy_iterator())
    pixels, patches = inputs["image_indices"], inputs["audio_indices"]
    assert pixels.shape == (3, 20) and pixels.dtype == np.int32 and patches.shape == (3, 3)
    assert all(len(set(row)) == 20 for row in pixels) and pixels.min() >= 0 and pixels.max() < 128
    assert all(len(set(row)) == 3 for row in patches) and patches.max() < 4
    assert not np.array_equal(pixels, later["image_indices"])  # new points every step
    # Pixel i is (t, y, x) with i = (t H + y) W + x; audio patch p is samples [16 p, 16 p + 16).
    t, y, x = pixels // 64, pixels // 8 % 8, pixels % 8
    np.testing.assert_array_equal(targets["image"], inputs["image"][np.arange(3)[:, None], t, y, x])
    audio_patches = inputs["audio"][..., 0].reshape(3, 4, 16)
    np.testing.assert_array_equal(targets["audio"], audio_patches[np.arange(3)[:, None], patches])
    np.testing.assert_array_equal(targets["label"], inputs["label"])
    evaluation, truth = next(test.as_numpy_iterator())  # every point, in order
    np.testing.assert_array_equal(evaluation["image_indices"][0], np.arange(128))
    np.testing.assert_array_equal(truth["image"], evaluation["image"].reshape(-1, 128, 3))
    np.testing.assert_array_equal(truth["audio"], evaluation["audio"].reshape(-1, 4, 16))


def test_synthetic_clips_take_the_tone_period_option():
    preset = training.with_overrides(registry.get_preset("multimodal_small"), TOY)
    _, test = clip_datasets(preset, 5, 0, {"eval_take": 5, "tone_period": 32})
    x, _ = next(test.as_numpy_iterator())  # clip i has class i, tone i + 1 cycles every 32 samples
    peaks = np.abs(np.fft.rfft(x["audio"][..., 0], axis=1)).argmax(axis=1)  # bin k: k cycles in 64 samples
    np.testing.assert_array_equal(peaks, 2 * (np.arange(5) + 1))


def test_loss_and_metrics_are_the_numpy_definitions():
    rng = np.random.default_rng(0)
    true = {"image": rng.uniform(0, 1, (2, 5, 3)), "audio": rng.uniform(-1, 1, (2, 4, 16)),
            "label": np.eye(5)[[1, 3]]}
    pred = {"image": true["image"] + rng.normal(0, 0.1, (2, 5, 3)), "audio": rng.normal(0, 0.3, (2, 4, 16)),
            "label": rng.normal(0, 2, (2, 5))}
    weights = loss_weights(label=0.5)
    assert weights == {"audio": 1.0, "image": 0.03, "label": 0.5} and PAPER_LOSS_WEIGHTS["label"] == 1e-4
    logits = pred["label"] - pred["label"].max(-1, keepdims=True)
    cross_entropy = -np.mean(np.sum(true["label"] * (logits - np.log(np.exp(logits).sum(-1, keepdims=True))), -1))
    expected = (0.03 * np.mean(np.abs(pred["image"] - true["image"]))
                + np.mean(np.abs(pred["audio"] - true["audio"])) + 0.5 * cross_entropy)
    inputs = {key: keras.Input(value.shape[1:], name=key) for key, value in pred.items()}
    model = keras.Model(inputs, {key: keras.layers.Identity(name=f"{key}_out")(x) for key, x in inputs.items()})
    model.compile(loss=losses(), loss_weights=weights, metrics=metrics())
    results = model.evaluate(pred, true, batch_size=1, return_dict=True, verbose=0)  # two batches, streamed
    assert results["loss"] == pytest.approx(expected, rel=1e-5)
    assert results["image_psnr"] == pytest.approx(psnr(true["image"], pred["image"], 1.0), rel=1e-5)
    assert results["audio_psnr"] == pytest.approx(psnr(true["audio"], pred["audio"], 2.0), rel=1e-5)
    assert results["label_accuracy"] == np.mean(np.argmax(pred["label"], -1) == [1, 3])
    metric = PeakSignalToNoiseRatio(2.0)
    assert math.isinf(float(metric(np.ones(3), np.ones(3))))  # an exact reconstruction, as baselines.psnr
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, PeakSignalToNoiseRatio) and restored.max_value == 2.0
    with pytest.raises(ValueError, match="Received: label_loss_weight=-1"):
        loss_weights(label=-1)


def test_bad_decoded_counts_and_datasets_raise(tmp_path):
    with pytest.raises(ValueError, match=r"--decoded-audio-patches must be from 1 to 4 .* Received: "
                                         r"--decoded-audio-patches 5"):
        training.train("multimodal_autoencoding", "multimodal_small", tmp_path / "a", model_overrides=TOY,
                       **{**OPTIONS, "decoded_audio_patches": 5})
    preset = training.with_overrides(registry.get_preset("multimodal_small"), TOY)
    with pytest.raises(ValueError, match="Expected one of: synthetic_audiovisual, ucf101, clip_folder"):
        RECIPE.datasets(preset, 2, 0, {"multimodal_dataset": "kinetics"})
    with pytest.raises(ValueError, match=r"ucf101 has 101 classes: .*--set num_classes=101"):
        RECIPE.datasets(preset, 2, 0, {"multimodal_dataset": "ucf101"})
    with pytest.raises(ValueError, match="needs its folder: pass --data-dir"):
        RECIPE.datasets(preset, 2, 0, {"multimodal_dataset": "clip_folder"})
