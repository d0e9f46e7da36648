"""Bad inputs the issue-18 re-probe found answered late, unclearly or not at all; each named in the user's terms."""

import argparse
import hashlib
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import cli as export_cli
from export.data_errors import data_file_error
from zoo import create_model
from zoo.image_classification.data import check_image_shape
from zoo.language import data as language_data
from zoo.multimodal import build_multimodal_autoencoder
from zoo.optical_flow import data as flow_data

pytestmark = pytest.mark.tensorflow_only

FLOW_TINY = dict(frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16,
                 num_self_attention_layers_per_block=1, num_self_attention_heads=2)
MULTIMODAL_TINY = dict(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, image_num_bands=2,
                       audio_num_bands=3, label_query_channels=6, num_latents=4, num_latent_channels=16,
                       num_self_attention_layers_per_block=1, num_self_attention_heads=2, decoder_output_channels=8)


def _flow_run_reading_sintel(tmp_path):
    """A finished tiny flow run whose export data are a fake Sintel folder of two scenes of 16x16 frames."""
    root, run, rng = tmp_path / "sintel", tmp_path / "run", np.random.default_rng(0)
    for scene in ("alley_1", "bamboo_2"):
        (root / "training" / "flow" / scene).mkdir(parents=True)
        (root / "training" / "clean" / scene).mkdir(parents=True)
        for i in (1, 2, 3):
            tf.io.write_file(str(root / "training" / "clean" / scene / f"frame_{i:04d}.png"),
                             tf.io.encode_png(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
            if i < 3:
                flow_data.write_flo(str(root / "training" / "flow" / scene / f"frame_{i:04d}.flo"),
                                    rng.normal(0, 1, (16, 16, 2)).astype(np.float32))
    run.mkdir()
    create_model("flow_small", **FLOW_TINY).save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({
        "task": "optical_flow", "preset": "flow_small", "model_overrides": {**FLOW_TINY, "frame_size": [16, 16]},
        "options": {"batch_size": 1, "seed": 0}, "status": "finished",
        "model_sha256": hashlib.sha256((run / "model.keras").read_bytes()).hexdigest(),
        "imports": ["perceiver_keras", "zoo"],
        "data": {"builder": "zoo.optical_flow.export:export_arrays",
                 "kwargs": {"dataset": "sintel", "frame_size": [16, 16], "data_dir": str(root), "num_calibration": 2,
                            "num_eval": 2}}}))
    return root / "training", run


def test_export_names_a_damaged_file_in_its_evaluation_data_and_exits_2(tmp_path, capsys):
    training, run = _flow_run_reading_sintel(tmp_path)
    png, flo = training / "clean" / "bamboo_2" / "frame_0002.png", training / "flow" / "alley_1" / "frame_0001.flo"
    png_bytes = png.read_bytes()
    png.write_bytes(png_bytes[:60])  # the header survives, so only decoding inside tf.data finds it
    for expected in (f"error: Cannot decode the image file {png}: Invalid PNG data",
                     f"error: Corrupt .flo file {flo}: expected 12 + 8 * 16 * 16"):
        assert export_cli.main([str(run), "--out", str(tmp_path / "export"), "--latency-runs", "0"]) == 2
        error = capsys.readouterr().err
        assert expected in error and "Traceback" not in error and "[Op:" not in error, error
        assert not (tmp_path / "export").exists()
        png.write_bytes(png_bytes)
        flo.write_bytes(flo.read_bytes()[:-8])


def test_data_file_error_leaves_other_errors_alone():
    assert data_file_error(tf.errors.InternalError(None, None, "not a data file")) is None
    assert data_file_error(ValueError("Cannot decode the image file x.png: bad")) is None  # not from tf.data
    wrapped = tf.errors.InvalidArgumentError(None, None, 'ValueError: Cannot decode the .wav file /d/a.wav: Bad '
                                                         'header\n\n\t [[{{node EagerPyFunc}}]]')
    assert data_file_error(wrapped) == "Cannot decode the .wav file /d/a.wav: Bad header"


@pytest.mark.parametrize("shape, smallest", [((4, 4, 3), 5), ((2, 9, 3), 5), ((1, 1, 3), 5)])
def test_an_image_shape_the_conv_stem_shrinks_to_nothing_is_named(shape, smallest):
    with pytest.raises(ValueError, match=re.escape(
            f"`image_shape` is too small for the conv stem (7x7/2 conv, then a 3x3/2 max-pool (valid)): expected "
            f"height and width of at least {smallest}. Received: image_shape={shape}")):
        create_model("imagenet_conv", image_shape=shape, num_latents=4, num_latent_channels=8, num_blocks=1)


def test_the_smallest_image_the_conv_stem_takes_builds():
    model = create_model("imagenet_conv", image_shape=(5, 5, 3), num_latents=4, num_latent_channels=8,
                         num_blocks=1, num_self_attention_layers_per_block=1, num_self_attention_heads=1, num_bands=2,
                         num_classes=3)
    assert model.predict(np.zeros((1, 5, 5, 3), "float32"), verbose=0).shape == (1, 3)


@pytest.mark.parametrize("shape, why", [((8, 8, 3), "1 channel"), ((8, 9, 1), "square"), ((16, 8, 1), "square")])
def test_an_image_shape_the_dataset_cannot_feed_is_named_under_set(shape, why):
    with pytest.raises(ValueError, match=re.escape(f"--set image_shape={shape} does not fit dataset 'digits'")) as info:
        check_image_shape("digits", shape)
    assert why in str(info.value) and f"Received: image_shape={shape}" in str(info.value)
    check_image_shape("digits", (8, 8, 1))
    check_image_shape("cifar10", (16, 16, 3))


def test_a_text_files_pattern_matching_nothing_is_refused_naming_the_flag(tmp_path):
    pattern = str(tmp_path / "nothing" / "*.txt")
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"it matches none. Received: {pattern!r}")):
        language_data.text_files_argument(pattern)
    with pytest.raises(ValueError, match=re.escape(f"--text-files {pattern!r} matches no file")):
        language_data.documents("text_files", "train", files=pattern)
    (tmp_path / "a.txt").write_text("a document")
    assert language_data.text_files_argument(str(tmp_path / "*.txt")) == str(tmp_path / "*.txt")


@pytest.fixture(scope="module")
def multimodal():
    return build_multimodal_autoencoder(**MULTIMODAL_TINY, use_output_indices=True)


def _clips(batch=2, image_index=3, audio_index=1):
    rng = np.random.default_rng(0)
    return {"image": rng.uniform(-1, 1, (batch, 2, 8, 8, 3)).astype("float32"),
            "audio": rng.uniform(-1, 1, (batch, 64, 1)).astype("float32"),
            "label": np.eye(5, dtype="float32")[rng.integers(0, 5, batch)],
            "image_indices": np.full((batch, 1), image_index, "int32"),
            "audio_indices": np.full((batch, 1), audio_index, "int32")}


@pytest.mark.parametrize("change, message", [
    (lambda x: {k: v[:0] for k, v in x.items()}, "got an empty batch: `image` has 0 samples. Received: "
                                                 "image.shape=(0, 2, 8, 8, 3)"),
    (lambda x: {**x, "audio": np.zeros((3, 64, 1), "float32")}, "expected every input with the same batch size. "
                                                                "Received: audio.shape=(3, 64, 1), "),
    (lambda x: {**x, "image_indices": np.zeros((3, 1), "int32")}, "Received: audio.shape=(2, 64, 1), "),
    (lambda x: _clips(image_index=128), "expected indices of the 'image' points in [0, 128) in `image_indices`. "
                                        "Received: values from 128 to 128"),
    (lambda x: _clips(audio_index=-1), "expected indices of the 'audio' points in [0, 4) in `audio_indices`. "
                                       "Received: values from -1 to -1"),
    (lambda x: {**x, "image_indices": np.full((2, 1), 1.5)}, "expected integer indices of the 'image' points in "
                                                             "`image_indices`"),
    (lambda x: {**x, "label": np.full((2, 5), 7.0, "float32")}, "expected label values (one-hot or soft) in [0, 1] "
                                                                "in `label`. Received: values from 7.0 to 7.0"),
])
def test_multimodal_inputs_are_checked_in_the_users_terms(multimodal, change, message):
    for run in (lambda x: multimodal(x), lambda x: multimodal.predict(x, verbose=0)):
        with pytest.raises(ValueError, match=re.escape(message)):
            run(change(_clips()))
    outputs = multimodal.predict(_clips(), verbose=0)  # a refused call leaves the model working
    assert outputs["image"].shape == (2, 1, 3) and np.isfinite(outputs["audio"]).all()


def test_multimodal_check_finite_is_an_option_kept_by_its_config(multimodal):
    clips = {**_clips(), "image": np.full((2, 2, 8, 8, 3), np.nan, "float32")}
    assert not np.isfinite(multimodal.predict(clips, verbose=0)["image"]).all()  # off by default
    checked = multimodal.__class__.from_config({**multimodal.get_config(), "check_finite": True})
    assert checked.get_config()["check_finite"] is True
    with pytest.raises(ValueError, match=re.escape("got a NaN or infinite value in `image` at index [0, 0, 0, 0, 0] "
                                                   "(check_finite=True)")):
        checked.predict(clips, verbose=0)


def test_a_flow_batch_of_frames_beside_another_batch_of_indices_is_refused():
    model = create_model("flow_small", **FLOW_TINY, use_output_indices=True)
    with pytest.raises(ValueError, match=re.escape("expected every input with the same batch size. Received: "
                                                   "frames.shape=(2, 2, 16, 16, 3), output_indices.shape=(3, 4)")):
        model({"frames": np.zeros((2, 2, 16, 16, 3), "float32"), "output_indices": np.zeros((3, 4), "int32")})
    keras.backend.clear_session()


def test_a_model_keras_that_is_a_folder_and_an_edited_preset_are_named(tmp_path, capsys):
    _, run = _flow_run_reading_sintel(tmp_path)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "preset": "flow_smal"}))
    assert export_cli.main([str(run), "--out", str(tmp_path / "export")]) == 2
    assert "or run.json was edited" in capsys.readouterr().err
    (run / "model.keras").unlink()
    (run / "model.keras").mkdir()
    assert export_cli.main([str(run), "--out", str(tmp_path / "export")]) == 2
    error = capsys.readouterr().err
    assert f"error: {run / 'model.keras'} is a folder; expected the " in error, error
    assert not (tmp_path / "export").exists()


def test_an_empty_out_is_refused_rather_than_training_into_the_current_folder(monkeypatch, capsys):
    from zoo import cli, training

    def trained(*args, **kwargs):
        raise AssertionError("train was called with --out ''")
    monkeypatch.setattr(training, "train", trained)
    assert cli.main(["train", "image_classification", "--preset", "digits", "--out", ""]) == 2
    assert "--out ''" in capsys.readouterr().err


def test_npz_flags_name_the_flag_and_the_file(tmp_path, capsys):
    source = tmp_path / "m.keras"
    source.write_bytes(b"never loaded: the data are read first")
    text, npy, zipped = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    text.write_text("hello")
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    zipped.write_bytes(b"PK\x03\x04" + bytes(30))
    for flag, path, expected in (("--eval-data", tmp_path / "none.npz", "no such file"),
                                 ("--eval-data", tmp_path, "a folder"),
                                 ("--calibration-data", text, "is not a readable .npz file"),
                                 ("--eval-data", zipped, "is not a readable .npz file"),
                                 ("--eval-data", npy, "holds one ndarray, not named arrays")):
        assert export_cli.main([str(source), "--out", str(tmp_path / "out"), flag, str(path)]) == 2
        error = capsys.readouterr().err
        assert f"error: {flag} {path}" in error and expected in error and "Traceback" not in error, error
    assert not (tmp_path / "out").exists()


def test_predict_of_a_list_of_strings_says_what_the_model_takes():
    import zoo

    model = zoo.create_model("digits", num_latents=4, num_latent_channels=8, num_blocks=1,
                             num_self_attention_layers_per_block=1, num_self_attention_heads=1)
    with pytest.raises(ValueError, match=r"Model 'digits' expected arrays of numbers for \['images'\].*"
                                         r"Received: a list of str"):
        model.predict(["a", "b"])


def test_too_few_text_files_for_a_held_out_split_are_named_by_the_flag(tmp_path):
    from zoo.language import data

    (tmp_path / "one.txt").write_text("a few bytes")
    with pytest.raises(ValueError, match=r"--text-files '.*\*\.txt' gives no validation file: every 4th file is held "
                                         r"out for validation, so at least 4 files are needed. Received: 1 file"):
        data.documents("text_files", "validation", files=str(tmp_path / "*.txt"))
