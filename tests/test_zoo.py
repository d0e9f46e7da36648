"""The zoo: registry, presets (parameter counts pinned to transformers'), training, resume, CLI."""

import csv
import json

import keras
import numpy as np
import pytest

import zoo
from zoo import cli, training

pytestmark = pytest.mark.tensorflow_only

# transformers' PerceiverForImageClassification{Fourier,Learned,ConvProcessing}(num_labels=1000).
PAPER_PARAMETER_COUNTS = {"imagenet_fourier": 48_440_627, "imagenet_learned": 62_255_848, "imagenet_conv": 48_646_522}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETER_COUNTS))
def test_paper_presets_have_the_reference_parameter_counts(name):
    model = zoo.create_model(name)
    assert _trainable(model) == PAPER_PARAMETER_COUNTS[name] == zoo.get_preset(name).metadata["parameter_count"]
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)


def test_reference_parameter_counts_come_from_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    heads = {"imagenet_fourier": transformers.PerceiverForImageClassificationFourier,
             "imagenet_learned": transformers.PerceiverForImageClassificationLearned,
             "imagenet_conv": transformers.PerceiverForImageClassificationConvProcessing}
    config = transformers.PerceiverConfig(
        num_latents=512, d_latents=1024, num_blocks=8, num_self_attends_per_block=6, num_self_attention_heads=8,
        num_cross_attention_heads=1, image_size=224, num_labels=1000,
    )
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        counts = {name: sum(p.numel() for p in cls(config).parameters()) for name, cls in heads.items()}
    assert counts == PAPER_PARAMETER_COUNTS


def test_registry_lists_creates_and_rejects():
    names = zoo.list_models()
    assert {"digits", "mnist", "cifar10", "cifar100", *PAPER_PARAMETER_COUNTS} <= set(names)
    assert set(zoo.list_models("image_classification")) | set(zoo.list_models("text_classification")) <= set(names)
    assert "digits" not in zoo.list_models("text_classification")
    small = zoo.create_model("digits", num_blocks=1, name="tiny")
    assert small.name == "tiny" and small.output_shape == (None, 10)
    with pytest.raises(ValueError, match="Received: name='nope'"):
        zoo.create_model("nope")
    with pytest.raises(ValueError, match="not_an_argument"):
        zoo.create_model("digits", not_an_argument=1)
    with pytest.raises(ValueError, match=r"expected `images` of shape \('batch', 8, 8, 1\). Received: images.shape=\(1, 9, 9, 1\)"):
        small(np.zeros((1, 9, 9, 1), "float32"))
    with pytest.raises(ValueError, match=r"\('batch', 8, 8, 1\). Received: images.shape=\(1, 8, 8, 3\)"):
        small(np.zeros((1, 8, 8, 3), "float32"))


_TINY = dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1,
             num_self_attention_heads=2, num_bands=2)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")


def test_train_resumes_after_interruption_and_evaluates(tmp_path, monkeypatch):
    out = tmp_path / "run"
    original_fit = keras.Model.fit

    def interrupted_fit(self, *args, callbacks=(), **kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, _Interrupt()], **kwargs)

    options = dict(epochs=3, batch_size=32, take=256, tensorboard=False, verbose=0)
    monkeypatch.setattr(keras.Model, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        training.train("image_classification", "digits", out, model_overrides=_TINY, **options)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert not (out / "model.keras").exists()
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    run = training.train("image_classification", "digits", out, model_overrides=_TINY, **options)
    with open(out / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2]  # epoch 2 ran after the resume, epochs 0-1 were not repeated
    assert run["status"] == "finished" and 0.0 <= run["test_metrics"]["accuracy"] <= 1.0
    assert training.evaluate(out)["accuracy"] == pytest.approx(run["test_metrics"]["accuracy"], abs=1e-6)
    with pytest.raises(FileExistsError, match="--overwrite"):
        training.train("image_classification", "digits", out, model_overrides=_TINY, **options)


def test_cli_list_and_errors(capsys, tmp_path):
    assert cli.main(["list"]) == 0
    assert "imagenet_fourier" in capsys.readouterr().out
    argv = ["train", "image_classification", "--preset", "digits", "--out", str(tmp_path / "x"), "--precision", "fp8"]
    assert cli.main(argv) == cli.EXIT_INPUT_ERROR
    assert "argument --precision: invalid choice: 'fp8'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="run.json is missing"):
        training.load_run("/nonexistent")


def test_cli_task_options_reach_train_and_tune(monkeypatch):
    seen = {}
    monkeypatch.setattr(training, "train", lambda task, preset, out, **kwargs: seen.update(kwargs) or {"test_metrics": {}})
    flags = ["--decoded-audio-patches", "4", "--tone-period", "32", "--label-loss-weight", "1",
             "--multimodal-dataset", "synthetic_audiovisual", "--set", "num_latents=8"]
    assert cli.main(["train", "multimodal_autoencoding", "--preset", "multimodal_small", "--out", "/tmp/x", *flags]) == 0
    assert {k: seen[k] for k in ("decoded_audio_patches", "tone_period", "label_loss_weight", "multimodal_dataset")
            } == {"decoded_audio_patches": 4, "tone_period": 32, "label_loss_weight": 1.0,
                  "multimodal_dataset": "synthetic_audiovisual"}
    assert seen["model_overrides"] == {"num_latents": 8}
    flow = ["--max-flow", "2.5", "--window-candidates", "8", "--set", "num_latents=8"]
    assert cli.main(["train", "optical_flow", "--preset", "flow_small", "--out", "/tmp/x", *flow]) == 0
    assert (seen["max_flow"], seen["window_candidates"]) == (2.5, 8)
    tune = cli._parser().parse_args(["tune", "optical_flow", "--preset", "flow_small", "--out", "/tmp/t", *flow])
    assert (tune.max_flow, tune.window_candidates, tune.overrides) == (2.5, 8, [("num_latents", 8)])
