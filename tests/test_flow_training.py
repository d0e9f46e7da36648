"""Optical flow through the zoo: EPE loss and metric, subsampled decoding, a resumed run, the baseline."""

import csv
import json

import keras
import numpy as np
import pytest

from zoo import registry, training
from zoo.optical_flow import data
from zoo.optical_flow.metrics import EndPointError, EndPointErrorLoss
from zoo.optical_flow.task import RECIPE

pytestmark = pytest.mark.tensorflow_only

TOY = dict(frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16,
           num_self_attention_layers_per_block=1, num_self_attention_heads=2)
OPTIONS = dict(epochs=2, steps_per_epoch=2, batch_size=4, decoded_pixels=32, eval_take=8, learning_rate=1e-3,
               tensorboard=False, verbose=0)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated kill")


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    """A toy flow model on synthetic pairs, killed after its first epoch and then resumed."""
    out = tmp_path_factory.mktemp("flow") / "run"
    with pytest.MonkeyPatch.context() as patch:
        original_fit = keras.Model.fit
        patch.setattr(keras.Model, "fit", lambda self, *args, callbacks=(), **kwargs: original_fit(
            self, *args, callbacks=[*callbacks, _Interrupt()], **kwargs))
        with pytest.raises(KeyboardInterrupt):
            training.train("optical_flow", "flow_small", out, model_overrides=TOY, **OPTIONS)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    return out, training.train("optical_flow", "flow_small", out, model_overrides=TOY, **OPTIONS)


def test_interrupted_run_resumes_and_reports_epe_beside_zero_flow(flow_run):
    out, run = flow_run
    with open(out / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]  # epoch 0 was not repeated
    assert run["status"] == "finished"
    assert run["model_overrides"] == {**TOY, "frame_size": [16, 16], "use_output_indices": True}
    assert set(run["test_metrics"]) == {"loss", "epe"} and run["baselines"]["zero_flow_epe"] > 0.1
    assert run["data"] == {"builder": "zoo.optical_flow.export:export_arrays",
                           "kwargs": {"dataset": "synthetic_flow", "frame_size": [16, 16], "data_dir": None,
                                      "max_flow": 2.0, "window_candidates": 8}}  # the preset's pairs
    # Evaluation decodes every pixel of the held-out pairs: the EPE of the model's own predictions.
    model, _ = training.load_run(out)
    preset = training.with_overrides(registry.get_preset("flow_small"), run["model_overrides"])
    _, test = RECIPE.datasets(preset, 4, 0, run["options"])
    predicted, true = zip(*((model.predict(x, verbose=0), y) for x, y in test.as_numpy_iterator()))
    assert np.concatenate(true).shape == (8, 256, 2)
    expected = data.end_point_error(np.concatenate(true), 20.0 * np.concatenate(predicted))
    assert run["test_metrics"]["epe"] == pytest.approx(expected, rel=1e-5)
    assert training.evaluate(out)["epe"] == pytest.approx(expected, rel=1e-5)


def test_training_batches_decode_random_pixels_without_replacement():
    preset = training.with_overrides(registry.get_preset("flow_small"), {**TOY, "use_output_indices": True})
    train, _ = RECIPE.datasets(preset, 3, 0, dict(decoded_pixels=40, steps_per_epoch=2))
    batches = list(train.take(2).as_numpy_iterator())
    (inputs, targets), (later, _) = batches
    indices = inputs["output_indices"]
    assert indices.shape == (3, 40) and indices.dtype == np.int32 and targets.shape == (3, 40, 2)
    assert all(len(set(row)) == 40 for row in indices) and indices.min() >= 0 and indices.max() < 256
    assert not np.array_equal(indices, later["output_indices"])  # new pixels every step
    assert inputs["frames"].min() >= -1.0 and inputs["frames"].max() <= 1.0 and inputs["frames"].min() < -0.5


def test_loss_and_metric_are_numpy_epe_in_pixels():
    rng = np.random.default_rng(0)
    true, pred = rng.normal(scale=5.0, size=(2, 3, 4, 2)), rng.normal(scale=0.2, size=(2, 3, 4, 2))
    loss = EndPointErrorLoss(flow_scale_factor=20.0)
    assert float(loss(true, pred)) == pytest.approx(data.end_point_error(true, 20.0 * pred), rel=1e-5)
    metric = EndPointError(flow_scale_factor=20.0)
    metric.update_state(true[:1], pred[:1])
    metric.update_state(true[1:, :1], pred[1:, :1])  # batches of different sizes: a mean over pixels
    seen = np.concatenate([(true[:1] - 20 * pred[:1]).reshape(-1, 2),
                           (true[1:, :1] - 20 * pred[1:, :1]).reshape(-1, 2)])
    assert float(metric.result()) == pytest.approx(np.linalg.norm(seen, axis=-1).mean(), rel=1e-5)
    for obj in (loss, metric):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(restored) is type(obj) and restored.flow_scale_factor == 20.0
    with pytest.raises(ValueError, match="Received: flow_scale_factor=0"):
        EndPointError(flow_scale_factor=0)


def test_more_decoded_pixels_than_the_frame_has_raises(tmp_path):
    with pytest.raises(ValueError, match=r"--decoded-pixels must be from 1 to 256 .*16x16.* "
                                         r"Received: --decoded-pixels 300"):
        training.train("optical_flow", "flow_small", tmp_path / "x", model_overrides=TOY,
                       **{**OPTIONS, "decoded_pixels": 300})
