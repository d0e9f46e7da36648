"""Run directories that tell the truth: resumes with other settings, retrains and foreign models are refused."""

import json
import shutil

import keras
import pytest

from export import cli as export_cli
from export.run_directory import RunDirectoryError
from zoo import cli, training

pytestmark = pytest.mark.tensorflow_only

_TINY = dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1,
             num_self_attention_heads=2, num_bands=2)
_OPTIONS = dict(epochs=2, batch_size=32, take=128, tensorboard=False, verbose=0)


class _Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated kill")


def _killed_train(monkeypatch, out, **kwargs):
    original_fit = keras.Model.fit

    def killed_fit(self, *args, callbacks=(), **fit_kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, _Kill()], **fit_kwargs)

    monkeypatch.setattr(keras.Model, "fit", killed_fit)
    with pytest.raises(KeyboardInterrupt):
        training.train("image_classification", "digits", out, model_overrides=_TINY, **{**_OPTIONS, **kwargs})
    monkeypatch.setattr(keras.Model, "fit", original_fit)


def test_runs_tell_the_truth(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _killed_train(monkeypatch, out)
    # Resuming with other settings is refused, naming each difference in CLI terms.
    with pytest.raises(ValueError) as error:
        training.train("image_classification", "digits", out, model_overrides={**_TINY, "num_latents": 16},
                       **{**_OPTIONS, "epochs": 3})
    assert "--epochs: the run has 2, the command 3" in str(error.value)
    assert "--set num_latents: the run has 8, the command 16" in str(error.value) and "--overwrite" in str(error.value)
    argv = ["train", "image_classification", "--preset", "digits", "--out", str(out), "--epochs", "3"]
    assert cli.main(argv) == cli.EXIT_INPUT_ERROR and "--epochs" in capsys.readouterr().err
    # An unfinished run cannot be evaluated or exported.
    with pytest.raises(RunDirectoryError, match="unfinished"):
        training.evaluate(out)
    # The same settings (or none) resume it.
    finished = training.train("image_classification", "digits", out, model_overrides=_TINY, **_OPTIONS)
    assert finished["status"] == "finished" and len(finished["model_sha256"]) == 64
    assert training.evaluate(out)["accuracy"] == pytest.approx(finished["test_metrics"]["accuracy"], abs=1e-6)

    # A killed --overwrite retraining leaves no old model.keras to be taken for the new one.
    shutil.copytree(out, tmp_path / "kept")
    _killed_train(monkeypatch, out, overwrite=True, epochs=3)
    assert not (out / "model.keras").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    with pytest.raises((RunDirectoryError, FileNotFoundError)):
        training.load_run(out)
    assert export_cli.main([str(out), "--out", str(tmp_path / "export"), "--latency-runs", "0"]) == 2

    # A model.keras that is not the one its run.json's run wrote is refused, naming the file.
    other = tmp_path / "kept"
    keras.saving.load_model(other / "model.keras", compile=False).save(tmp_path / "other.keras")
    shutil.copy(tmp_path / "other.keras", other / "model.keras")  # same weights, but another file
    with pytest.raises(RunDirectoryError, match="not the model this run wrote"):
        training.evaluate(other)
    assert export_cli.main([str(other), "--out", str(tmp_path / "export"), "--latency-runs", "0"]) == 2
    assert "model.keras is not the model" in capsys.readouterr().err


def test_demo_replaces_only_its_own_output(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert cli.main(["demo", "--out", str(mine)]) == cli.EXIT_INPUT_ERROR
    assert "not an earlier demo's folder" in capsys.readouterr().err and (mine / "thesis.tex").exists()
    plain = tmp_path / "file.txt"
    plain.write_text("keep")
    assert cli.main(["demo", "--out", str(plain)]) == cli.EXIT_INPUT_ERROR and plain.read_text() == "keep"
