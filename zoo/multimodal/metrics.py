"""Losses and metrics of multimodal autoencoding: weighted L1 on video and audio, cross-entropy on the label.

The paper's training loss (Jaegle et al., Perceiver IO, arXiv 2107.14795, appendix I) is

    0.03 x L1(video) + 1.0 x L1(audio) + 0.0001 x cross-entropy(label)

(`PAPER_LOSS_WEIGHTS`); the paper also reports weights (0.03, 1, 1), which trade reconstruction for
higher classification accuracy. Keras takes them as one loss per model output plus `loss_weights`:
the compiled loss is the weighted sum, each L1 the mean over that output's values. The metrics are
PSNR for video and audio, 10 log10(R^2 / MSE) over every value seen, with R the modality's range
(`zoo.multimodal.baselines.PSNR_MAX_VALUE`: 1 for frames in [0, 1], 2 for audio in [-1, 1]), so
they equal `baselines.psnr` of the concatenated arrays; and the label's top-1 accuracy. They take
the full outputs or the subsampled ones of training alike (the same values in another layout).

`PeakSignalToNoiseRatio` lives in `perceiver_keras.metrics` (so that a saved model's metrics reload
after `import perceiver_keras` alone) and is importable from here as before.

Example:
    >>> model.compile(optimizer="adam", loss=losses(), loss_weights=PAPER_LOSS_WEIGHTS, metrics=metrics())
"""

from __future__ import annotations

import keras

from perceiver_keras.metrics import PeakSignalToNoiseRatio
from zoo.multimodal.baselines import PSNR_MAX_VALUE

MODALITIES = ("audio", "image", "label")
PAPER_LOSS_WEIGHTS = {"audio": 1.0, "image": 0.03, "label": 0.0001}
"""Loss weights of the paper's released model: audio L1, video L1, label cross-entropy."""


def losses() -> dict[str, keras.losses.Loss]:
    """One loss per model output: L1 on "audio" and "image", softmax cross-entropy on "label" logits."""
    return {"audio": keras.losses.MeanAbsoluteError(name="audio_l1"),
            "image": keras.losses.MeanAbsoluteError(name="image_l1"),
            "label": keras.losses.CategoricalCrossentropy(from_logits=True, name="label_cross_entropy")}


def loss_weights(image: float | None = None, audio: float | None = None, label: float | None = None
                 ) -> dict[str, float]:
    """`PAPER_LOSS_WEIGHTS` with the given (non-None) weights replaced; each must be >= 0."""
    weights = dict(PAPER_LOSS_WEIGHTS)
    for key, value in (("image", image), ("audio", audio), ("label", label)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"Expected {key}_loss_weight >= 0. Received: {key}_loss_weight={value!r}")
        weights[key] = float(value)
    return weights


def metrics() -> dict[str, list]:
    """`compile(metrics=...)`: PSNR of "image" and "audio", top-1 accuracy of "label".

    Keras reports them as "image_psnr", "audio_psnr" and "label_accuracy".
    """
    return {"audio": [PeakSignalToNoiseRatio(PSNR_MAX_VALUE["audio"], name="psnr")],
            "image": [PeakSignalToNoiseRatio(PSNR_MAX_VALUE["image"], name="psnr")],
            "label": [keras.metrics.CategoricalAccuracy(name="accuracy")]}
