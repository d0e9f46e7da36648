import json

import keras
import numpy as np
import pytest

from perceiver_keras import (
    FourierPositionEncoding,
    InputQuery,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    TrainablePositionEncoding,
)

from .helpers import (
    TOLERANCE,
    assert_fit_step,
    assert_saved_model_round_trip,
    randomize_weights,
    replace_masked,
    to_numpy,
)

BATCH, M, C = 2, 12, 5
INDICES = [[0, 3, 11], [5, 5, 2]]


def make_model(query, **kwargs):
    return PerceiverIO(
        encoder=PerceiverEncoder(4, 8, num_blocks=2, num_self_attention_layers_per_block=1,
                                 num_self_attention_heads=2),
        decoder=PerceiverDecoder(num_heads=2, output_channels=3),
        query=query, inputs_shape=(M, C), **kwargs,
    )


def model_inputs(indices, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((BATCH, M), "int32")
    mask[0, -4:] = 0
    return {"inputs": rng.normal(size=(BATCH, M, C)).astype("float32"), "padding_mask": mask,
            "output_indices": np.asarray(indices, "int32")}


@pytest.fixture
def model():
    return make_model(TrainablePositionEncoding(index_dims=M, encoding_channels=6), use_padding_mask=True,
                      use_output_indices=True)


def test_config_round_trip(model):
    inputs = model_inputs(INDICES)
    config = model.get_config()
    clone = PerceiverIO.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(to_numpy(clone(inputs)), to_numpy(model(inputs)), **TOLERANCE)


def test_saved_model_round_trip(model, tmp_path):
    inputs = model_inputs(INDICES)
    loaded = assert_saved_model_round_trip(model, inputs, tmp_path)
    assert isinstance(loaded, PerceiverIO)
    # Through JSON, the build shapes' tuples come back as lists.
    assert loaded.get_config() == json.loads(json.dumps(model.get_config()))


def test_fit_step(model):
    # Compiled, unlike the layer tests: one traced train step covers every layer in graph mode.
    assert_fit_step(model, model_inputs(INDICES), run_eagerly=False)


def test_padding_mask_hides_padded_inputs(model):
    randomize_weights(model, scale=0.3)
    inputs = model_inputs(INDICES)
    changed = dict(inputs, inputs=replace_masked(inputs["inputs"], inputs["padding_mask"]))
    np.testing.assert_allclose(to_numpy(model(changed)), to_numpy(model(inputs)), atol=1e-5)
    unmasked = dict(changed, padding_mask=np.ones_like(inputs["padding_mask"]))
    assert not np.allclose(to_numpy(model(unmasked)), to_numpy(model(inputs)), atol=1e-3)


def gather(values, indices):
    return np.take_along_axis(values, np.asarray(indices)[..., None], axis=1)


@pytest.mark.parametrize("query", ["trainable", "input"])
def test_subsampled_decoding_equals_gathered_full_decoding(query):
    query = TrainablePositionEncoding(index_dims=M, encoding_channels=6) if query == "trainable" else InputQuery()
    model = randomize_weights(make_model(query, use_padding_mask=True, use_output_indices=True), scale=0.3)
    full = to_numpy(model(model_inputs(np.tile(np.arange(M), (BATCH, 1)))))
    subset = to_numpy(model(model_inputs(INDICES)))
    assert subset.shape == (BATCH, 3, 3)
    np.testing.assert_allclose(subset, gather(full, INDICES), rtol=1e-5, atol=1e-6)


def test_fourier_query_subsampled_decoding():
    # Subsampled Fourier positions follow the reference's -1 + 2 i / n, not the full grid's
    # linspace, so only the wiring is checked: the model decodes exactly those queries.
    query = FourierPositionEncoding(index_dims=(3, 4), num_bands=2)
    model = make_model(query, use_output_indices=True)
    inputs = model_inputs(INDICES)
    del inputs["padding_mask"]
    outputs = model.predict(inputs, verbose=0)  # compiled: the index arithmetic runs in graph mode
    assert outputs.shape == (BATCH, 3, 3)
    queries = query(inputs["inputs"], indices=inputs["output_indices"])
    assert tuple(queries.shape) == (BATCH, 3, 10)
    expected = model.decoder(queries, model.encoder(inputs["inputs"]))
    np.testing.assert_allclose(outputs, to_numpy(expected), rtol=1e-5, atol=1e-5)


def test_single_tensor_input_without_mask_or_indices():
    model = make_model(TrainablePositionEncoding(index_dims=1, encoding_channels=6))
    assert isinstance(model.input, keras.KerasTensor)
    assert tuple(model.input.shape) == (None, M, C)
    assert tuple(model.output.shape) == (None, 1, 3)
