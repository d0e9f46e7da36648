"""Tests of the Middlebury flow colour coding."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.optical_flow.visualize import flow_to_color, make_colorwheel, save_flow_png


def uniform(u, v, shape=(3, 4)):
    return np.broadcast_to(np.array([u, v], np.float32), (*shape, 2))


def test_the_wheel():
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3)
    # Its primaries start the segments RY 15, YG 6, GC 4, CB 11, BM 13, MR 6.
    primaries = {0: (255, 0, 0), 15: (255, 255, 0), 21: (0, 255, 0), 25: (0, 255, 255), 36: (0, 0, 255),
                 49: (255, 0, 255)}
    for index, color in primaries.items():
        np.testing.assert_array_equal(wheel[index], color)
    np.testing.assert_array_equal(wheel[1], (255, np.floor(255 / 15), 0))


def test_zero_flow_is_white_and_rightward_flow_red():
    np.testing.assert_array_equal(flow_to_color(np.zeros((2, 3, 2))), np.full((2, 3, 3), 255, np.uint8))
    image = flow_to_color(uniform(4.0, 0.0))
    assert image.dtype == np.uint8 and image.shape == (3, 4, 3)
    np.testing.assert_array_equal(image, np.broadcast_to([255, 0, 0], (3, 4, 3)))  # The wheel at angle 0.
    np.testing.assert_array_equal(flow_to_color(uniform(4.0, -0.0)), image)  # Whatever zero's sign.
    np.testing.assert_array_equal(flow_to_color(uniform(4.0, 0.0), max_flow=4.0), image)


def test_hue_is_direction_and_saturation_is_magnitude():
    wheel = make_colorwheel()
    # a = atan2(-v, -u) / pi in [-1, 1] runs over the wheel: downward (v > 0) is a = -1/2, a quarter turn.
    down = flow_to_color(uniform(0.0, 1.0), max_flow=1.0)[0, 0]
    np.testing.assert_array_equal(down, np.floor((wheel[13] + wheel[14]) / 2))
    colors = {tuple(flow_to_color(uniform(u, v), max_flow=1.0)[0, 0]) for u, v in ((1, 0), (0, 1), (-1, 0), (0, -1))}
    assert len(colors) == 4
    half = flow_to_color(uniform(0.0, 0.5), max_flow=1.0)[0, 0]
    np.testing.assert_allclose(half, 255 * (1 - 0.5 * (1 - down / 255)), atol=1.5)  # Halfway to white.
    beyond = flow_to_color(uniform(0.0, 2.0), max_flow=1.0)[0, 0]
    np.testing.assert_allclose(beyond, 0.75 * np.floor((wheel[13] + wheel[14]) / 2), atol=1)  # Darker.
    # Without max_flow, the longest vector of the field is fully saturated.
    field = np.concatenate([uniform(0.0, 0.5, (1, 2)), uniform(0.0, 1.0, (1, 2))])
    np.testing.assert_array_equal(flow_to_color(field), flow_to_color(field, max_flow=1.0))


@pytest.mark.parametrize("flow, message", [
    (np.zeros((3, 4)), r"shape \(H, W, 2\). Received: flow.shape=\(3, 4\)"),
    (np.zeros((3, 4, 3)), r"shape \(H, W, 2\). Received: flow.shape=\(3, 4, 3\)"),
    (np.full((1, 1, 2), np.nan), "finite flow values. Received: 2 NaN"),
])
def test_bad_flow(flow, message):
    with pytest.raises(ValueError, match=message):
        flow_to_color(flow)
    with pytest.raises(ValueError, match="max_flow > 0. Received: max_flow=0"):
        flow_to_color(np.zeros((1, 1, 2)), max_flow=0)


def test_save_flow_png(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2))
    save_flow_png(str(tmp_path / "flow.png"), flow)
    decoded = tf.io.decode_png(tf.io.read_file(str(tmp_path / "flow.png"))).numpy()
    np.testing.assert_array_equal(decoded, flow_to_color(flow))
