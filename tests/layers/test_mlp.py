import math

import numpy as np
import pytest

from perceiver_keras import PerceiverMLP

from .helpers import random_inputs, randomize_weights, run_layer_test, to_numpy

erf = np.vectorize(math.erf)
GELU = {
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
}


def test_layer(tmp_path):
    layer = run_layer_test(PerceiverMLP, dict(widening_factor=2, activation="gelu_tanh"),
                           random_inputs(0, inputs=(2, 3, 8)), (2, 3, 8), tmp_path)
    assert tuple(layer.dense_in.kernel.shape) == (8, 16)


def mlp_with_random_weights(activation, seed=0):
    layer = PerceiverMLP(widening_factor=3, activation=activation, kernel_initializer="zeros", name="mlp")
    (x,) = random_inputs(seed, x=(2, 5, 4)).values()
    layer(x)
    return randomize_weights(layer, seed, scale=1.0), x  # pre-activations spread over about +-3


@pytest.mark.parametrize("activation", GELU)
def test_gelu_variant_matches_formula(activation):
    layer, x = mlp_with_random_weights(activation)
    w = {v.path: to_numpy(v).astype("float64") for v in layer.weights}
    hidden = GELU[activation](x @ w["mlp/dense_in/kernel"] + w["mlp/dense_in/bias"])
    expected = hidden @ w["mlp/dense_out/kernel"] + w["mlp/dense_out/bias"]
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_gelu_variants_differ():
    exact, x = mlp_with_random_weights("gelu")
    approximate, _ = mlp_with_random_weights("gelu_tanh")
    gap = np.abs(to_numpy(exact(x)) - to_numpy(approximate(x))).max()
    assert gap > 1e-3  # a hundred times the tolerance each variant's own formula is held to
