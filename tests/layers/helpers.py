"""The checks every layer test repeats, in one place (keras-hub style `run_layer_test`).

Only keras, keras.ops and numpy are used, so the checks run on every Keras backend.
"""

import keras
import numpy as np

# Same weights, same inputs, same ops: outputs agree to float32 rounding at most.
TOLERANCE = dict(rtol=1e-6, atol=1e-6)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def random_inputs(seed, **shapes):
    """Float32 normal arrays, one per keyword: `random_inputs(0, query=(2, 3, 8))`."""
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape).astype("float32") for name, shape in shapes.items()}


def randomize_weights(layer, seed=0, scale=0.5):
    """Sets every weight to normal noise: the default 0.02-scale weights make attention almost
    uniform, so behaviour (masking, scaling, GELU variants) would barely show in the outputs."""
    assert layer.weights, "build the layer first"
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in layer.weights])
    return layer


def replace_masked(x, mask, seed=1):
    """`x` (B, L, C) with the positions where `mask` (B, L) is 0 replaced by fresh noise."""
    noise = np.random.default_rng(seed).normal(scale=3.0, size=x.shape).astype(x.dtype)
    return np.where(np.asarray(mask)[..., None] == 0, noise, x)


def functional_model(layer, inputs):
    """Wraps `layer` in a functional model with one `keras.Input` per call tensor argument."""
    symbolic = {
        name: keras.Input(shape=value.shape[1:], dtype=_dtype(value), name=name) for name, value in inputs.items()
    }
    return keras.Model(symbolic, layer(**symbolic))


def assert_output_shape(layer, inputs, expected_output_shape):
    """Eager output, `compute_output_shape` and the symbolic output agree with the expectation."""
    expected = tuple(expected_output_shape)
    outputs = layer(**inputs)
    assert tuple(outputs.shape) == expected
    shapes = {f"{name}_shape": tuple(value.shape) for name, value in inputs.items()}
    assert tuple(layer.compute_output_shape(**shapes)) == expected
    symbolic = functional_model(layer, inputs).outputs[0]
    assert tuple(symbolic.shape) == (None, *expected[1:])
    assert np.all(np.isfinite(to_numpy(outputs)))
    return outputs


def assert_config_round_trip(layer, inputs, init_kwargs=None):
    """`from_config(get_config())` rebuilds an equal layer that, given the weights, computes the same.

    With `init_kwargs`, also checks that the config holds each constructor argument as given
    (up to tuple/list and int/1-tuple spelling).
    """
    config = layer.get_config()
    for name, value in (init_kwargs or {}).items():
        assert np.ravel(config[name]).tolist() == np.ravel(value).tolist(), f"get_config() lost {name}={value!r}"
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    clone(**inputs)  # builds it
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(**inputs)), to_numpy(layer(**inputs)), **TOLERANCE)


def assert_saved_model_round_trip(model, inputs, tmp_path):
    """A `.keras` file loads without `custom_objects` and gives the same outputs."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_allclose(to_numpy(loaded(inputs)), to_numpy(model(inputs)), **TOLERANCE)
    return loaded


# The gradient of a key bias is exactly zero: it adds q . b_k to every score of a row, which
# the softmax ignores. So that weight alone stays put under any optimiser.
GRADIENT_FREE = ("key/bias",)


def assert_fit_step(model, inputs, run_eagerly=None):
    """One `fit` step on MSE to zeros: the loss is finite and every trainable weight moves.

    By default the cheaper mode for the backend: TensorFlow takes seconds to trace a train step,
    and JAX compiles every eager op separately, which is slower than compiling the whole step.
    """
    if run_eagerly is None:
        run_eagerly = keras.backend.backend() == "tensorflow"
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    targets = np.zeros(model(inputs).shape, "float32")
    # A tiny epsilon makes Adam's first step about learning_rate * sign(gradient), so even the
    # minute gradients of the default 0.02-scale initialisation move a weight of 1.0 (a LayerNorm
    # gamma) visibly; only a weight that receives no gradient at all stays put. Toy latents start
    # nearly identical (rows within 1e-8), so a self-attention's query/key gradients can be 1e-19:
    # with epsilon 1e-12 that step (1e-9) was below a 0.02 weight's float32 resolution on some
    # seeds; 1e-30 keeps the step at about the learning rate for any gradient above 1e-28.
    optimizer = keras.optimizers.Adam(learning_rate=1e-2, epsilon=1e-30)
    model.compile(optimizer=optimizer, loss="mse", run_eagerly=run_eagerly)
    history = model.fit(inputs, targets, batch_size=len(targets), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for weight, old in zip(model.trainable_weights, before):
        if not weight.path.endswith(GRADIENT_FREE):
            assert not np.array_equal(to_numpy(weight), old), f"{weight.path} did not change"


def run_layer_test(layer_cls, init_kwargs, inputs, expected_output_shape, tmp_path, run_training_check=True):
    """Shape, config round trip, `.keras` round trip and one `fit` step for one layer.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        inputs: dict of call tensor arguments (numpy arrays, batch first), e.g. {"query": ..., "key_value": ...}.
        expected_output_shape: tuple, the output shape for `inputs`.
        tmp_path: a directory for the `.keras` file (pytest's `tmp_path`).
        run_training_check: bool, run the `fit` step (needs trainable weights).

    Returns:
        The built layer.
    """
    inputs = {name: _as_input(value) for name, value in inputs.items()}
    layer = layer_cls(**init_kwargs)
    assert_output_shape(layer, inputs, expected_output_shape)
    assert_config_round_trip(layer, inputs, init_kwargs)
    model = functional_model(layer, inputs)
    assert_saved_model_round_trip(model, inputs, tmp_path)
    if run_training_check:
        assert layer.trainable_weights, "the training check needs trainable weights"
        assert_fit_step(model, inputs)
    return layer


def _as_input(value):
    value = np.asarray(value)
    return value.astype("int32") if np.issubdtype(value.dtype, np.integer) else value.astype("float32")


def _dtype(value):
    return "int32" if np.issubdtype(value.dtype, np.integer) else "float32"


def fourier_reference(index_dims, num_bands, max_resolution=None, concat_pos=True, sine_only=False, indices=None):
    """The reference's Fourier features, written out loop by loop: (positions, channels) in float64.

    Positions: the full grid at linspace(-1, 1) per dimension (row-major), or for flat `indices`
    the subsampled convention -1 + 2 i / n per dimension. Channels: [x_d for each d],
    [sin(pi f_dk x_d) for d, for k], [cos(...) likewise], with f_d = linspace(1, res_d / 2, K).
    """
    max_resolution = index_dims if max_resolution is None else max_resolution
    if indices is None:
        coords = [np.unravel_index(i, index_dims) for i in range(int(np.prod(index_dims)))]
        positions = [[-1.0 + 2.0 * c / (n - 1) if n > 1 else -1.0 for c, n in zip(cs, index_dims)] for cs in coords]
    else:
        positions = [[-1.0 + 2.0 * c / n for c, n in zip(np.unravel_index(int(i), index_dims), index_dims)]
                     for i in indices]
    rows = []
    for x in positions:
        freqs = [np.linspace(1.0, res / 2.0, num_bands) for res in max_resolution]
        sines = [np.sin(np.pi * f * x_d) for x_d, fs in zip(x, freqs) for f in fs]
        cosines = [np.cos(np.pi * f * x_d) for x_d, fs in zip(x, freqs) for f in fs]
        rows.append((list(x) if concat_pos else []) + sines + ([] if sine_only else cosines))
    return np.array(rows)
