"""Fourier features at the paper's sizes against the ones transformers' own modules build.

At these sizes pi f x reaches 48,000 radians (audio: 192 bands up to f = 15,360), so one float32 ulp
of a position or a frequency moves a feature by up to 6e-3: positions and frequencies must equal
torch's bit for bit, and each feature may differ only in the rounding of its float32 sine.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from perceiver_keras import (  # noqa: E402
    AudioPreprocessor,
    FlowPreprocessor,
    FourierQuery,
    ImagePreprocessor,
    VideoPreprocessor,
)
from perceiver_keras.fourier import float32_linspace  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

TINY = dict(num_latents=4, d_latents=8, num_blocks=1, num_self_attends_per_block=1, num_self_attention_heads=1,
            num_cross_attention_heads=1, num_labels=3)
FRAMES, SIZE, AUDIO = 16, 224, 30_720  # 16 frames of 224 x 224; 1,920 audio patches of 16 samples
CHUNKS = 128  # the reference's example decodes the multimodal outputs in 128 chunks


def _assert_within_one_ulp(ours, reference, positions):
    np.testing.assert_array_equal(ours[..., :positions], reference[..., :positions])  # positions: bit for bit
    np.testing.assert_array_max_ulp(ours, reference, maxulp=1)
    assert np.abs(ours - reference).max() <= 1e-6


def _reference_positions(preprocessor, inputs):
    """The position channels of a reference preprocessor's output: those after its input channels."""
    with torch.no_grad():
        with_positions, _, without_positions = preprocessor(torch.zeros(inputs))
    return with_positions[..., without_positions.shape[-1]:].numpy()


def _ours(layer, inputs_shape):
    layer.build(inputs_shape)
    return np.asarray(layer.positions(np.zeros((1, 1), "float32")))


def test_linspace_is_torch_linspace_bit_for_bit():
    cases = [(-1.0, 1.0, n) for n in range(1, 600)] + [(-1.0, 1.0, n) for n in (1920, 2047, 50_000)]
    cases += [(1.0, res / 2, bands) for res in (16, 56, 224, 368, 496, 30_720, 99) for bands in range(1, 200, 7)]
    for start, stop, num in cases:
        expected = torch.linspace(start, stop, num, dtype=torch.float32).numpy()
        np.testing.assert_array_equal(float32_linspace(start, stop, num).view("int32"), expected.view("int32"),
                                      err_msg=f"linspace({start}, {stop}, {num})")


@pytest.mark.parametrize("head,layer,inputs_shape,reference_inputs", [
    ("PerceiverForImageClassificationFourier",
     ImagePreprocessor("pixels", num_bands=64, max_resolution=(224, 224)), (None, 224, 224, 3), (1, 3, 224, 224)),
    ("PerceiverForImageClassificationConvProcessing",
     ImagePreprocessor("conv", num_bands=64, max_resolution=(56, 56)), (None, 224, 224, 3),
     (1, 3, 224, 224)),
])
def test_image_classifier_positions(head, layer, inputs_shape, reference_inputs):
    model = getattr(transformers, head)(transformers.PerceiverConfig(image_size=224, **TINY)).eval()
    expected = _reference_positions(model.perceiver.input_preprocessor, reference_inputs)
    _assert_within_one_ulp(_ours(layer, inputs_shape), expected, 2)


def test_optical_flow_positions():
    model = transformers.PerceiverForOpticalFlow(transformers.PerceiverConfig(train_size=[368, 496], **TINY)).eval()
    expected = _reference_positions(model.perceiver.input_preprocessor, (1, 2, 27, 368, 496))
    ours = _ours(FlowPreprocessor(num_bands=64, max_resolution=(368, 496)), (None, 2, 368, 496, 3))
    _assert_within_one_ulp(ours, expected, 2)


@pytest.fixture(scope="module")
def multimodal():
    config = transformers.PerceiverConfig(num_frames=FRAMES, image_size=SIZE, audio_samples_per_frame=AUDIO // FRAMES,
                                          samples_per_patch=16, output_shape=[1, FRAMES, SIZE, SIZE],
                                          output_num_channels=8, _label_trainable_num_channels=8, **TINY)
    return transformers.PerceiverForMultimodalAutoencoding(config).eval().perceiver


def test_multimodal_input_positions(multimodal):
    modalities = multimodal.input_preprocessor.modalities
    video = _ours(VideoPreprocessor(FRAMES, (SIZE, SIZE), 3, (1, 4, 4), 32), (None, FRAMES, SIZE, SIZE, 3))
    _assert_within_one_ulp(video, _reference_positions(modalities["image"], (1, FRAMES, 3, SIZE, SIZE)), 3)
    audio = _ours(AudioPreprocessor(AUDIO, 16, 192), (None, AUDIO, 1))
    _assert_within_one_ulp(audio, _reference_positions(modalities["audio"], (1, AUDIO, 1)), 1)


@pytest.mark.parametrize("modality,query", [
    ("image", FourierQuery((FRAMES, SIZE, SIZE), 32, max_resolution=(FRAMES, SIZE, SIZE))),
    ("audio", FourierQuery(AUDIO // 16, 192, max_resolution=AUDIO)),
])
def test_multimodal_subsampled_queries(multimodal, modality, query):
    points = query.num_positions
    chunk = points // CHUNKS
    subsets = [np.arange(i * chunk, (i + 1) * chunk) for i in (0, CHUNKS // 2, CHUNKS - 1)]
    subsets += [np.sort(np.random.default_rng(0).choice(points, 4096 if points > 4096 else points, replace=False))]
    for indices in subsets:
        with torch.no_grad():
            expected = multimodal.decoder.modalities[modality].decoder_query(
                torch.zeros(1, 1, 1), subsampled_points=torch.from_numpy(indices)).numpy()
        ours = np.asarray(query(np.zeros((1, 1), "float32"), indices[None].astype("int32")))
        _assert_within_one_ulp(ours, expected, len(query.index_dims))
