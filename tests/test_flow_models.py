"""Optical-flow presets (parameter count pinned to transformers'), the small preset, bad inputs."""

import re

import keras
import numpy as np
import pytest

import zoo
from zoo.optical_flow import build_optical_flow_model

pytestmark = pytest.mark.tensorflow_only

# transformers' PerceiverForOpticalFlow at deepmind/optical-flow-perceiver's configuration.
OPTICAL_FLOW_PARAMETERS = 41_057_134
FLOW_SMALL_PARAMETERS = 710_804
_TOY = dict(frame_size=(6, 8), num_bands=2, patch_channels=8, num_latents=4, num_latent_channels=16,
            num_self_attention_layers_per_block=1, num_self_attention_heads=2)


def test_reference_parameter_count_comes_from_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.PerceiverConfig(
        num_latents=2048, d_latents=512, num_blocks=1, num_self_attends_per_block=24, num_self_attention_heads=16,
        num_cross_attention_heads=1, train_size=[368, 496],
    )
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = transformers.PerceiverForOpticalFlow(config)
    assert sum(p.numel() for p in model.parameters()) == OPTICAL_FLOW_PARAMETERS


def test_paper_preset_has_the_reference_parameter_count():
    model = zoo.create_model("optical_flow")  # built symbolically: no activations of 182,528 pixels
    assert model.count_params() == OPTICAL_FLOW_PARAMETERS == zoo.get_preset("optical_flow").metadata[
        "parameter_count"]
    assert model.input_shape == (None, 2, 368, 496, 3) and model.output_shape == (None, 368, 496, 2)
    assert model.preprocessor.output_channels == 322  # 64 patch channels + 2 + 4 x 64 Fourier features


def test_small_preset_starts_random_and_the_paper_model_at_zero_flow():
    assert zoo.list_models("optical_flow") == ["flow_small", "optical_flow"]
    model = zoo.create_model("flow_small")
    assert model.count_params() == FLOW_SMALL_PARAMETERS == zoo.get_preset("flow_small").metadata["parameter_count"]
    assert model.output_shape == (None, 32, 32, 2)
    smaller = zoo.create_model("flow_small", frame_size=(16, 24), num_self_attention_layers_per_block=1)
    frames = np.random.default_rng(0).uniform(-1, 1, size=(2, 2, 16, 24, 3)).astype("float32")
    flow = keras.ops.convert_to_numpy(smaller(frames))
    # A random projection: a zero one leaves training on the zero-flow saddle (see the preset).
    assert flow.shape == (2, 16, 24, 2) and np.all(np.isfinite(flow)) and np.abs(flow).max() > 0
    paper_like = keras.ops.convert_to_numpy(build_optical_flow_model(**_TOY)(frames[:, :, :6, :8]))
    assert np.all(paper_like == 0)  # the reference's zero-initialised projection


def test_subsampled_model_takes_output_indices_and_trains():
    model = build_optical_flow_model(**_TOY, use_output_indices=True)
    assert sorted(model.input) == ["frames", "output_indices"] and model.output_shape == (None, None, 2)
    rng = np.random.default_rng(0)
    inputs = {"frames": rng.uniform(-1, 1, size=(4, 2, 6, 8, 3)).astype("float32"),
              "output_indices": rng.integers(0, 48, size=(4, 10)).astype("int32")}
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)  # tracing a train step takes longer
    history = model.fit(inputs, rng.normal(size=(4, 10, 2)).astype("float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("shape", [(1, 3, 6, 8, 3), (1, 2, 6, 8, 4), (1, 2, 6, 9, 3), (1, 6, 8, 6)])
def test_bad_frames_raise_naming_expected_and_received(shape):
    model = build_optical_flow_model(**_TOY)
    with pytest.raises(ValueError, match=re.escape(f"expected `frames` of shape ('batch', 2, 6, 8, 3). Received: frames.shape={shape}")):
        model(np.zeros(shape, "float32"))


def test_bad_frame_size_raises():
    with pytest.raises(ValueError, match=r"Received: frame_size=\(64,\)"):
        build_optical_flow_model(frame_size=(64,))


def test_toy_model_converts_to_builtin_only_tflite(tmp_path):
    """Patch extraction is pad + slices + concatenation: the .tflite needs no Flex op."""
    from ai_edge_litert.interpreter import Interpreter

    from export.savedmodel import write_saved_model
    from export.signature import signature_of
    from export.tflite import convert

    model = build_optical_flow_model(**_TOY, use_output_indices=True)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    write_saved_model(model, signature_of(model), tmp_path / "saved", "serving_default")
    runner = Interpreter(model_content=convert(tmp_path / "saved", "serving_default", "float32")).get_signature_runner(
        "serving_default")
    feed = {"frames": rng.uniform(-1, 1, size=(1, 2, 6, 8, 3)).astype("float32"),
            "output_indices": np.array([[0, 5, 47]], "int32")}
    (flow,) = runner(**feed).values()
    np.testing.assert_allclose(flow, keras.ops.convert_to_numpy(model(feed)), atol=1e-5, rtol=0)
