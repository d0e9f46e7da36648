"""`zoo.convert.from_transformers` on the multimodal autoencoder: parity with transformers' PyTorch model."""

import json

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from zoo.convert import from_transformers  # noqa: E402
from zoo.multimodal import build_multimodal_autoencoder  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

TOLERANCE = 1e-4
FRAMES, SIZE, SAMPLES_PER_FRAME, CLASSES, BATCH = 2, 8, 32, 5, 3
SAMPLES = FRAMES * SAMPLES_PER_FRAME  # 4 audio patches of 16
REDUCED = dict(num_latents=8, d_latents=32, num_blocks=1, num_self_attends_per_block=2, num_self_attention_heads=4,
               num_cross_attention_heads=1, num_frames=FRAMES, audio_samples_per_frame=SAMPLES_PER_FRAME,
               samples_per_patch=16, image_size=SIZE, output_shape=[1, FRAMES, SIZE, SIZE], output_num_channels=24,
               num_labels=CLASSES, _label_trainable_num_channels=48, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def reference():
    """A reduced config (2 frames of 8 x 8, 64 audio samples, 5 classes, 8 x 32 latents) with random weights.

    PerceiverForMultimodalAutoencoding fixes 1x4x4 patches, 32 video and 192 audio Fourier bands
    (401 audio channels, so 405 input channels) and the paddings; sizes come from the config.
    Linear weights ~ N(0, 1/fan_in), LayerNorm scales 1 + N(0, 0.3^2), biases N(0, 0.3^2), latents,
    paddings, mask tokens and the label query N(0, 1): outputs of order 1 that depend on every part.
    """
    torch.manual_seed(0)
    model = transformers.PerceiverForMultimodalAutoencoding(transformers.PerceiverConfig(**REDUCED)).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if "layernorm" in name and name.endswith("weight"):
                tensor.copy_(1 + 0.3 * torch.randn_like(tensor))
            elif tensor.ndim == 2 and name.endswith("weight"):
                tensor.copy_(torch.randn_like(tensor) / tensor.shape[1] ** 0.5)
            else:
                tensor.copy_(torch.randn_like(tensor) * (1.0 if tensor.ndim == 2 else 0.3))
    return model


@pytest.fixture(scope="module")
def converted(reference, tmp_path_factory):
    folder = tmp_path_factory.mktemp("multimodal")
    reference.save_pretrained(folder)
    return from_transformers(folder)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(-1, 1, size=(BATCH, FRAMES, SIZE, SIZE, 3)).astype("float32"),
            "audio": rng.uniform(-1, 1, size=(BATCH, SAMPLES, 1)).astype("float32"),
            "label": np.eye(CLASSES, dtype="float32")[[0, 2, 4]]}


def _run_reference(reference, inputs, image_points, audio_points):
    """The reference takes channels-first video and decodes only through `subsampled_output_points`
    (one index vector for the whole batch); its audio comes out flat (B, points x 16)."""
    feed = {"image": torch.from_numpy(inputs["image"].transpose(0, 1, 4, 2, 3).copy()),
            "audio": torch.from_numpy(inputs["audio"]), "label": torch.from_numpy(inputs["label"])}
    points = {"image": torch.as_tensor(image_points), "audio": torch.as_tensor(audio_points), "label": None}
    with torch.no_grad():
        logits = reference(inputs=feed, subsampled_output_points=points).logits
    return {key: value.numpy() for key, value in logits.items()}


def _report(name, ours, expected):
    diffs = {key: float(np.abs(ours[key] - expected[key]).max()) for key in sorted(expected)}
    scale = max(float(np.abs(value).max()) for value in expected.values())
    print(f"PerceiverForMultimodalAutoencoding {name}: max abs diff "  # shown with pytest -s
          + ", ".join(f"{key} {diff:.2e}" for key, diff in diffs.items()) + f" (outputs up to {scale:.2f})")
    return diffs


def test_from_transformers_matches_reference_at_every_point(reference, converted):
    inputs = _inputs()
    expected = _run_reference(reference, inputs, np.arange(FRAMES * SIZE * SIZE), np.arange(SAMPLES // 16))
    ours = {key: keras.ops.convert_to_numpy(value) for key, value in converted(inputs).items()}
    assert ours["image"].shape == (BATCH, FRAMES, SIZE, SIZE, 3) and ours["audio"].shape == (BATCH, SAMPLES, 1)
    ours = {"image": ours["image"].reshape(BATCH, -1, 3), "audio": ours["audio"].reshape(BATCH, -1),
            "label": ours["label"]}
    for key in expected:
        assert ours[key].shape == expected[key].shape
        assert np.abs(expected[key][0] - expected[key][1]).max() > 100 * TOLERANCE  # depends on the inputs
    assert max(_report("all points", ours, expected).values()) <= TOLERANCE
    assert converted.count_params() == sum(p.numel() for p in reference.parameters())


def test_converted_weights_decode_the_reference_subsampled_points(reference, converted):
    """The converted weights drop into a `use_output_indices` model; the indices are the reference's."""
    config = reference.config
    subsampled = build_multimodal_autoencoder(
        num_frames=FRAMES, frame_size=(SIZE, SIZE), num_audio_samples=SAMPLES, num_classes=CLASSES,
        label_query_channels=48, num_latents=config.num_latents, num_latent_channels=config.d_latents,
        num_self_attention_layers_per_block=config.num_self_attends_per_block,
        num_self_attention_heads=config.num_self_attention_heads, decoder_output_channels=24, use_output_indices=True,
    )
    subsampled.set_weights(converted.get_weights())
    inputs = _inputs(seed=1)
    image_points, audio_points = np.array([5, 0, 127, 64, 77]), np.array([3, 1])
    expected = _run_reference(reference, inputs, image_points, audio_points)
    feed = {**inputs, "image_indices": np.tile(image_points, (BATCH, 1)).astype("int32"),
            "audio_indices": np.tile(audio_points, (BATCH, 1)).astype("int32")}
    ours = {key: keras.ops.convert_to_numpy(value) for key, value in subsampled(feed).items()}
    assert ours["image"].shape == (BATCH, 5, 3) and ours["audio"].shape == (BATCH, 2, 16)
    ours["audio"] = ours["audio"].reshape(BATCH, -1)
    assert max(_report("subsampled points", ours, expected).values()) <= TOLERANCE


def test_inconsistent_video_decoder_shape_is_refused(reference, tmp_path):
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "output_shape": [1, FRAMES, 2 * SIZE, 2 * SIZE]}))
    with pytest.raises(ValueError, match=r"output_shape=\[1, 2, 16, 16\]"):
        from_transformers(tmp_path)


def test_unmasked_label_path_matches_the_reference(reference, converted):
    """With the label mask probability at 0 on both sides, the label input takes part; same weights."""
    model = build_multimodal_autoencoder(
        num_frames=FRAMES, frame_size=(SIZE, SIZE), num_audio_samples=SAMPLES, num_classes=CLASSES,
        label_query_channels=48, num_latents=8, num_latent_channels=32, num_self_attention_layers_per_block=2,
        num_self_attention_heads=4, decoder_output_channels=24, label_mask_probability=0.0,
    )
    model.set_weights(converted.get_weights())
    preprocessor = reference.perceiver.input_preprocessor
    original = preprocessor.mask_probs
    preprocessor.mask_probs = {**original, "label": 0.0}
    try:
        inputs = _inputs()
        expected = _run_reference(reference, inputs, np.arange(FRAMES * SIZE * SIZE), np.arange(SAMPLES // 16))
        other = _run_reference(reference, {**inputs, "label": inputs["label"][::-1].copy()}, np.arange(5), np.arange(1))
    finally:
        preprocessor.mask_probs = original
    assert np.abs(other["label"] - expected["label"]).max() > 10 * TOLERANCE  # same clips, other labels
    ours = {key: keras.ops.convert_to_numpy(value) for key, value in model(inputs).items()}
    ours = {"image": ours["image"].reshape(BATCH, -1, 3), "audio": ours["audio"].reshape(BATCH, -1),
            "label": ours["label"]}
    assert max(_report("unmasked label", ours, expected).values()) <= TOLERANCE
