"""`zoo.convert.from_transformers` on the optical-flow model: parity with transformers' PyTorch model."""

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from zoo.convert import from_transformers  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

TOLERANCE = 1e-4
SIZE = (12, 16)


def _reference():
    """A reduced flow config (12 x 16 frames, 8 x 32 latents, 2 layers) with random weights.

    PerceiverForOpticalFlow fixes 64 Fourier bands (322 input channels) and takes its frame size
    and Nyquist resolution from `train_size`.
    """
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(
        num_latents=8, d_latents=32, num_blocks=1, num_self_attends_per_block=2, num_self_attention_heads=4,
        num_cross_attention_heads=1, train_size=list(SIZE), attention_probs_dropout_prob=0.0,
    )
    model = transformers.PerceiverForOpticalFlow(config).eval()
    with torch.no_grad():  # Larger-than-default random weights (the zero-initialised flow projection too).
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn_like(tensor) * 0.3)
    return model


def deepmind_patches(frames, order="row column channel"):
    """DeepMind's `patches_for_flow` in numpy: (B, T, H, W, C) -> the reference's input (B, T, 9 C, H, W).

    A zero pad of 1, then the 3x3 patch around each pixel, flattened in `tf.image.extract_patches`'
    order (patch row, patch column, channel): DeepMind's `extract_patches` rearranges
    `conv_general_dilated_patches`' channel-major output into that order. transformers'
    `space_to_depth` then stacks the two frames' 27 values frame-major.
    """
    batch, time, height, width, channels = frames.shape
    padded = np.pad(frames, [(0, 0), (0, 0), (1, 1), (1, 1), (0, 0)])
    windows = np.stack([np.stack([padded[:, :, dy:dy + height, dx:dx + width] for dx in range(3)], axis=-2)
                        for dy in range(3)], axis=-3)  # (B, T, H, W, row, column, C)
    if order == "channel row column":  # conv_general_dilated_patches' own order, for contrast
        windows = windows.transpose(0, 1, 2, 3, 6, 4, 5)
    patches = windows.reshape(batch, time, height, width, 9 * channels)
    return np.ascontiguousarray(patches.transpose(0, 1, 4, 2, 3))


def _run_reference(reference, patches):
    with torch.no_grad():
        return reference(inputs=torch.from_numpy(patches)).logits.numpy()


def test_from_transformers_matches_reference(tmp_path):
    reference = _reference()
    reference.save_pretrained(tmp_path)
    model = from_transformers(tmp_path)
    frames = np.random.default_rng(0).uniform(-1, 1, size=(3, 2, *SIZE, 3)).astype("float32")
    expected = _run_reference(reference, deepmind_patches(frames))
    flow = keras.ops.convert_to_numpy(model(frames, training=False))
    assert flow.shape == expected.shape == (3, *SIZE, 2)
    assert np.abs(expected[0] - expected[1]).max() > 100 * TOLERANCE  # outputs depend on the frames
    print(f"PerceiverForOpticalFlow: flow max abs diff {np.abs(flow - expected).max():.2e} "  # shown with pytest -s
          f"(flow values up to {np.abs(expected).max():.2f})")
    np.testing.assert_allclose(flow, expected, atol=TOLERANCE, rtol=0)
    assert model.count_params() == sum(p.numel() for p in reference.parameters())
    # The patch order matters: the same frames patched channel-major give another flow.
    other = _run_reference(reference, deepmind_patches(frames, order="channel row column"))
    assert np.abs(other - expected).max() > 100 * TOLERANCE


def test_converted_model_decodes_subsampled_pixels(tmp_path):
    """The converted weights drop into a `use_output_indices` model: the same flow at those pixels."""
    from zoo.optical_flow import build_optical_flow_model

    reference = _reference()
    reference.save_pretrained(tmp_path)
    model = from_transformers(tmp_path)
    config = reference.config
    subsampled = build_optical_flow_model(
        frame_size=SIZE, num_latents=config.num_latents, num_latent_channels=config.d_latents,
        num_self_attention_layers_per_block=config.num_self_attends_per_block,
        num_self_attention_heads=config.num_self_attention_heads, use_output_indices=True,
    )
    subsampled.set_weights(model.get_weights())
    frames = np.random.default_rng(1).uniform(-1, 1, size=(2, 2, *SIZE, 3)).astype("float32")
    indices = np.array([[0, 17, 191], [5, 5, 100]], "int32")
    picked = keras.ops.convert_to_numpy(subsampled({"frames": frames, "output_indices": indices}))
    full = keras.ops.convert_to_numpy(model(frames)).reshape(2, -1, 2)
    np.testing.assert_allclose(picked, np.take_along_axis(full, indices[..., None], axis=1), atol=1e-5, rtol=0)
