"""Presets that do not fit: clear errors naming the file, expected and received; nothing half-written."""

import json
import shutil

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from perceiver_keras import hub  # noqa: E402
from tests.hub_fixtures import toy_model  # noqa: E402

pytestmark = pytest.mark.tensorflow_only


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad") / "digits"
    toy_model("digits").save_to_preset(folder)
    return folder


@pytest.fixture
def copy(preset, tmp_path):
    """A fresh copy of the digits preset to damage."""
    return shutil.copytree(preset, tmp_path / "copy")


def test_missing_config_or_weights(copy, tmp_path):
    (copy / "model.weights.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"copy/model.weights.h5 is missing"):
        hub.PerceiverImageClassifier.from_preset(str(copy))
    with pytest.raises(FileNotFoundError, match=r"weights"):  # keras-hub's own message, through its base class
        keras_hub.models.ImageClassifier.from_preset(str(copy))
    (copy / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"copy/config.json is missing"):
        hub.PerceiverBackbone.from_preset(str(copy))
    with pytest.raises(FileNotFoundError, match="Preset folder not found"):
        hub.PerceiverBackbone.from_preset(str(tmp_path / "nowhere" / "preset"))


def test_config_of_another_architecture(copy):
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(dict(config, registered_name="keras_hub>ViTBackbone")))
    with pytest.raises(ValueError, match=r"config.json describes another architecture. Expected registered_name="
                                         r"'perceiver_keras>PerceiverBackbone'.*Received: registered_name='keras_hub>ViTBackbone'"):
        hub.PerceiverImageClassifier.from_preset(str(copy))
    (copy / "config.json").write_text(json.dumps({"model_type": "perceiver", "architectures": ["PerceiverForMaskedLM"]}))
    with pytest.raises(ValueError, match=r"transformers config.*python -m zoo convert"):
        hub.PerceiverBackbone.from_preset(str(copy))
    (copy / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        hub.PerceiverBackbone.from_preset(str(copy))


def test_weights_of_the_wrong_shape(copy, tmp_path):
    wider = toy_model("digits", num_latent_channels=32)
    wider.save_to_preset(tmp_path / "wider")
    shutil.copy(tmp_path / "wider" / "model.weights.h5", copy / "model.weights.h5")
    with pytest.raises(ValueError, match=r"model.weights.h5 does not fit PerceiverBackbone.*weight '.*' has shape "
                                         r"\(.*32.*\); the config \(config.json\) expects \(.*16.*\)"):
        keras_hub.models.Backbone.from_preset(str(copy))


def test_a_task_or_num_classes_that_does_not_fit(preset, tmp_path):
    with pytest.raises(ValueError, match=r"config.json holds a Perceiver backbone whose input adapter is "
                                         r"ImagePreprocessor.*Received: input_adapter=ImagePreprocessor"):
        keras_hub.models.TextClassifier.from_preset(str(preset), num_classes=2)
    with pytest.raises(ValueError, match=r"Expected: input_adapter=TextPreprocessor"):
        hub.PerceiverMaskedLM.from_preset(str(preset))
    with pytest.raises(ValueError, match=r"`num_classes` must be a positive int. Received: num_classes=0"):
        keras_hub.models.ImageClassifier.from_preset(str(preset), num_classes=0)
    toy_model("flow_small").save_to_preset(tmp_path / "flow")
    with pytest.raises(ValueError, match=r"PerceiverOpticalFlow has no classes to set.*Received: num_classes=3"):
        hub.PerceiverOpticalFlow.from_preset(str(tmp_path / "flow"), num_classes=3)


def test_nothing_is_half_written(preset, tmp_path, monkeypatch):
    model = toy_model("digits")
    target = tmp_path / "out"
    model.save_to_preset(target)
    before = {path.name: path.read_bytes() for path in target.iterdir() if path.is_file()}

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(keras_hub.models.Backbone, "save_weights", fail)
    with pytest.raises(OSError, match="disk full"):
        toy_model("digits", num_classes=4).save_to_preset(target)
    assert {path.name: path.read_bytes() for path in target.iterdir() if path.is_file()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no temporary folder left
    with pytest.raises(OSError):
        model.save_to_preset(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes exists and is not a preset folder"):
        model.save_to_preset(tmp_path / "notes")
    # A preset folder is replaced whole: the new one loads and the old files are gone.
    toy_model("digits", num_classes=4).save_to_preset(target)
    loaded = keras_hub.models.ImageClassifier.from_preset(str(target))
    assert loaded.num_classes == 4 and np.isfinite(loaded.predict(np.zeros((1, 8, 8, 1)), verbose=0)).all()
