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
    assert fast.__dict__["_graph_call_cache"]["call"].experimental_get_tracing_count() <= 2


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


def _batch(count, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((count, 12), "int32")
    mask[:, -3:] = rng.integers(0, 2, (count, 3))
    return {"inputs": rng.normal(size=(count, 12, 5)).astype("float32"), "padding_mask": mask,
            "output_indices": rng.integers(0, 12, (count, 3)).astype("int32")}


def test_predict_of_arrays_gives_keras_own_outputs_batch_by_batch(capsys):
    fast, plain = _pair()
    data = _batch(5)
    expected = plain.predict(data, batch_size=2, verbose=0)
    capsys.readouterr()
    actual = fast.predict(data, batch_size=2, verbose=0)
    assert capsys.readouterr().out == ""
    assert isinstance(actual, np.ndarray) and actual.shape == expected.shape == (5, 3, 3)
    np.testing.assert_allclose(actual, expected, **TOLERANCE)
    assert ("_predict_cache" in fast.__dict__) == TENSORFLOW
    fast.predict(data, batch_size=2, verbose=1)
    assert "3/3" in capsys.readouterr().out  # Keras' progress bar, one step per batch


def test_predict_with_callbacks_or_a_dataset_keeps_keras_own_loop():
    fast, plain = _pair()
    batches = []

    class Count(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            batches.append(batch)

    data = _batch(5)
    outputs = fast.predict(data, batch_size=2, verbose=0, callbacks=[Count()])
    assert batches == [0, 1, 2]
    np.testing.assert_allclose(outputs, plain.predict(data, batch_size=2, verbose=0), **TOLERANCE)


@pytest.mark.skipif(not TENSORFLOW, reason="jit_compile: TensorFlow's XLA")
def test_predict_follows_the_compiled_jit_setting():
    fast, plain = _pair()
    fast.compile(jit_compile=True)
    data = _batch(3)
    np.testing.assert_allclose(fast.predict(data, verbose=0), plain.predict(data, verbose=0), rtol=1e-4, atol=1e-5)
    assert set(fast.__dict__["_predict_cache"]) == {True}


@pytest.mark.skipif(not TENSORFLOW, reason="SavedModel: TensorFlow")
def test_the_cached_functions_stay_out_of_a_saved_model():
    fast, _ = _pair()
    data = _batch(2)
    fast(data)
    fast.predict(data, verbose=0)
    children = fast._trackable_children("savedmodel")
    assert not {"_graph_call_cache", "_predict_cache"} & set(children)
    assert not any("graph_call" in name or "predict_cache" in name for name in children)


def test_calls_with_and_without_training_then_an_eager_fit():
    """The sequence that once broke tf.function's retracing: model(x), model(x, training=True), fit(run_eagerly)."""
    fast, plain = _pair()
    data = _batch(2)
    fast(data)
    np.testing.assert_allclose(to_numpy(fast(data, training=False)), to_numpy(plain(data, training=False)),
                               **TOLERANCE)
    assert tuple(fast(data, training=True).shape) == (2, 3, 3)
    fast.compile(optimizer="adam", loss="mse", run_eagerly=True)
    history = fast.fit(data, np.zeros((2, 3, 3), "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.skipif(not TENSORFLOW, reason="the graph call is TensorFlow's")
def test_run_eagerly_keeps_keras_eager_path():
    fast, _ = _pair()
    fast.compile(optimizer="adam", loss="mse", run_eagerly=True)
    fast(_batch(2))
    assert "call" not in fast.__dict__.get("_graph_call_cache", {})
