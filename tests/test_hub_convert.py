"""`python -m zoo convert HF_FOLDER --out PRESET_DIR`: tiny random transformers Perceivers -> keras-hub presets."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
keras_hub = pytest.importorskip("keras_hub")

from perceiver_keras import hub  # noqa: E402
from zoo import cli  # noqa: E402
from zoo.convert import from_transformers, parity  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

_ENCODER = dict(num_latents=8, d_latents=32, num_blocks=1, num_self_attends_per_block=1, num_self_attention_heads=4,
                num_cross_attention_heads=1, attention_probs_dropout_prob=0.0)
# architecture -> (config overrides, keras-hub class whose from_preset must find the converted task)
ARCHITECTURES = {
    "PerceiverForImageClassificationFourier": (dict(image_size=12, num_labels=5), "ImageClassifier"),
    "PerceiverForMaskedLM": (dict(d_model=16, qk_channels=16, v_channels=32, max_position_embeddings=16), "MaskedLM"),
    "PerceiverForSequenceClassification": (dict(d_model=16, qk_channels=16, v_channels=32, max_position_embeddings=16,
                                                num_labels=3), "TextClassifier"),
    "PerceiverForOpticalFlow": (dict(train_size=[6, 8]), "PerceiverOpticalFlow"),
    "PerceiverForMultimodalAutoencoding": (dict(num_frames=2, audio_samples_per_frame=32, samples_per_patch=16,
                                                image_size=8, output_shape=[1, 2, 8, 8], output_num_channels=24,
                                                num_labels=5, _label_trainable_num_channels=48),
                                           "PerceiverMultimodalAutoencoder"),
}


def _save_reference(architecture, folder, safe=True):
    """A reduced config with random weights of order one, written by save_pretrained."""
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(**_ENCODER, **ARCHITECTURES[architecture][0])
    model = getattr(transformers, architecture)(config).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name else torch.randn_like(tensor) * 0.3)
    if safe:
        model.save_pretrained(folder)
    else:
        model.config.architectures = [architecture]
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_convert_writes_a_checked_preset(architecture, tmp_path, capsys):
    folder = _save_reference(architecture, tmp_path / "hf")
    assert cli.main(["convert", str(folder), "--out", str(tmp_path / "preset")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff_vs_transformers"] <= 1e-4 * report["output_scale"]
    assert report["max_abs_diff_reloaded"] <= 1e-6  # same weights; graph and eager paths may differ in the last bit
    assert json.loads((tmp_path / "preset" / "metadata.json").read_text())["perceiver_keras"]["architecture"] == architecture
    base = ARCHITECTURES[architecture][1]
    model = from_transformers(folder)
    model.graph_call = False  # layer by layer, as Keras runs the keras-hub task: equal to the last bit
    probe = parity.probe(architecture, model, seed=1)  # other inputs than the command's
    loaded = (getattr(keras_hub.models, base, None) or getattr(hub, base)).from_preset(
        str(tmp_path / "preset"), **probe.task_options)
    ours = probe.task_outputs(loaded(probe.task_inputs))
    for key, value in probe.keras_outputs.items():
        np.testing.assert_array_equal(ours[key], value)


def test_pickle_checkpoints_are_refused(tmp_path, capsys):
    folder = _save_reference("PerceiverForImageClassificationFourier", tmp_path / "hf", safe=False)
    assert cli.main(["convert", str(folder), "--out", str(tmp_path / "preset")]) == cli.EXIT_INPUT_ERROR
    error = capsys.readouterr().err
    assert "pytorch_model.bin is a pickle checkpoint" in error and "model.safetensors" in error
    assert not (tmp_path / "preset").exists()


def test_a_parity_failure_writes_nothing(tmp_path, monkeypatch, capsys):
    folder = _save_reference("PerceiverForImageClassificationFourier", tmp_path / "hf")
    real = parity.reference_outputs
    monkeypatch.setattr(parity, "reference_outputs", lambda *args: {
        key: value + 1e-2 for key, value in real(*args).items()})
    assert cli.main(["convert", str(folder), "--out", str(tmp_path / "preset")]) == cli.EXIT_INPUT_ERROR
    assert "differs from transformers' PerceiverForImageClassificationFourier" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hf"]


def test_convert_refuses_other_folders(tmp_path, capsys):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    assert cli.main(["convert", str(tmp_path / "bert"), "--out", str(tmp_path / "preset")]) == cli.EXIT_INPUT_ERROR
    assert "model_type='bert'" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path / "missing"), "--out", str(tmp_path / "preset")]) == cli.EXIT_INPUT_ERROR
    assert "not found" in capsys.readouterr().err
