"""`model(x)` on TensorFlow runs a built model through one cached tf.function, with Keras' own results."""

import keras
import numpy as np
import pytest

from perceiver_keras import TrainablePositionEncoding

from .helpers import TOLERANCE, to_numpy
from .test_model import INDICES, make_model, model_inputs

TENSORFLOW = keras.backend.backend() == "tensorflow"


def _pair():
    """Two models with equal weights: one with the graph call, one with Keras' layer-by-layer eager call."""
    models = [make_model(TrainablePositionEncoding(index_dims=12, encoding_channels=6), use_padding_mask=True,
                         use_output_indices=True, seed=3) for _ in range(2)]
    models[1].set_weights(models[0].get_weights())
    models[1].graph_call = False
    return models


def test_the_eager_call_gives_keras_own_outputs():
    fast, plain = _pair()
    inputs = model_inputs(INDICES)
    np.testing.assert_allclose(to_numpy(fast(inputs)), to_numpy(plain(inputs)), **TOLERANCE)
    # On TensorFlow the call went through the cached function; elsewhere Keras' path is kept.
    assert ("_graph_call_cache" in fast.__dict__) == TENSORFLOW
    assert "_graph_call_cache" not in plain.__dict__


@pytest.mark.skipif(not TENSORFLOW, reason="GradientTape: TensorFlow")
def test_gradients_under_a_tape_are_keras_own():
    import tensorflow as tf

    fast, plain = _pair()
    inputs = model_inputs(INDICES)
    gradients = []
    for model in (fast, plain):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(inputs, training=False)))
        gradients.append(tape.gradient(loss, model.trainable_weights))
    assert all(g is not None for g in gradients[0])
    for a, b in zip(*gradients):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not TENSORFLOW, reason="tf.function retracing: TensorFlow")
def test_new_batch_sizes_do_not_retrace_each_time():
    fast, _ = _pair()
    rng = np.random.default_rng(0)
    for batch in (1, 2, 3, 4, 5):
        inputs = {"inputs": rng.normal(size=(batch, 12, 5)).astype("float32"),
                  "padding_mask": np.ones((batch, 12), "int32"),
                  "output_indices": np.zeros((batch, 3), "int32")}
        assert tuple(fast(inputs).shape) == (batch, 3, 3)
    assert fast.__dict__["_graph_call_cache"].experimental_get_tracing_count() <= 2


def test_a_symbolic_call_still_builds_a_functional_model():
    fast, _ = _pair()
    inputs = {name: keras.Input(shape=shape, dtype=dtype, name=name)
              for name, shape, dtype in (("inputs", (12, 5), "float32"), ("padding_mask", (12,), "int32"),
                                         ("output_indices", (3,), "int32"))}
    outputs = fast(inputs)
    assert isinstance(outputs, keras.KerasTensor)
    wrapper = keras.Model(inputs, keras.layers.Activation("linear")(outputs))
    data = model_inputs(INDICES)
    np.testing.assert_allclose(to_numpy(wrapper(data)), to_numpy(fast(data)), **TOLERANCE)
