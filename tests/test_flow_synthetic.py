"""Tests of the offline synthetic optical-flow dataset (scikit-learn's photos, exact flow)."""

import numpy as np
import pytest
from sklearn.datasets import load_sample_images

from zoo.optical_flow import augment, data, synthetic

pytestmark = pytest.mark.tensorflow_only

SIZE = (40, 56)


def epoch(ds):
    return list(ds.as_numpy_iterator())


def visible(flow):
    """Pixels whose match x + flow(x) lies inside frame 2."""
    height, width = flow.shape[:2]
    target = augment.pixel_grid(height, width).numpy() + flow
    x, y = target[..., 0], target[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def test_ground_truth_is_exact():
    """Frame 2 warped back with the returned flow is frame 1, wherever the match is in view."""
    ds = synthetic.synthetic_flow_dataset("validation", size=SIZE, batch_size=8, num_pairs=16)
    (frames, flow), (more_frames, more_flow) = epoch(ds)
    worst, seen = 0.0, []
    for pair, pair_flow in zip(np.concatenate([frames, more_frames]), np.concatenate([flow, more_flow])):
        warped = augment.backward_warp(pair[1], pair_flow).numpy()
        inside = visible(pair_flow)
        worst = max(worst, np.abs(warped - pair[0])[inside].max())
        seen.append(inside.mean())
        assert np.abs(pair[0] - pair[1]).max() > 1e-3  # The frames do differ (some crops are of flat sky).
    assert worst < 1e-4 and np.mean(seen) > 0.8  # float32 rounding of the sample positions
    magnitude = np.linalg.norm(flow, axis=-1).max(axis=(1, 2))
    assert np.all(magnitude <= min(SIZE) / 10 + 1e-4) and np.all(magnitude >= 0.2 * min(SIZE) / 10 - 1e-4)


def test_evaluation_is_fixed_and_training_changes_every_epoch():
    evaluation = synthetic.synthetic_flow_dataset("validation", size=SIZE, batch_size=4, num_pairs=4)
    first, second = epoch(evaluation)[0], epoch(evaluation)[0]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0].shape == (4, 2, *SIZE, 3) and first[1].shape == (4, *SIZE, 2)
    assert first[0].dtype == first[1].dtype == np.float32

    training = synthetic.synthetic_flow_dataset("train", size=SIZE, batch_size=4, num_pairs=8, training=True, seed=0)
    epoch1, epoch2 = epoch(training), epoch(training)
    assert len(epoch1) == 2 and not np.allclose(epoch1[0][1], epoch2[0][1])
    reseeded = synthetic.synthetic_flow_dataset("train", size=SIZE, batch_size=4, num_pairs=8, training=True, seed=0)
    np.testing.assert_array_equal(epoch(reseeded)[0][1], epoch1[0][1])
    frames = np.concatenate([f for f, _ in epoch1])
    assert frames.min() >= 0 and frames.max() <= 1
    # Rescaling and flips keep the flow exact (photometric noise would not).
    plain = synthetic.synthetic_flow_dataset("train", size=SIZE, batch_size=8, num_pairs=8, training=True, seed=1,
                                             photometric=False)
    for pair, pair_flow in zip(*epoch(plain)[0]):
        warped = augment.backward_warp(pair[1], pair_flow).numpy()
        assert np.abs(warped - pair[0])[visible(pair_flow)].max() < 1e-4


def test_splits_use_disjoint_photo_halves():
    train, validation = synthetic.photo_regions("train"), synthetic.photo_regions("validation")
    assert train.shape == validation.shape == (2, 427, 320, 3)
    photos = load_sample_images().images
    for i, photo in enumerate(photos):
        np.testing.assert_array_equal(np.concatenate([train[i], validation[i]], axis=1), photo)


def test_zero_flow_baseline_is_the_mean_magnitude():
    ds = synthetic.synthetic_flow_dataset("validation", size=SIZE, batch_size=3, num_pairs=5, max_flow=2.0)
    flows = np.concatenate([flow for _, flow in epoch(ds)])
    assert data.zero_flow_epe(ds) == pytest.approx(np.linalg.norm(flows, axis=-1).mean())
    assert 0.2 < data.zero_flow_epe(ds) < 2.0


def test_window_candidates_keep_textured_windows_with_the_same_flows():
    """Motion over flat sky is invisible: with one window 9 of these 16 held-out pairs have a frame 2
    flatter than 0.01 (mean grey step), which no model can beat zero flow on; the most textured of eight
    windows never is, and the pairs stay exact."""
    (plain, flow), = epoch(synthetic.synthetic_flow_dataset("validation", size=SIZE, batch_size=16, num_pairs=16))
    (textured, same_flow), = epoch(synthetic.synthetic_flow_dataset("validation", size=SIZE, batch_size=16,
                                                                    num_pairs=16, window_candidates=8))
    np.testing.assert_array_equal(flow, same_flow)
    assert (synthetic.texture(plain[:, 1]).numpy() < 0.01).sum() >= 8
    assert synthetic.texture(textured[:, 1]).numpy().min() > 0.02
    for pair, pair_flow in zip(textured, flow):
        warped = augment.backward_warp(pair[1], pair_flow).numpy()
        assert np.abs(warped - pair[0])[visible(pair_flow)].max() < 1e-4


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="test"), "Expected one of: train, validation. Received: split='test'"),
    (dict(size=(4, 56)), r"size=\(height, width\), ints >= 8. Received: size=\(4, 56\)"),
    (dict(batch_size=0), "Expected batch_size >= 1. Received: batch_size=0"),
    (dict(max_flow=500.0), "Expected 0 < max_flow <= 80 pixels. Received: max_flow=500.0"),
    (dict(window_candidates=0), "Expected window_candidates >= 1. Received: window_candidates=0"),
])
def test_bad_arguments(kwargs, message):
    arguments = dict(split="train", size=SIZE, batch_size=2) | kwargs
    with pytest.raises(ValueError, match=message):
        synthetic.synthetic_flow_dataset(**arguments)
