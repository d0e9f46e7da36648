"""Initial weights against transformers' freshly built Perceivers: per kind of weight, the same distribution.

transformers initialises with `PerceiverPreTrainedModel._init_weights`: normal(0, 0.02) for Linear and Conv2d
weights, embeddings, latents, trainable position embeddings and the multimodal paddings and mask tokens; zero
biases; LayerNorm and BatchNorm weight 1, bias 0 (and running mean 0, variance 1). Each task's toy model is built
on both sides from the same configuration. Per kind, the element counts must match; constant kinds must be
equal; for random kinds the means, the standard deviations and the share of values beyond 2 x 0.02 (4.55% for a
normal, none for a truncated normal) must agree within five standard errors of their difference, which
`test_the_tolerance_rejects_the_old_scheme` shows the previous scheme (fan-in truncated normal kernels, truncated
normal 0.02 embeddings) cannot meet. Run with `-s` for the table.
"""

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402

from zoo.convert.transformers import encoder_arguments  # noqa: E402
from zoo.image_classification import build_image_classifier  # noqa: E402
from zoo.language import build_masked_language_model, build_text_classifier  # noqa: E402
from zoo.multimodal import build_multimodal_autoencoder  # noqa: E402
from zoo.optical_flow import build_optical_flow_model  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

STDDEV = 0.02
TAIL = 0.0455  # P(|x| > 2 stddev) for a normal distribution; 0 for Keras' truncated normal
Z = 5.0  # standard errors of the difference allowed
ENCODER = dict(num_latents=16, d_latents=64, num_blocks=1, num_self_attends_per_block=2, num_self_attention_heads=4,
               num_cross_attention_heads=1)
TEXT = dict(ENCODER, d_model=32, max_position_embeddings=64)
TASKS = {  # task: (transformers head, its toy config, seeds); the multimodal paddings are small: three draws
    "image_fourier": (transformers.PerceiverForImageClassificationFourier, dict(ENCODER, image_size=12, num_labels=5),
                      (0,)),
    "image_learned": (transformers.PerceiverForImageClassificationLearned, dict(ENCODER, image_size=12, num_labels=5),
                      (0,)),
    "image_conv": (transformers.PerceiverForImageClassificationConvProcessing,
                   dict(ENCODER, image_size=32, num_labels=5), (0,)),
    "masked_lm": (transformers.PerceiverForMaskedLM, TEXT, (0,)),
    "text_classifier": (transformers.PerceiverForSequenceClassification, dict(TEXT, num_labels=3), (0,)),
    "optical_flow": (transformers.PerceiverForOpticalFlow, dict(ENCODER, train_size=[8, 10]), (0,)),
    "multimodal": (transformers.PerceiverForMultimodalAutoencoding, dict(
        ENCODER, num_frames=2, audio_samples_per_frame=32, samples_per_patch=16, image_size=8,
        output_shape=[1, 2, 8, 8], output_num_channels=24, num_labels=5, _label_trainable_num_channels=48),
        (0, 1, 2)),
}
IMAGE_PREPROCESSING = {  # as zoo.convert.from_transformers builds these heads
    "image_fourier": dict(prep_type="pixels", num_bands=64, max_resolution=(224, 224)),
    "image_learned": dict(prep_type="conv1x1", out_channels=256, position_encoding="trainable", position_channels=256,
                          position_projection_channels=256),
    "image_conv": dict(prep_type="conv", out_channels=64, num_bands=64, max_resolution=(56, 56)),
}


def _ours(task, config, seed):
    """Our model of the same configuration, as `zoo.convert.from_transformers` builds it, with a model seed."""
    encoder = dict(encoder_arguments(config), seed=seed)
    text = dict(sequence_length=config["max_position_embeddings"], vocab_size=config["vocab_size"],
                embedding_channels=config["d_model"], **encoder)
    if task in IMAGE_PREPROCESSING:
        return build_image_classifier(image_shape=(config["image_size"],) * 2 + (3,), num_classes=5,
                                      **IMAGE_PREPROCESSING[task], **encoder)
    if task == "masked_lm":
        return build_masked_language_model(decoder_num_heads=8, decoder_qk_channels=256,
                                           decoder_v_channels=config["d_model"], **text)
    if task == "text_classifier":
        return build_text_classifier(num_classes=3, **text)
    if task == "optical_flow":  # transformers' projection is a Linear like any other; our builder starts it at zero
        return build_optical_flow_model(frame_size=tuple(config["train_size"]), num_bands=64, patch_channels=64,
                                        decoder_projection_initializer=None, **encoder)
    return build_multimodal_autoencoder(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5,
                                        label_query_channels=48, decoder_output_channels=24, **encoder)


def _our_kind(path, ndim):
    name = path.rsplit("/", 1)[-1]
    if "batch_norm" in path:
        return "batch_norm_" + {"gamma": "scale", "beta": "offset", "moving_mean": "mean",
                                "moving_variance": "variance"}[name]
    kinds = {"gamma": "layer_norm_scale", "beta": "layer_norm_offset", "bias": "bias", "output_bias": "bias",
             "kernel": "dense_kernel" if ndim == 2 else "conv_kernel", "latents": "latents",
             "embeddings": "position_embeddings", "position_embeddings": "position_embeddings",
             "token_embeddings": "embeddings"}
    if name.endswith(("_padding", "_mask_token")):
        return "padding_and_mask_tokens"
    return kinds[name]


def _their_kind(module_name, module, name):
    if isinstance(module, nn.Embedding):  # the text preprocessor's token and position embeddings
        return "position_embeddings" if module_name.endswith("position_embeddings") else "embeddings"
    if isinstance(module, nn.BatchNorm2d):
        return "batch_norm_" + {"weight": "scale", "bias": "offset", "running_mean": "mean",
                                "running_var": "variance"}[name]
    if isinstance(module, nn.LayerNorm):
        return {"weight": "layer_norm_scale", "bias": "layer_norm_offset"}[name]
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        return "bias" if name == "bias" else "dense_kernel" if isinstance(module, nn.Linear) else "conv_kernel"
    if isinstance(module, nn.ParameterDict):
        return "padding_and_mask_tokens"
    return {"latents": "latents", "position_embeddings": "position_embeddings", "bias": "bias"}[name]


def _pool(pairs):
    pooled = {}
    for kind, values in pairs:
        pooled.setdefault(kind, []).append(np.asarray(values, "float64").ravel())
    return {kind: np.concatenate(values) for kind, values in pooled.items()}


@pytest.fixture(scope="module")
def weights():
    """{kind: all values} for ours, for transformers', and our weights' shapes per kind."""
    ours, theirs, shapes = [], [], []
    for task, (head, config, seeds) in TASKS.items():
        for seed in seeds:
            torch.manual_seed(seed)
            reference = head(transformers.PerceiverConfig(**config))
            for module_name, module in reference.named_modules():
                named = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
                for name, tensor in named:
                    if tensor.is_floating_point():
                        theirs.append((_their_kind(module_name, module, name), tensor.detach().numpy()))
            model = _ours(task, reference.config.to_dict(), seed)
            for weight in model.weights:
                kind = _our_kind(weight.path, len(weight.shape))
                ours.append((kind, keras.ops.convert_to_numpy(weight)))
                shapes.append((kind, tuple(weight.shape)))
    return _pool(ours), _pool(theirs), shapes


def _statistics(values):
    return values.mean(), values.std(), np.mean(np.abs(values) > 2 * STDDEV)


def _agree(ours, theirs):
    """Whether two samples have the same mean, stddev and tail share within Z standard errors of the difference."""
    (mean, std, tail), (ref_mean, ref_std, ref_tail) = _statistics(ours), _statistics(theirs)
    if ref_std == 0:  # a constant kind: exactly the same constant
        return bool(np.all(ours == theirs[0]))
    spread = np.sqrt(1 / ours.size + 1 / theirs.size)  # the standard error of a difference, per unit variance
    return (abs(mean - ref_mean) < Z * ref_std * spread
            and abs(std - ref_std) < Z * ref_std * spread / np.sqrt(2)
            and abs(tail - ref_tail) < Z * np.sqrt(TAIL * (1 - TAIL)) * spread)


def test_every_kind_has_the_reference_distribution(weights):
    ours, theirs, _ = weights
    assert sorted(ours) == sorted(theirs)
    print(f"\n{'kind':26s} {'elements':>9s} {'mean ours':>10s} {'theirs':>9s} {'std ours':>9s} {'theirs':>9s} "
          f"{'tail ours':>9s} {'theirs':>7s}")
    for kind in sorted(ours):
        (mean, std, tail), (ref_mean, ref_std, ref_tail) = _statistics(ours[kind]), _statistics(theirs[kind])
        print(f"{kind:26s} {ours[kind].size:9d} {mean:10.6f} {ref_mean:9.6f} {std:9.6f} {ref_std:9.6f} "
              f"{tail:9.4f} {ref_tail:7.4f}")
    for kind in sorted(ours):
        assert ours[kind].size == theirs[kind].size, kind  # the same weights, kind by kind
        assert _agree(ours[kind], theirs[kind]), kind


def test_the_tolerance_rejects_the_old_scheme(weights):
    """The previous defaults, drawn for our own weights' shapes, fail the comparison for every random kind."""
    _, theirs, shapes = weights
    def old(kind, seed):  # _checks.default_initializer() for kernels, embedding_initializer() for the rest
        if kind.endswith("kernel"):
            return keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal", seed=seed)
        return keras.initializers.TruncatedNormal(stddev=STDDEV, seed=seed)

    random_kinds = {kind for kind, values in theirs.items() if values.std() > 0}
    assert random_kinds == {"dense_kernel", "conv_kernel", "embeddings", "latents", "position_embeddings",
                            "padding_and_mask_tokens"}
    drawn = _pool((kind, keras.ops.convert_to_numpy(old(kind, seed)(shape)))
                  for seed, (kind, shape) in enumerate(shapes) if kind in random_kinds)
    for kind in sorted(random_kinds):
        assert not _agree(drawn[kind], theirs[kind]), f"the old {kind} scheme passes"
