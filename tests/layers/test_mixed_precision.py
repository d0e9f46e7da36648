"""Mixed precision: sublayers keep their parent's policy through a reload, outputs come out float32,
and a bfloat16 forward pass stays close to the float32 one with the same weights."""

import keras
import numpy as np
import pytest

from perceiver_keras import (
    ClassificationPostprocessor,
    FlowPostprocessor,
    ImagePreprocessor,
    MultimodalPostprocessor,
    PerceiverAttention,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    TextPreprocessor,
    TrainablePositionEncoding,
)

from .helpers import random_inputs, randomize_weights, to_numpy

# bfloat16 keeps 8 significant bits: one rounding is a relative error of up to 2^-8 = 0.4%.
BF16_TOLERANCE = dict(rtol=5e-2, atol=5e-2)


@pytest.fixture
def policy():
    """Sets the global dtype policy for one test and restores float32 afterwards."""
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy("float32")


def make_image_classifier():
    return PerceiverIO(
        preprocessor=ImagePreprocessor(prep_type="conv", conv_channels=8, num_bands=2, conv_kernel_size=3),
        encoder=PerceiverEncoder(4, 8, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
        decoder=PerceiverDecoder(output_channels=5),
        query=TrainablePositionEncoding(index_dims=1, encoding_channels=8),
        postprocessor=ClassificationPostprocessor(),
        inputs_shape=(16, 16, 3),
    )


def _policies(model):
    return {layer.path: layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)}


def test_sublayers_keep_the_policy_when_loaded_under_another(policy, tmp_path):
    policy("mixed_bfloat16")
    model = make_image_classifier()
    images = random_inputs(0, images=(2, 16, 16, 3))["images"]
    expected = to_numpy(model(images))
    model.save(tmp_path / "model.keras")
    policy("float32")  # Sublayers built in build() used to take this global policy on load.
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert set(_policies(loaded).values()) == {"mixed_bfloat16"}, _policies(loaded)
    assert all(w.dtype == "float32" for w in loaded.weights)
    np.testing.assert_array_equal(to_numpy(loaded(images)), expected)


def test_outputs_come_out_in_the_variable_dtype():
    hidden = keras.ops.ones((2, 12, 8), "bfloat16")
    outputs = {
        "logits": ClassificationPostprocessor(dtype="mixed_bfloat16")(hidden[:, :1]),
        "flow": FlowPostprocessor(image_size=(3, 4), dtype="mixed_bfloat16")(hidden[..., :2]),
        **MultimodalPostprocessor({"audio": 4}, {"audio": (48, 1)}, dtype="mixed_bfloat16")(hidden),
        "tied": TextPreprocessor(16, 8, 12, output_bias=True, dtype="mixed_bfloat16")(hidden, reverse=True),
    }
    assert {name: keras.backend.standardize_dtype(x.dtype) for name, x in outputs.items()} == dict.fromkeys(
        outputs, "float32")
    assert keras.backend.standardize_dtype(FlowPostprocessor(dtype="bfloat16")(hidden).dtype) == "bfloat16"


def test_bfloat16_attention_over_many_keys_agrees_with_float32():
    # dtype= on the layer reaches its projections (they used to take the global float32 policy).
    # 4,096 keys: the softmax normalises a long sum; the backends' bfloat16 softmax accumulates in float32.
    inputs = random_inputs(0, query=(2, 4, 16), key_value=(2, 4096, 16))
    layers = {}
    for name in ("float32", "mixed_bfloat16"):
        layers[name] = PerceiverAttention(num_heads=2, dtype=name)
        layers[name](**inputs)
    randomize_weights(layers["float32"], scale=0.3)
    layers["mixed_bfloat16"].set_weights(layers["float32"].get_weights())
    full, probs = layers["float32"](**inputs, return_attention_scores=True)
    half, half_probs = layers["mixed_bfloat16"](**inputs, return_attention_scores=True)
    assert keras.backend.standardize_dtype(half.dtype) == "bfloat16"
    np.testing.assert_allclose(to_numpy(keras.ops.sum(keras.ops.cast(half_probs, "float32"), -1)), 1.0, atol=2e-2)
    np.testing.assert_allclose(to_numpy(keras.ops.cast(half, "float32")), to_numpy(full), **BF16_TOLERANCE)
