import numpy as np

from perceiver_keras import PerceiverDecoder

from .helpers import (
    assert_config_round_trip,
    assert_output_shape,
    random_inputs,
    randomize_weights,
    run_layer_test,
    to_numpy,
)

SHAPES = dict(query=(2, 3, 6), latents=(2, 4, 8))  # as in the PerceiverIO model tests: JAX reuses their kernels


def test_layer_with_projection_and_query_mask(tmp_path):
    inputs = dict(random_inputs(0, **SHAPES), query_mask=np.array([[1, 0, 1], [1, 1, 1]]))
    kwargs = dict(num_heads=2, output_channels=3, use_query_residual=True, activation="gelu_tanh")
    run_layer_test(PerceiverDecoder, kwargs, inputs, (2, 3, 3), tmp_path)


def test_layer_without_projection():
    decoder = PerceiverDecoder(num_heads=2, shape_for_attention="q", use_query_residual=True)
    assert_output_shape(decoder, random_inputs(0, **SHAPES), (2, 3, 6))
    assert_config_round_trip(decoder, random_inputs(0, **SHAPES))


def test_queries_are_decoded_independently():
    decoder = PerceiverDecoder(num_heads=2, output_channels=3)
    decoder.build(SHAPES["query"], SHAPES["latents"])
    randomize_weights(decoder)
    inputs = random_inputs(0, **SHAPES)
    full = to_numpy(decoder(**inputs))
    subset = [2, 0]
    part = to_numpy(decoder(inputs["query"][:, subset], inputs["latents"]))
    np.testing.assert_allclose(part, full[:, subset], rtol=1e-5, atol=1e-6)


def test_projection_initializer():
    decoder = PerceiverDecoder(output_channels=3, projection_initializer="zeros")
    outputs = decoder(**random_inputs(0, **SHAPES))
    assert np.all(to_numpy(outputs) == 0.0)
    assert decoder.projection.kernel.path.endswith("projection/kernel")
