"""FlowPreprocessor and FlowPostprocessor, and a toy flow model built from them (every backend)."""

import re

import numpy as np
import pytest

from perceiver_keras import (
    FlowPostprocessor,
    FlowPreprocessor,
    InputQuery,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
)

from .helpers import (
    TOLERANCE,
    assert_fit_step,
    assert_saved_model_round_trip,
    fourier_reference,
    randomize_weights,
    run_layer_test,
    to_numpy,
)

BATCH, H, W = 2, 5, 6


def frames(seed=0, shape=(BATCH, 2, H, W, 3)):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype("float32")


def test_preprocessor_layer_contract(tmp_path):
    kwargs = dict(patch_projection_channels=8, num_bands=3, max_resolution=(10, 12), name="flow_preprocessor")
    run_layer_test(FlowPreprocessor, kwargs, {"inputs": frames()}, (BATCH, H * W, 8 + 2 + 4 * 3), tmp_path)


def test_patches_are_ordered_frame_row_column_channel_with_zero_padding():
    """An identity projection exposes the 54 patch values: frame-major, then patch row, column, channel."""
    prep = FlowPreprocessor(patch_projection_channels=54, num_bands=2, max_resolution=(8, 9))
    x = frames()
    prep(x)  # builds it
    prep.patch_projection.kernel.assign(np.eye(54, dtype="float32"))
    outputs = to_numpy(prep(x))
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1), (0, 0)])
    expected = np.zeros((BATCH, H, W, 54), "float32")
    for f in range(2):
        for dy in range(3):
            for dx in range(3):
                for c in range(3):
                    expected[..., f * 27 + dy * 9 + dx * 3 + c] = padded[:, f, dy:dy + H, dx:dx + W, c]
    np.testing.assert_allclose(outputs[..., :54], expected.reshape(BATCH, H * W, 54), **TOLERANCE)
    assert np.all(outputs[:, 0, [0, 1, 2, 27]] == 0)  # the top-left pixel's patch starts in the padding
    positions = fourier_reference((H, W), 2, max_resolution=(8, 9))
    np.testing.assert_allclose(outputs[0, :, 54:], positions, rtol=1e-5, atol=1e-5)


def test_postprocessor_rescales_and_lays_out_the_grid(tmp_path):
    x = np.random.default_rng(0).normal(size=(BATCH, H * W, 2)).astype("float32")
    layer = run_layer_test(FlowPostprocessor, dict(rescale_factor=100.0, image_size=(H, W)), {"inputs": x},
                           (BATCH, H, W, 2), tmp_path, run_training_check=False)
    np.testing.assert_allclose(to_numpy(layer(x)), x.reshape(BATCH, H, W, 2) / 100.0, **TOLERANCE)
    subsampled = run_layer_test(FlowPostprocessor, dict(rescale_factor=20.0), {"inputs": x[:, :4]},
                                (BATCH, 4, 2), tmp_path, run_training_check=False)
    np.testing.assert_allclose(to_numpy(subsampled(x[:, :4])), x[:, :4] / 20.0, **TOLERANCE)


@pytest.mark.parametrize("make, message", [
    (lambda: FlowPreprocessor(patch_projection_channels=0), "patch_projection_channels=0"),
    (lambda: FlowPreprocessor(patch_size=2), "patch_size=2"),
    (lambda: FlowPreprocessor(num_frames=0), "num_frames=0"),
    (lambda: FlowPreprocessor(max_resolution=(4, 4, 4)), r"max_resolution=\(4, 4, 4\)"),
    (lambda: FlowPostprocessor(rescale_factor=0), "rescale_factor=0"),
    (lambda: FlowPostprocessor(image_size=(3,)), r"image_size=\(3,\)"),
])
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("shape", [(1, 3, H, W, 3), (1, 2, H, W, 4), (1, H, W, 6)])
def test_bad_frames_raise_naming_expected_and_received(shape):
    expected = re.escape(f"(batch, 2, height, width, 3). Received: inputs.shape={shape}")
    with pytest.raises(ValueError, match=expected):
        FlowPreprocessor(num_bands=2)(np.zeros(shape, "float32"))


def test_wrong_frame_size_and_length_raise():
    prep = FlowPreprocessor(num_bands=2)
    prep(frames())
    with pytest.raises(ValueError, match=r"size \(5, 6\)\. Received: inputs.shape=\(2, 2, 6, 6, 3\)"):
        prep(frames(shape=(BATCH, 2, 6, 6, 3)))
    with pytest.raises(ValueError, match=r"length 30 on axis 1\. Received: inputs.shape=\(1, 29, 2\)"):
        FlowPostprocessor(image_size=(H, W))(np.zeros((1, 29, 2), "float32"))


def flow_model(use_output_indices=False):
    return PerceiverIO(
        preprocessor=FlowPreprocessor(patch_projection_channels=8, num_bands=2),
        encoder=PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
        query=InputQuery(),
        decoder=PerceiverDecoder(output_channels=2, projection_initializer="zeros"),
        postprocessor=FlowPostprocessor(image_size=None if use_output_indices else (H, W)),
        inputs_shape=(2, H, W, 3), input_name="frames", use_output_indices=use_output_indices,
    )


def test_toy_flow_model_starts_at_zero_flow_and_decodes_any_pixels(tmp_path):
    model = flow_model()
    assert np.all(to_numpy(model(frames())) == 0)  # the zero-initialised projection
    randomize_weights(model, scale=0.3)
    full = to_numpy(model(frames())).reshape(BATCH, H * W, 2)
    subsampled = flow_model(use_output_indices=True)
    subsampled.set_weights(model.get_weights())
    indices = np.array([[0, 7, 29], [3, 3, 12]], "int32")
    picked = to_numpy(subsampled({"frames": frames(), "output_indices": indices}))
    assert picked.shape == (BATCH, 3, 2)
    np.testing.assert_allclose(picked, np.take_along_axis(full, indices[..., None], axis=1), rtol=1e-5, atol=1e-5)
    inputs = {"frames": frames(), "output_indices": indices}
    loaded = assert_saved_model_round_trip(subsampled, inputs, tmp_path)
    assert loaded.count_params() == model.count_params()
    assert_fit_step(subsampled, inputs)
