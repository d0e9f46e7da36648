"""Tests of the offline synthetic audio-visual dataset: moving class shapes that sound class tones."""

import numpy as np
import pytest

from zoo.multimodal import synthetic

pytestmark = pytest.mark.tensorflow_only

SIZES = dict(num_frames=8, frame_size=(24, 32), num_audio_samples=2048, num_classes=10)


def epoch(ds):
    return list(ds.as_numpy_iterator())


def clips(ds):
    """One pass as one dict of arrays, after checking that every target is its input."""
    batches = epoch(ds)
    for x, y in batches:
        assert x.keys() == y.keys() == {"image", "audio", "label"}
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    return {key: np.concatenate([x[key] for x, _ in batches]) for key in batches[0][0]}


def shape_pixels(frames):
    """The shape's pixels: saturated colour (the background is nearly grey)."""
    return frames.max(-1) - frames.min(-1) > 0.6


def test_evaluation_clips_are_fixed_balanced_and_in_range():
    ds = synthetic.synthetic_av_dataset("validation", batch_size=8, num_clips=20, **SIZES)
    batches = epoch(ds)
    assert [x["label"].shape for x, _ in batches] == [(8, 10), (8, 10), (4, 10)]
    first, second = clips(ds), clips(ds)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    image, audio, label = first["image"], first["audio"], first["label"]
    assert image.shape == (20, 8, 24, 32, 3) and audio.shape == (20, 2048, 1) and label.shape == (20, 10)
    assert image.dtype == audio.dtype == label.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1 and np.abs(audio).max() <= 1
    np.testing.assert_array_equal(label, np.eye(10)[np.arange(20) % 10])
    # The shape moves: consecutive frames differ in every clip.
    assert np.all(np.abs(np.diff(image, axis=1)).max(axis=(2, 3, 4)) > 0.05)


def test_training_clips_change_every_epoch_and_splits_differ():
    kwargs = dict(batch_size=4, num_clips=10, training=True, seed=3, **SIZES)
    training = synthetic.synthetic_av_dataset("train", **kwargs)
    epoch1, epoch2 = clips(training), clips(training)
    assert len(epoch1["label"]) == 8  # The remainder is dropped.
    assert not np.allclose(epoch1["image"], epoch2["image"])
    np.testing.assert_array_equal(clips(synthetic.synthetic_av_dataset("train", **kwargs))["audio"], epoch1["audio"])
    validation = clips(synthetic.synthetic_av_dataset("validation", **kwargs))
    assert not np.allclose(validation["image"], epoch1["image"])
    labels = np.concatenate([clips(training)["label"].argmax(1) for _ in range(5)])
    assert len(set(labels)) >= 8  # Uniform random classes.


def test_tone_and_loudness_follow_class_and_motion():
    ds = synthetic.synthetic_av_dataset("validation", batch_size=20, num_clips=20, sample_rate=16_000, **SIZES)
    data = clips(ds)
    centres = np.array(synthetic.tone_frequencies(10))
    step = np.log(centres[1] / centres[0])
    spectrum = np.abs(np.fft.rfft(data["audio"][..., 0] * np.hanning(2048), axis=1))
    peak = spectrum.argmax(axis=1) * 16_000 / 2048
    labels = data["label"].argmax(1)
    # Within a quarter class step of detuning plus one FFT bin; the nearest class tone is the label's.
    assert np.all(np.abs(np.log(peak / centres[labels])) <= 0.25 * step + 8 / peak)
    np.testing.assert_array_equal(np.abs(np.log(peak[:, None] / centres[None])).argmin(1), labels)

    # Loudness follows the shape's height: louder (RMS per frame's audio) when the shape is higher.
    correlations = []
    for frames, audio in zip(data["image"], data["audio"][..., 0]):
        rows = [np.nonzero(shape_pixels(frame))[0].mean() for frame in frames]
        rms = np.sqrt((audio.reshape(8, -1) ** 2).mean(1))
        if np.ptp(rows) > 2:
            correlations.append(np.corrcoef(rows, rms)[0, 1])
    assert len(correlations) >= 10 and np.median(correlations) < -0.8


def test_patch_locked_tones_repeat_every_patch():
    ds = synthetic.synthetic_av_dataset("validation", batch_size=10, num_clips=10, tone_period=32, **SIZES)
    audio = clips(ds)["audio"][..., 0]
    spectrum = np.abs(np.fft.rfft(audio, axis=1))
    np.testing.assert_allclose(spectrum.argmax(axis=1) * 16_000 / 2048, synthetic.tone_frequencies(10, tone_period=32))
    # Every 32-sample patch is the clip's one waveform, scaled by the loudness (up to the noise).
    patches = audio.reshape(10, 64, 32)
    patches /= np.linalg.norm(patches, axis=2, keepdims=True)
    assert np.einsum("cpj,cqj->cpq", patches, patches).min() > 0.95


def test_class_shapes_have_class_colours():
    data = clips(synthetic.synthetic_av_dataset("validation", batch_size=10, num_clips=10, **SIZES))
    hues = []
    for frames in data["image"]:
        shape = frames[shape_pixels(frames)]
        assert len(shape) > 8 * 15  # At least 15 pixels a frame.
        red, green, blue = shape.mean(0)
        hues.append(np.degrees(np.arctan2(np.sqrt(3) * (green - blue), 2 * red - green - blue)))
    error = (np.array(hues) - np.arange(10) * 36 + 180) % 360 - 180
    assert np.abs(error).max() < 8


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="test"), "Expected one of: train, validation. Received: split='test'"),
    (dict(frame_size=(4, 32)), r"ints >= 8. Received: frame_size=\(4, 32\)"),
    (dict(num_frames=0), "Expected num_frames >= 1. Received: num_frames=0"),
    (dict(batch_size=2.0), "Expected batch_size >= 1. Received: batch_size=2.0"),
    (dict(frequency_range=(250.0, 9000.0)), r"< sample_rate / 2 = 8000 Hz. Received: frequency_range=\(250.0, 9000.0\)"),
    (dict(audio_noise=0.5), "Expected 0 <= audio_noise <= 0.1. Received: audio_noise=0.5"),
    (dict(tone_period=16), "Expected tone_period=None or an int > 2 \\* num_classes = 20 .*Received: tone_period=16"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.synthetic_av_dataset(**({"split": "train", "batch_size": 2, **SIZES} | kwargs))
