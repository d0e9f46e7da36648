import keras
import numpy as np
import pytest

from perceiver_keras import (
    FourierPositionEncoding,
    FourierQuery,
    InputQuery,
    TrainablePositionEncoding,
    fourier_features,
)
from perceiver_keras.fourier import float32_linspace, subsampled_positions

from .helpers import fourier_reference, run_layer_test, to_numpy

BATCH = 2
FOURIER_CASES = {
    "1d": (dict(index_dims=7, num_bands=3), 7, 7),
    "2d": (dict(index_dims=(3, 4), num_bands=2), 12, 10),
    "3d": (dict(index_dims=(2, 3, 4), num_bands=2), 24, 15),
    "sine_only": (dict(index_dims=(3, 4), num_bands=3, sine_only=True), 12, 8),
    "no_pos": (dict(index_dims=(3, 4), num_bands=3, concat_pos=False), 12, 12),
}


@pytest.mark.parametrize("case", FOURIER_CASES)
def test_fourier_layer(case, tmp_path):
    kwargs, positions, channels = FOURIER_CASES[case]
    inputs = {"inputs": np.zeros((BATCH, positions, 1))}
    run_layer_test(FourierPositionEncoding, kwargs, inputs, (BATCH, positions, channels), tmp_path,
                   run_training_check=False)


def test_fourier_projection_of_subsampled_positions(tmp_path):
    inputs = {"inputs": np.zeros((BATCH, 12, 1)), "indices": np.array([[0, 5, 11], [3, 3, 7]])}
    run_layer_test(FourierPositionEncoding, dict(index_dims=(3, 4), num_bands=2, projection_channels=5), inputs,
                   (BATCH, 3, 5), tmp_path)


FORMULA_CASES = [
    dict(index_dims=(7,), num_bands=3),
    dict(index_dims=(3, 4), num_bands=4),
    dict(index_dims=(2, 3, 4), num_bands=2),
    dict(index_dims=(3, 4), num_bands=3, sine_only=True),
    dict(index_dims=(3, 4), num_bands=3, concat_pos=False),
    dict(index_dims=(4, 5), num_bands=3, max_resolution=(16, 3)),
]


@pytest.mark.parametrize("kwargs", FORMULA_CASES)
def test_fourier_features_match_formula(kwargs):
    features = to_numpy(FourierPositionEncoding(**kwargs)(np.zeros((BATCH, 1))))
    expected = fourier_reference(**kwargs)
    np.testing.assert_allclose(features, np.broadcast_to(expected, features.shape), atol=1e-5)


@pytest.mark.parametrize("kwargs", FORMULA_CASES)
def test_fourier_subsampled_positions(kwargs):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, np.prod(kwargs["index_dims"]), size=(BATCH, 5)).astype("int32")
    features = to_numpy(FourierPositionEncoding(**kwargs)(np.zeros((BATCH, 1)), indices=indices))
    for row, index in zip(features, indices):
        np.testing.assert_allclose(row, fourier_reference(**kwargs, indices=index), atol=1e-5)


@pytest.mark.parametrize("index_dims,num_bands,max_resolution", [((1920,), 192, (30720,)), ((4, 6, 5), 3, (4, 24, 20))])
def test_subsampled_fourier_features_are_exact_float32_on_every_backend(index_dims, num_bands, max_resolution):
    """Features gathered from the per-axis tables equal the float32 formula bit for bit on each backend."""
    axes = [subsampled_positions(n) for n in index_dims]
    positions = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(index_dims))
    freqs = np.stack([float32_linspace(1.0, r / 2, num_bands) for r in max_resolution])
    angles = (np.float32(np.pi) * (positions[:, :, None] * freqs)).reshape(len(positions), -1).astype("float64")
    expected = np.concatenate([positions, np.sin(angles).astype("float32"), np.cos(angles).astype("float32")], -1)
    indices = np.random.default_rng(0).permutation(len(positions))[None, :50].astype("int32")
    query = FourierQuery(index_dims, num_bands, max_resolution=max_resolution)
    np.testing.assert_array_equal(to_numpy(query(np.zeros((1, 1)))), expected[None])
    np.testing.assert_array_equal(to_numpy(query(np.zeros((1, 1)), indices)), expected[indices])
    encoding = FourierPositionEncoding(index_dims, num_bands, max_resolution=max_resolution)
    np.testing.assert_array_equal(to_numpy(encoding(np.zeros((1, 1)), indices=indices)), expected[indices])
    on_the_fly = fourier_features(keras.ops.convert_to_tensor(positions), num_bands, max_resolution)
    np.testing.assert_allclose(to_numpy(on_the_fly), expected, atol=2e-7)  # the backend's float32 sine


def test_trainable_position_encoding(tmp_path):
    indices = np.array([[5, 0], [2, 2]])
    kwargs = dict(index_dims=(2, 3), encoding_channels=8, projection_channels=4)
    layer = run_layer_test(TrainablePositionEncoding, kwargs,
                           {"inputs": np.zeros((BATCH, 1)), "indices": indices}, (BATCH, 2, 4), tmp_path)
    full = to_numpy(layer(np.zeros((BATCH, 1))))
    assert full.shape == (BATCH, 6, 4)
    np.testing.assert_allclose(to_numpy(layer(np.zeros((BATCH, 1)), indices)),
                               np.take_along_axis(full, indices[..., None], axis=1), atol=1e-6)


def test_trainable_position_encoding_without_projection():
    layer = TrainablePositionEncoding(index_dims=(2, 3), encoding_channels=8)
    outputs = to_numpy(layer(np.zeros((BATCH, 4, 1))))
    assert outputs.shape == (BATCH, 6, 8)
    np.testing.assert_array_equal(outputs[1], to_numpy(layer.embeddings))
    assert layer.get_config()["initializer"]["config"]["stddev"] == 0.02


def test_input_query(tmp_path):
    x = np.random.default_rng(0).normal(size=(BATCH, 6, 3))
    run_layer_test(InputQuery, {}, {"inputs": x}, (BATCH, 6, 3), tmp_path, run_training_check=False)
    indices = np.array([[0, 5, 5, 1], [4, 3, 2, 0]])
    run_layer_test(InputQuery, {}, {"inputs": x, "indices": indices}, (BATCH, 4, 3), tmp_path,
                   run_training_check=False)
    np.testing.assert_allclose(to_numpy(InputQuery()(x.astype("float32"), indices.astype("int32"))),
                               np.take_along_axis(x, indices[..., None], axis=1), atol=1e-6)


def test_sinusoidal_initializer_gives_distinct_ordered_rows_of_the_asked_scale():
    from perceiver_keras import SinusoidalInitializer

    table = to_numpy(SinusoidalInitializer(stddev=0.02)((64, 16)))
    assert table.shape == (64, 16)
    np.testing.assert_allclose(np.sqrt(np.mean(table**2)), 0.02, rtol=0.05)
    np.testing.assert_allclose(table[0, 8:], 0.02 * np.sqrt(2.0), rtol=1e-6)  # cos(0) of every frequency
    distances = np.linalg.norm(table[:, None] - table[None], axis=-1)
    assert distances[~np.eye(64, dtype=bool)].min() > 1e-3  # every position has its own row
    assert distances[0, 1] < distances[0, 8]  # neighbours are closer than distant positions
    clone = SinusoidalInitializer.from_config(SinusoidalInitializer(0.1, 100.0).get_config())
    assert (clone.stddev, clone.max_wavelength) == (0.1, 100.0)
    with pytest.raises(ValueError, match=r"Received: shape=\(4,\)"):
        SinusoidalInitializer()((4,))
