"""Fine-tuning (`--init-from`, `--freeze-backbone`): what loads, what is reported, what is refused, resumes."""

import json
import shutil

import keras
import numpy as np
import pytest

from zoo import cli, create_model, training
from zoo.finetune import IncompatibleSourceError, load_matching_weights

pytestmark = pytest.mark.tensorflow_only

_TINY = dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1,
             num_self_attention_heads=2, num_bands=2)
_OPTIONS = dict(epochs=1, batch_size=32, take=64, tensorboard=False, verbose=0, mixup=0.0)
_HEAD = ("classification_query/", "decoder/")


def _weights(model):
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A run directory of a 4-class digits model (run.json written by hand: no status, taken as finished)."""
    out = tmp_path_factory.mktemp("source")
    create_model("digits", **_TINY, num_classes=4, seed=1).save(out / "model.keras")
    (out / "run.json").write_text(json.dumps({"task": "image_classification", "preset": "digits"}))
    return out


def test_matching_weights_load_and_the_rest_is_reported(source_run):
    source = _weights(keras.saving.load_model(source_run / "model.keras", compile=False))
    model = create_model("digits", **_TINY)  # 10 classes: a new head
    report = load_matching_weights(model, source_run / "model.keras")
    loaded = _weights(model)
    assert len(report.loaded) == len(model.weights) - 2 and report.unused == ()
    for path in report.loaded:
        np.testing.assert_array_equal(loaded[path], source[path])
    assert [item.describe() for item in report.not_loaded] == [
        "decoder/projection/kernel: shape mismatch: model (16, 10), source (16, 4)",
        "decoder/projection/bias: shape mismatch: model (10,), source (4,)"]
    assert report.as_json()["not_loaded"][1] == {"path": "decoder/projection/bias", "reason": "shape mismatch",
                                                 "model_shape": (10,), "source_shape": (4,)}
    assert f"loaded {len(model.weights) - 2} of {len(model.weights)} weights" in report.summary()


def test_a_mismatching_encoder_is_refused_naming_the_first_weight(source_run):
    wider = create_model("digits", **{**_TINY, "num_latents": 12})
    with pytest.raises(IncompatibleSourceError, match=r"model\.keras.*'encoder/latents' expected shape \(12, 16\), "
                                                      r"received \(8, 16\)"):
        load_matching_weights(wider, source_run)
    deeper = create_model("digits", **{**_TINY, "num_self_attention_layers_per_block": 2})
    before = _weights(deeper)
    with pytest.raises(IncompatibleSourceError, match="'encoder/self_attention_1/norm/gamma' expected shape "
                                                      r"\(16,\), received no such weight"):
        load_matching_weights(deeper, source_run)
    assert all(np.array_equal(before[p], w) for p, w in _weights(deeper).items())  # nothing half-loaded


class _Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated kill")


def test_freeze_backbone_trains_the_head_alone_and_a_resumed_run_keeps_its_weights(source_run, tmp_path, monkeypatch,
                                                                                   capsys):
    copied = tmp_path / "source.keras"
    shutil.copy(source_run / "model.keras", copied)
    out, options = tmp_path / "run", {**_OPTIONS, "epochs": 2}
    original_fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, *a, callbacks=(), **k: original_fit(
        self, *a, callbacks=[*callbacks, _Kill()], **k))
    with pytest.raises(KeyboardInterrupt):
        training.train("image_classification", "digits", out, model_overrides=_TINY, init_from=copied,
                       freeze_backbone=True, **options)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    started = json.loads((out / "run.json").read_text())["init_from"]
    # --init-from is an option: another source (or none given, then the run's) is checked like the others.
    argv = ["train", "image_classification", "--preset", "digits", "--out", str(out), "--init-from", str(source_run)]
    assert cli.main(argv) == cli.EXIT_INPUT_ERROR
    assert f"--init-from: the run has '{copied}', the command '{source_run}'" in capsys.readouterr().err
    copied.unlink()  # the resumed run must not read its source again: its backup holds the trained weights
    run = training.train("image_classification", "digits", out, model_overrides=_TINY, **options)
    assert run["status"] == "finished" and run["init_from"] == started
    source = _weights(keras.saving.load_model(source_run / "model.keras", compile=False))
    trained = _weights(keras.saving.load_model(out / "model.keras", compile=False))
    frozen = started["frozen"]
    assert frozen["inference_mode_layers"] == ["image_preprocessor/batch_norm"]
    assert set(frozen["weights"]) == {p for p in source if not p.startswith(_HEAD) and "moving" not in p}
    for path, value in trained.items():
        if path.startswith(_HEAD):  # the head trains, from the source's weights where their shapes fit
            assert path in frozen["trainable_weights"]
            assert path.startswith("decoder/projection") or not np.array_equal(value, source[path]), path
        else:  # frozen again on resume, with the frozen batch norm's moving statistics
            np.testing.assert_array_equal(value, source[path], err_msg=path)


def test_bad_sources_exit_2_naming_the_file(source_run, tmp_path, capsys):
    text_model = create_model("pydoc_mlm", num_latents=8, num_latent_channels=16, num_self_attention_layers_per_block=1)
    text_model.save(tmp_path / "mlm.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")]).save(tmp_path / "other.keras")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    hf_folder = tmp_path / "hf"
    hf_folder.mkdir()
    (hf_folder / "config.json").write_text("{}")
    (hf_folder / "pytorch_model.bin").write_bytes(b"not read")
    base = ["train", "image_classification", "--preset", "digits", "--epochs", "1", "--take", "64",
            *[f"--set={k}={v}" for k, v in _TINY.items()]]
    cases = {
        str(tmp_path / "missing"): ["not found", "missing"],
        str(tmp_path / "pytorch_model.bin"): ["pytorch_model.bin is a pickle checkpoint, refused"],
        str(hf_folder): [f"{hf_folder / 'pytorch_model.bin'} is a pickle checkpoint"],
        str(tmp_path / "other.keras"): ["No weight of", "other.keras fits model 'digits'", "'image_preprocessor/conv/"
                                        "kernel' expected shape (3, 3, 1, 64), received no such weight"],
        str(tmp_path / "mlm.keras"): ["mlm.keras does not match", "'encoder/cross_attention/key_value_norm/gamma' "
                                      "expected shape (74,), received (64,)"],
    }
    for i, (source, expected) in enumerate(cases.items()):
        assert cli.main([*base, "--out", str(tmp_path / f"out{i}"), "--init-from", source]) == cli.EXIT_INPUT_ERROR
        error = capsys.readouterr().err
        assert all(text in error for text in expected), error
        assert not (tmp_path / f"out{i}").exists()  # refused before training: no run directory left behind
    assert cli.main([*base, "--out", str(tmp_path / "f"), "--freeze-backbone"]) == cli.EXIT_INPUT_ERROR
    assert "--freeze-backbone needs --init-from" in capsys.readouterr().err


def test_a_transformers_folder_gives_its_encoder(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(d_model=16, d_latents=32, num_latents=8, num_blocks=1,
                                          num_self_attends_per_block=1, num_cross_attention_heads=2,
                                          num_self_attention_heads=2, qk_channels=16, v_channels=32,
                                          max_position_embeddings=24)
    reference = transformers.PerceiverForMaskedLM(config)
    reference.save_pretrained(tmp_path)  # model.safetensors
    reference.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")  # model.safetensors.index.json + shards
    model = create_model("source_type", sequence_length=24, embedding_channels=16, num_latents=8,
                         num_latent_channels=32, num_self_attention_layers_per_block=1, num_cross_attention_heads=2,
                         num_self_attention_heads=2, qk_channels=16, v_channels=32, self_attention_widening_factor=1,
                         cross_attention_widening_factor=1)
    report = load_matching_weights(model, tmp_path)
    assert report.source.kind == "transformers folder" and report.source.file.endswith("model.safetensors")
    assert {p for p in report.loaded if p.startswith("text_preprocessor/")} == {
        "text_preprocessor/token_embeddings", "text_preprocessor/position_embeddings"}
    assert [item.path for item in report.not_loaded if not item.path.startswith("decoder/cross_attention/")] == [
        "classification_query/embeddings", "decoder/projection/kernel", "decoder/projection/bias"]
    assert "text_preprocessor/output_bias" in report.unused
    sharded = load_matching_weights(model, tmp_path / "sharded")
    assert sharded.loaded == report.loaded and sharded.source.file == str(tmp_path / "sharded")


def test_classes_keeps_and_relabels_a_subset_of_labels():
    from zoo.image_classification.data import load_digits_arrays, make_dataset

    ds = make_dataset("digits", "test", batch_size=500, classes=(6, 7, 8, 9))
    labels = np.concatenate([y for _, y in ds.as_numpy_iterator()])
    expected = load_digits_arrays("test")[1]
    np.testing.assert_array_equal(labels, expected[expected >= 6] - 6)
    assert int(ds.cardinality()) == 1  # known, so that an epoch has a fixed number of batches
    with pytest.raises(ValueError, match=r"Received: --classes 6,6"):
        make_dataset("digits", "test", batch_size=8, classes=(6, 6))


def test_a_keras_hub_preset_gives_its_weights(tmp_path):
    source = create_model("digits", **_TINY, num_classes=4, seed=3)
    source.save_to_preset(tmp_path / "preset")  # config.json, task.json, model.weights.h5, task.weights.h5, ...
    model = create_model("digits", **_TINY)
    report = load_matching_weights(model, tmp_path / "preset")
    assert report.source.kind == "keras-hub preset" and len(report.loaded) == len(model.weights) - 2
    expected = _weights(source)
    for path, value in _weights(model).items():
        if path in report.loaded:
            np.testing.assert_array_equal(value, expected[path], err_msg=path)
