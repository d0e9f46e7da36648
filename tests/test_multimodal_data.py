"""Tests of the multimodal data: folders of clips (tiny fakes in tmp_path), mocked UCF101, baselines."""

import os
import wave

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.multimodal import baselines, data

pytestmark = pytest.mark.tensorflow_only

RATE = 8000


def epoch(ds):
    return list(ds.as_numpy_iterator())


@pytest.fixture
def clips(tmp_path):
    """Classes "run" (1 clip) and "walk" (2 clips) of 10 frames 12x16 and 3,000 samples; returns
    (root, {(class, clip): (frames uint8, audio float)})."""
    rng, written = np.random.default_rng(0), {}
    for name, clip in (("walk", "b"), ("run", "a"), ("walk", "a")):
        frames = rng.integers(0, 256, (10, 12, 16, 3), dtype=np.uint8)
        audio = rng.uniform(-1, 1, 3000).astype(np.float32)
        data.write_clip(str(tmp_path / name / clip), frames, audio, RATE)
        written[name, clip] = frames, audio
    return tmp_path, written


def test_folder_round_trip(clips):
    root, written = clips
    folder = data.clip_folder(str(root))
    assert folder.class_names == ["run", "walk"] and folder.sample_rate == RATE
    assert [(os.path.basename(os.path.dirname(c.audio)), c.label) for c in folder.clips] == [("a", 0), ("a", 1),
                                                                                               ("b", 1)]
    assert all(len(c.frames) == 10 and c.num_audio_samples == 3000 for c in folder.clips)
    ds = data.folder_dataset(folder, num_frames=4, frame_size=(12, 16), num_audio_samples=1000, batch_size=2,
                             frame_stride=2, frames_per_second=25)
    (x, y), (last, _) = epoch(ds)
    assert x["image"].shape == (2, 4, 12, 16, 3) and x["audio"].shape == (2, 1000, 1) and last["label"].shape == (1, 2)
    assert x["image"].dtype == x["audio"].dtype == x["label"].dtype == np.float32
    for key in x:
        np.testing.assert_array_equal(x[key], y[key])
    for i, key in enumerate([("run", "a"), ("walk", "a"), ("walk", "b")]):
        batch, row = (x, i) if i < 2 else (last, 0)
        frames, audio = written[key]
        # The centred window of 7 frames of 10 starts at frame 1; its audio at 1 / 25 s = 320 samples.
        np.testing.assert_allclose(batch["image"][row], frames[1:8:2] / 255.0, atol=1e-6)
        np.testing.assert_allclose(batch["audio"][row, :, 0], audio[320:1320], atol=1 / 32767)
        np.testing.assert_array_equal(batch["label"][row], np.eye(2)[int(key[0] == "walk")])


def test_folder_training_crops_flips_and_changes_every_epoch(clips):
    root, written = clips
    kwargs = dict(num_frames=8, frame_size=(8, 8), num_audio_samples=2500, batch_size=3, training=True, seed=0)
    ds = data.folder_dataset(str(root), **kwargs)
    (first, _), = epoch(ds)
    (second, _), = epoch(ds)
    assert first["image"].shape == (3, 8, 8, 8, 3) and 0 <= first["image"].min() and first["image"].max() <= 1
    assert not np.allclose(first["image"], second["image"])
    (again, _), = epoch(data.folder_dataset(str(root), **kwargs))
    np.testing.assert_array_equal(again["image"], first["image"])
    # Every clip's audio is a window of its own track.
    for audio, label in zip(first["audio"][..., 0], first["label"].argmax(1)):
        tracks = [a for (name, _), (_, a) in written.items() if (name == "walk") == label]
        assert any(np.abs(np.lib.stride_tricks.sliding_window_view(a, 2500) - audio).max(1).min() < 1e-4
                   for a in tracks)


def write_wav(path, sample_width=2, rate=RATE, length=3000):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1), writer.setsampwidth(sample_width), writer.setframerate(rate)
        writer.writeframes(b"\0" * sample_width * length)


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "run" / "a" / "frame_0003.png").write_bytes(b"not an image"),
     r"Expected an image file \(PNG, JPEG, BMP or GIF\). Received: .*run/a/frame_0003.png"),
    (lambda root: (root / "run" / "a" / "audio.wav").write_bytes(b"RIFF...."),
     "Expected a 16-bit PCM .wav file. Received: .*run/a/audio.wav"),
    (lambda root: write_wav(root / "run" / "a" / "audio.wav", sample_width=1),
     "Expected a 16-bit PCM .wav file. Received: 8-bit samples in .*run/a/audio.wav"),
    (lambda root: write_wav(root / "run" / "a" / "audio.wav", rate=16_000),
     r"Expected one sample rate for every .wav in .*Received: 16000 Hz \(.*run/a/audio.wav\), 8000 Hz"),
    (lambda root: write_wav(root / "run" / "a" / "second.wav"), r"Expected one .wav file in .*run/a. Received: 2"),
    (lambda root: os.remove(root / "run" / "a" / "audio.wav"), r"Expected one .wav file in .*run/a. Received: 0"),
    (lambda root: os.makedirs(root / "jump" / "empty"), r"Expected frame images \(.png.*in .*jump/empty. Received: none"),
    (lambda root: tf.io.write_file(str(root / "walk" / "b" / "frame_0004.png"), tf.io.encode_png(np.zeros((12, 15, 3),
                                                                                                        np.uint8))),
     r"Expected every frame of a clip to be \(16, 12\) \(width, height\), .* Received: \(15, 12\) for .*frame_0004"),
])
def test_damaged_folders_raise(clips, damage, message):
    root, _ = clips
    damage(root)
    with pytest.raises(ValueError, match=message):
        data.clip_folder(str(root))


def test_folder_errors(clips, tmp_path_factory):
    root, _ = clips
    with pytest.raises(ValueError, match="layout root/<class>/<clip>/.* Received: root='/no/such', not a folder"):
        data.clip_folder("/no/such")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match=f"Expected at least one clip folder in root/<class>/. Received: none in {empty}"):
        data.clip_folder(str(empty))
    with pytest.raises(ValueError, match=r"Expected class folders among class_names=\['run'\]. Received: \['walk'\]"):
        data.clip_folder(str(root), class_names=["run"])
    ordered = data.clip_folder(str(root), class_names=["walk", "run", "jump"])
    assert [(clip.audio.split(os.sep)[-3], clip.label) for clip in ordered.clips] == [("walk", 0)] * 2 + [("run", 1)]
    sizes = dict(frame_size=(8, 8), batch_size=2)
    with pytest.raises(ValueError, match=r"at least 13 frames \(num_frames=5, frame_stride=3\). Received: 10 frames in .*run/a"):
        data.folder_dataset(str(root), num_frames=5, frame_stride=3, num_audio_samples=100, **sizes)
    with pytest.raises(ValueError, match="at least num_audio_samples=3001 audio samples. Received: 3000 in .*a/audio"):
        data.folder_dataset(str(root), num_frames=4, num_audio_samples=3001, **sizes)
    with pytest.raises(ValueError, match="Expected frame_stride >= 1. Received: frame_stride=0"):
        data.folder_dataset(str(root), num_frames=4, frame_stride=0, num_audio_samples=100, **sizes)


def test_ucf101_with_mock_data(tmp_path):
    kwargs = dict(num_frames=8, frame_size=(16, 16), num_audio_samples=256, batch_size=4, frame_stride=4,
                  name="ucf101/ucf101_1", data_dir=str(tmp_path))
    # Mock videos have 5 to 49 frames of random sizes: windows of 29 frames often loop.
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        evaluation = data.ucf101_dataset("test", **kwargs)
        first, second = epoch(evaluation), epoch(evaluation)
        training = data.ucf101_dataset("train", training=True, seed=0, **kwargs)
        epoch1, epoch2 = epoch(training), epoch(training)
        assert baselines.mean_prediction_psnr(evaluation)["audio"] == np.inf
    assert [x["image"].shape for x, _ in first] == [(4, 8, 16, 16, 3), (2, 8, 16, 16, 3)]
    for (x, y), (again, _) in zip(first, second):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
            np.testing.assert_array_equal(x[key], again[key])
        assert 0 <= x["image"].min() and x["image"].max() <= 1 and x["image"].std() > 0.1
        assert x["audio"].shape[1:] == (256, 1) and not x["audio"].any()  # Silence: TFDS has no audio.
        assert x["label"].shape[1] == data.UCF101_NUM_CLASSES and np.all(x["label"].sum(1) == 1)
    assert len(epoch1) == 1 and not np.allclose(epoch1[0][0]["image"], epoch2[0][0]["image"])


def test_psnr_and_baselines():
    assert baselines.psnr(np.zeros(4), np.full(4, 0.1), 1.0) == pytest.approx(20.0)
    assert baselines.psnr(np.zeros(4), np.full(4, 0.2), 2.0) == pytest.approx(20.0)
    assert baselines.psnr(np.ones(3), np.ones(3), 1.0) == np.inf
    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(0, 1, (10, 2, 3, 4, 3)), "audio": rng.uniform(-1, 1, (10, 16, 1)),
         "label": np.eye(3)[[0, 1, 1, 2, 1, 0, 1, 1, 2, 2]]}
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(lambda x: (x, x))
    expected = {key: baselines.psnr(x[key], x[key].mean(0, keepdims=True), baselines.PSNR_MAX_VALUE[key])
                for key in ("image", "audio")}
    scores = baselines.trivial_baselines(ds)
    assert scores == pytest.approx({"image_psnr": expected["image"], "audio_psnr": expected["audio"],
                                    "majority_accuracy": 0.5, "chance_accuracy": 1 / 3})
    unbatched = baselines.mean_prediction_psnr(tf.data.Dataset.from_tensor_slices(x))
    assert unbatched == pytest.approx(expected)
    with pytest.raises(ValueError, match="Received: an empty dataset"):
        baselines.mean_prediction_psnr(tf.data.Dataset.from_tensor_slices(x).take(0))


@pytest.mark.parametrize("name, message", [
    ("frame_0002.png", "Cannot decode the image file {}: Invalid PNG data"),
    ("audio.wav", "Cannot decode the .wav file {}: .*"),
])
def test_a_truncated_file_is_named_when_the_pipeline_reads_it(clips, name, message):
    # Headers intact, so clip_folder's up-front checks pass; decoding fails inside tf.data.
    root, _ = clips
    path = root / "run" / "a" / name
    path.write_bytes(path.read_bytes()[:120])
    dataset = data.folder_dataset(str(root), num_frames=10, frame_size=(12, 16), num_audio_samples=2000, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.format(path)):
        epoch(dataset)
