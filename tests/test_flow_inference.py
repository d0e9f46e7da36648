"""zoo/optical_flow/inference.py and predict.py: the dense model, tiled prediction with blending, the CLI."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.optical_flow import build_optical_flow_model
from zoo.optical_flow.formats import read_flo
from zoo.optical_flow.inference import dense_model, normalize_frames, predict_flow, tile_starts, tile_weights
from zoo.optical_flow.predict import main

pytestmark = pytest.mark.tensorflow_only

TILE = (12, 16)
TOY = dict(frame_size=TILE, num_bands=4, patch_channels=8, num_latents=8, num_latent_channels=16,
           num_self_attention_layers_per_block=1, num_self_attention_heads=2)


@pytest.fixture(scope="module")
def trained_like():
    """A toy model with output indices (as training builds it) and weights that give non-zero flow."""
    keras.utils.set_random_seed(0)
    model = build_optical_flow_model(**TOY, use_output_indices=True)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    return model


@pytest.fixture(scope="module")
def dense(trained_like):
    return dense_model(trained_like)


def frames(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


def direct(model, frame1, frame2):
    """The model's own output on one pair of its size, in model units."""
    pair = normalize_frames(np.stack([frame1, frame2]))[None]
    return keras.ops.convert_to_numpy(model(pair))[0]


def pixelwise_stub(tile=TILE):
    """A 'flow model' whose output at a pixel is frame 1's first two channels there."""
    inputs = keras.Input((2, *tile, 3), name="frames")
    return keras.Model(inputs, inputs[:, 0, :, :, :2], name="stub")


def test_dense_model_decodes_every_pixel_like_the_subsampled_one(trained_like, dense):
    assert trained_like.use_output_indices and not dense.use_output_indices
    assert dense.input_shape == (None, 2, *TILE, 3) and dense.output_shape == (None, *TILE, 2)
    pair = normalize_frames(np.stack(frames(TILE + (3,))))[None]
    everything = np.arange(TILE[0] * TILE[1], dtype="int32")[None]
    subsampled = keras.ops.convert_to_numpy(trained_like({"frames": pair, "output_indices": everything}))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense(pair)), subsampled.reshape(1, *TILE, 2))
    assert np.abs(subsampled).max() > 1e-3  # The comparison is not between zeros.
    assert dense_model(dense) is dense  # Already dense at its size.


def test_dense_model_at_a_larger_size_keeps_the_fourier_resolution(trained_like):
    larger = dense_model(trained_like, (24, 32))
    assert larger.output_shape == (None, 24, 32, 2) and larger.preprocessor.max_resolution == TILE
    for a, b in zip(larger.get_weights(), trained_like.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=re.escape("resolution (12, 16). Received: frame_size=(12, 8)")):
        dense_model(trained_like, (12, 8))
    with pytest.raises(ValueError, match="Expected an optical-flow PerceiverIO"):
        dense_model(pixelwise_stub())


@pytest.mark.parametrize("size, tile, overlap", [(12, 12, 3), (24, 12, 0), (24, 12, 3), (29, 12, 5), (436, 368, 20),
                                                 (1024, 496, 20), (700, 368, 20)])
def test_tiles_cover_the_axis_with_the_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] == size - tile and starts == sorted(set(starts))
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # Overlap at least `overlap`.
    if len(starts) > 1:  # The fewest tiles: one tile fewer could not keep the overlap.
        assert (len(starts) - 2) * (tile - overlap) < size - tile
    assert tile_weights((3, 5)).tolist() == [[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]]


def test_a_pair_of_the_tile_size_gives_the_models_output_times_the_scale(dense):
    frame1, frame2 = frames(TILE + (3,))
    flow = predict_flow(dense, frame1, frame2, flow_scale=20.0)
    np.testing.assert_allclose(flow, 20.0 * direct(dense, frame1, frame2), rtol=1e-6, atol=1e-7)
    as_floats = predict_flow(dense, frame1 / 255.0, frame2 / 255.0, flow_scale=20.0)  # [0, 1] floats
    np.testing.assert_allclose(as_floats, flow, atol=1e-6)


@pytest.mark.parametrize("shape, overlap", [((29, 41), 5), ((24, 32), 0), ((12, 33), 3)])
def test_blending_reproduces_a_pixelwise_function_exactly(shape, overlap):
    frame1, frame2 = frames(shape + (3,), seed=1)
    flow = predict_flow(pixelwise_stub(), frame1, frame2, overlap=overlap, flow_scale=2.5, batch_size=3)
    expected = 2.5 * normalize_frames(frame1)[..., :2]
    np.testing.assert_allclose(flow, expected, rtol=1e-5, atol=1e-6)
    inputs = keras.Input((2, *TILE, 3))
    constant = keras.Model(inputs, keras.ops.zeros_like(inputs[:, 0, :, :, :2]) + 0.25)  # The same on every tile.
    np.testing.assert_allclose(predict_flow(constant, frame1, frame2, flow_scale=4.0), 1.0, rtol=1e-6)


def test_a_pair_of_twice_the_tile_size_matches_the_tiles_where_they_do_not_overlap(trained_like, dense):
    frame1, frame2 = frames((24, 32, 3), seed=2)
    h, w = TILE

    def tile(y, x):
        return 20.0 * direct(dense, frame1[y:y + h, x:x + w], frame2[y:y + h, x:x + w])

    stitched = predict_flow(trained_like, frame1, frame2, overlap=0)  # Four tiles, side by side.
    top, bottom = np.concatenate([tile(0, 0), tile(0, w)], 1), np.concatenate([tile(h, 0), tile(h, w)], 1)
    expected = np.concatenate([top, bottom])
    np.testing.assert_allclose(stitched, expected, rtol=1e-5, atol=1e-6)
    blended = predict_flow(dense, frame1, frame2, overlap=3)  # Tiles start at 0, 6, 12 and 0, 8, 16.
    assert tile_starts(24, 12, 3) == [0, 6, 12] and tile_starts(32, 16, 3) == [0, 8, 16]
    np.testing.assert_allclose(blended[:6, :8], tile(0, 0)[:6, :8], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blended[-6:, -8:], tile(12, 16)[-6:, -8:], rtol=1e-5, atol=1e-6)
    assert np.abs(blended - stitched).max() > 1e-4  # Elsewhere the overlapping tiles are blended.


@pytest.mark.parametrize("shapes, message", [
    (((24, 32, 3), (24, 30, 3)), "Expected two frames of one shape. Received: frame1.shape=(24, 32, 3), "
                                 "frame2.shape=(24, 30, 3)"),
    (((24, 32, 4), (24, 32, 4)), "Expected frames of shape (height, width, 3). Received: shape=(24, 32, 4)"),
    (((24, 32), (24, 32)), "Expected frames of shape (height, width, 3). Received: shape=(24, 32)"),
    (((10, 32, 3), (10, 32, 3)), "Expected frames of at least the tile size 12x16 (height x width). Received: 10x32"),
])
def test_bad_frames_raise_naming_expected_and_received(dense, shapes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        predict_flow(dense, np.zeros(shapes[0], np.uint8), np.zeros(shapes[1], np.uint8))


def test_bad_values_and_arguments_raise(dense):
    frame = np.zeros((12, 16, 3), np.float32)
    with pytest.raises(ValueError, match=re.escape("Expected float frames in [0, 1] (or uint8 frames in 0..255). "
                                                   "Received: values in [0, 255]")):
        predict_flow(dense, frame, frame + 255)
    with pytest.raises(ValueError, match=re.escape("Expected an int 0 <= overlap < 12 (the shorter tile side). "
                                                   "Received: overlap=12")):
        predict_flow(dense, frame, frame, overlap=12)
    with pytest.raises(ValueError, match="Unknown normalization"):
        predict_flow(dense, frame, frame, normalization="imagenet")
    with pytest.raises(ValueError, match=re.escape("Expected tile_size=(12, 16), the frame size of 'stub'")):
        predict_flow(pixelwise_stub(), frame, frame, tile_size=(8, 8))


def test_cli_writes_the_colour_image_and_the_flo_file(trained_like, tmp_path, capsys):
    frame1, frame2 = frames((20, 40, 3), seed=3)
    for name, frame in (("a.png", frame1), ("b.png", frame2)):
        tf.io.write_file(str(tmp_path / name), tf.io.encode_png(frame))
    run = tmp_path / "run"
    run.mkdir()
    trained_like.save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({"preset": "flow_small", "imports": ["perceiver_keras"]}))
    argv = ["--frames", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(tmp_path / "flow.png")]
    assert main([str(run), *argv, "--flo", str(tmp_path / "flow.flo")]) == 0
    assert "flow 20x40" in capsys.readouterr().out
    expected = predict_flow(trained_like, frame1, frame2)  # flow_small's conventions are the defaults.
    np.testing.assert_allclose(read_flo(str(tmp_path / "flow.flo")), expected, rtol=1e-5, atol=1e-6)
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "flow.png"))).numpy()
    assert image.shape == (20, 40, 3)
    assert main([str(run / "model.keras"), *argv, "--flow-scale", "1"]) == 0  # A bare .keras file.
    assert main([str(tmp_path / "missing.keras"), *argv]) == 2
    assert "Expected a run directory" in capsys.readouterr().err
    small = tmp_path / "small.png"
    tf.io.write_file(str(small), tf.io.encode_png(frame1[:8]))
    assert main([str(run), "--frames", str(small), str(small), "--out", str(tmp_path / "x.png")]) == 2
    assert "at least the tile size 12x16" in capsys.readouterr().err
