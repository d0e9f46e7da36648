"""Initial weights: every weight its own draw, the reference's normal(0, 0.02) by default, a seed reproduces them."""

import itertools
import re

import keras
import numpy as np
import pytest

from perceiver_keras import (
    CrossAttentionBlock,
    FlowPreprocessor,
    ImagePreprocessor,
    MultimodalPostprocessor,
    MultimodalPreprocessor,
    MultimodalQuery,
    OneHotPreprocessor,
    PerceiverAttention,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    PerceiverMLP,
    TextPreprocessor,
    TrainablePositionEncoding,
)
from perceiver_keras.initialization import INITIALIZER_RANGE, seed_initializers
from .helpers import to_numpy
from zoo.image_classification import build_image_classifier
from zoo.language import build_masked_language_model, build_text_classifier
from zoo.multimodal import build_multimodal_autoencoder
from zoo.optical_flow import build_optical_flow_model

ENCODER = dict(num_latents=8, num_latent_channels=16, num_blocks=2, num_self_attention_layers_per_block=2,
               num_self_attention_heads=2)
TEXT = dict(sequence_length=16, embedding_channels=16, qk_channels=None, v_channels=None, num_cross_attention_heads=2,
            **ENCODER)
IMAGE = dict(image_shape=(16, 16, 3), num_classes=4, num_bands=4, **ENCODER)
TOY_MODELS = {  # each task's toy configuration, built by the zoo's builders
    "image_conv": lambda **kw: build_image_classifier(prep_type="conv", out_channels=8, conv_kernel_size=3, **IMAGE, **kw),
    "image_fourier": lambda **kw: build_image_classifier(prep_type="pixels", **IMAGE, **kw),
    "image_learned": lambda **kw: build_image_classifier(
        prep_type="conv1x1", out_channels=8, position_encoding="trainable", position_channels=8,
        position_projection_channels=8, **IMAGE, **kw),
    "masked_lm": lambda **kw: build_masked_language_model(decoder_num_heads=2, decoder_qk_channels=16, **TEXT, **kw),
    "text_classifier": lambda **kw: build_text_classifier(num_classes=3, **TEXT, **kw),
    "optical_flow": lambda **kw: build_optical_flow_model(frame_size=(6, 8), num_bands=4, patch_channels=8, **ENCODER,
                                                          **kw),
    "multimodal": lambda **kw: build_multimodal_autoencoder(
        num_frames=2, frame_size=(4, 4), num_audio_samples=32, num_classes=3, image_num_bands=2, audio_num_bands=4,
        label_query_channels=8, decoder_output_channels=8, **ENCODER, **kw),
}
# Constant by design: biases 0, norms' scales 1 and offsets 0, as the reference.
CONSTANT = ("bias", "gamma", "beta", "moving_mean", "moving_variance")
# The flow builder starts its projection at zero (zero flow) by choice.
ZERO_START = {"optical_flow": ("decoder/projection/kernel",)}


def random_weights(model, task):
    """{path: values} of the weights drawn at random; asserts that all the others are constant."""
    weights = {}
    for weight in model.weights:
        values = to_numpy(weight)
        if weight.path.endswith(CONSTANT + ZERO_START.get(task, ())):
            assert np.ptp(values) == 0, f"{weight.path} should start constant"
        else:
            assert np.ptp(values) > 0, f"{weight.path} should start random"
            weights[weight.path] = values
    return weights


@pytest.mark.parametrize("task", sorted(TOY_MODELS))
def test_no_two_random_weights_are_equal_and_all_follow_the_reference(task):
    weights = random_weights(TOY_MODELS[task](), task)
    assert len(weights) >= 20
    for (path_a, a), (path_b, b) in itertools.combinations(weights.items(), 2):
        # The same seed draws the same leading values whatever the shape on some backends: compare those too.
        assert not np.array_equal(a.ravel()[:4], b.ravel()[:4]), f"{path_a} and {path_b} start equal"
        assert a.shape != b.shape or not np.array_equal(a, b), f"{path_a} == {path_b}"
    # Pooled, they are normal(0, 0.02): within five standard errors; untruncated (5% lie beyond 2 stddev,
    # none would with a truncated normal).
    values = np.concatenate([w.ravel() for w in weights.values()])
    n = values.size
    assert abs(values.mean()) < 5 * INITIALIZER_RANGE / np.sqrt(n)
    assert abs(values.std() - INITIALIZER_RANGE) < 5 * INITIALIZER_RANGE / np.sqrt(2 * n)
    tail = np.mean(np.abs(values) > 2 * INITIALIZER_RANGE)
    assert abs(tail - 0.0455) < 5 * np.sqrt(0.0455 * 0.9545 / n)


@pytest.mark.parametrize("task", ["image_learned", "masked_lm", "multimodal"])
def test_a_seed_reproduces_the_initial_weights_and_another_changes_them(task):
    first, again, other = (TOY_MODELS[task](seed=seed) for seed in (7, 7, 8))
    for a, b, c in zip(first.weights, again.weights, other.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)
        if not a.path.endswith(CONSTANT):
            assert not np.array_equal(to_numpy(a), to_numpy(c)), a.path
    assert first.get_config()["seed"] == 7
    rebuilt = first.__class__.from_config(first.get_config())  # the config carries the seeded initializers
    for a, b in zip(first.weights, rebuilt.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)
    assert random_weights(TOY_MODELS[task](seed=None), task).keys() == random_weights(first, task).keys()


def test_without_a_seed_keras_set_random_seed_reproduces_the_initial_weights():
    # How zoo.training seeds a run: each clone takes its seed from Python's `random`, which this fixes.
    keras.utils.set_random_seed(3)
    first = TOY_MODELS["image_conv"]()
    keras.utils.set_random_seed(3)
    for a, b in zip(first.weights, TOY_MODELS["image_conv"]().weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)


def test_a_seeded_initializer_gives_each_weight_a_seed_of_its_own():
    def encoder():
        layer = PerceiverEncoder(**ENCODER, kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=3),
                                 latent_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=3))
        layer.build((None, 10, 16))
        return layer

    first, again = encoder(), encoder()
    kernels = [to_numpy(w) for w in first.weights if w.path.endswith(("kernel", "latents"))]
    assert len(kernels) == 1 + 3 * 6  # latents; in each block 4 attention and 2 MLP kernels
    for a, b in itertools.combinations(kernels, 2):
        assert a.shape != b.shape or not np.array_equal(a, b)
    for a, b in zip(first.weights, again.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_old_configs_load_with_the_reference_defaults():
    image = ImagePreprocessor("conv1x1", conv_channels=4, num_bands=2)
    config = image.get_config()
    assert config["kernel_initializer"]["config"] == {"seed": None, "mean": 0.0, "stddev": INITIALIZER_RANGE}
    for key in ("kernel_initializer", "position_initializer"):  # saved before these arguments existed
        config.pop(key)
    assert ImagePreprocessor.from_config(config).get_config() == image.get_config()
    old = PerceiverEncoder(**ENCODER, kernel_initializer={"class_name": "VarianceScaling", "config": {
        "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": None}})
    assert isinstance(PerceiverEncoder.from_config(old.get_config()).kernel_initializer,
                      keras.initializers.VarianceScaling)


INITIALIZER_ARGUMENTS = {
    "attention": (PerceiverAttention, dict(num_heads=1), "kernel_initializer"),
    "mlp": (PerceiverMLP, {}, "kernel_initializer"),
    "block": (CrossAttentionBlock, {}, "kernel_initializer"),
    "encoder_kernel": (PerceiverEncoder, ENCODER, "kernel_initializer"),
    "encoder_latents": (PerceiverEncoder, ENCODER, "latent_initializer"),
    "decoder_projection": (PerceiverDecoder, dict(output_channels=2), "projection_initializer"),
    "positions": (TrainablePositionEncoding, dict(index_dims=4, encoding_channels=8), "initializer"),
    "image_kernel": (ImagePreprocessor, {}, "kernel_initializer"),
    "image_positions": (ImagePreprocessor, {}, "position_initializer"),
    "text_tokens": (TextPreprocessor, dict(vocab_size=5, output_channels=4, max_length=3), "embeddings_initializer"),
    "text_positions": (TextPreprocessor, dict(vocab_size=5, output_channels=4, max_length=3), "position_initializer"),
    "flow": (FlowPreprocessor, {}, "kernel_initializer"),
    "multimodal_padding": (MultimodalPreprocessor, dict(modalities={"label": OneHotPreprocessor(2)}),
                           "padding_initializer"),
    "query_padding": (MultimodalQuery, dict(queries={"label": TrainablePositionEncoding(1, 4)}), "padding_initializer"),
    "heads": (MultimodalPostprocessor, dict(output_channels={"label": 2}, output_shapes={"label": (2,)}),
              "kernel_initializer"),
}


@pytest.mark.parametrize("case", sorted(INITIALIZER_ARGUMENTS))
def test_unknown_initializer_names_the_argument_the_accepted_values_and_the_received_one(case):
    cls, kwargs, argument = INITIALIZER_ARGUMENTS[case]
    with pytest.raises(ValueError) as error:
        cls(**kwargs, **{argument: "gaussian"})
    message = str(error.value)
    assert f"`{argument}`" in message and f"Received: {argument}='gaussian'" in message
    assert "'random_normal'" in message and "'glorot_uniform'" in message  # the accepted names
    assert cls(**kwargs, **{argument: "random_normal"})  # a known name is accepted


@pytest.mark.parametrize("seed", ["1", 1.0, True, [1]])
def test_a_seed_that_is_not_an_int_names_the_argument(seed):
    expected = f"`seed` must be an int or None. Received: seed={seed!r}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        TOY_MODELS["image_fourier"](seed=seed)
    with pytest.raises(ValueError, match="`seed` must be an int or None"):
        MultimodalPreprocessor({"label": OneHotPreprocessor(2)}, seed=seed)
    with pytest.raises(ValueError, match="`seed` must be an int or None"):
        seed_initializers(PerceiverMLP(), seed)
    with pytest.raises(ValueError, match="`seed` must be an int or None"):
        PerceiverIO(PerceiverEncoder(**ENCODER), PerceiverDecoder(), TrainablePositionEncoding(1, 16), (4, 3),
                    seed=seed)
