"""Trivial baselines of multimodal autoencoding: what a model must beat, and the PSNR it is measured in.

PSNR = 10 log10(R^2 / MSE) in dB over a modality's value range R (`PSNR_MAX_VALUE`): 1 for frames
in [0, 1] and 2 for audio in [-1, 1], so mapping the audio affinely onto [0, 1] keeps its PSNR.
The mean-prediction baseline predicts each position's (pixel's, audio sample's) mean over the
dataset for every clip: the best prediction that ignores the input, in MSE. The label's baselines
are the accuracy of always predicting the most frequent class and chance, 1 / K.

Example:
    >>> ds = synthetic_av_dataset("validation", num_frames=8, frame_size=(32, 32),
    ...                           num_audio_samples=4096, batch_size=64)
    >>> trivial_baselines(ds)  # {"image_psnr": ..., "audio_psnr": ..., "majority_accuracy": 0.1, ...}
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

PSNR_MAX_VALUE = {"image": 1.0, "audio": 2.0}  # The value ranges: [0, 1] and [-1, 1].


def psnr(y_true, y_pred, max_value: float) -> float:
    """10 log10(max_value^2 / MSE) in dB over all values; inf when the arrays are equal."""
    mse = np.mean((np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * np.log10(max_value ** 2 / mse))


def mean_prediction_psnr(dataset: tf.data.Dataset) -> dict[str, float]:
    """The PSNR of predicting, for every clip, each position's mean over `dataset`, per modality.

    The mean is the best prediction that ignores the input (in MSE); it is taken over the same
    clips it is scored on. Silent audio (UCF101) gives inf.

    Args:
        dataset: finite, of `(x, y)` (y is scored) or of dicts, batched or not.

    Returns:
        {"image": dB, "audio": dB}, with `PSNR_MAX_VALUE`'s ranges.
    """
    return _mean_prediction_psnr(*_statistics(dataset)[:2])


def trivial_baselines(dataset: tf.data.Dataset) -> dict[str, float]:
    """Mean-prediction PSNRs and the label's majority-class and chance accuracies, in one pass.

    Args:
        dataset: finite, as for `mean_prediction_psnr`.

    Returns:
        {"image_psnr", "audio_psnr" (dB, as `mean_prediction_psnr`), "majority_accuracy" (of always
        predicting `dataset`'s most frequent class), "chance_accuracy" (1 / K)}.
    """
    sums, count, label_counts = _statistics(dataset)
    scores = _mean_prediction_psnr(sums, count)
    return {"image_psnr": scores["image"], "audio_psnr": scores["audio"],
            "majority_accuracy": float(label_counts.max() / count), "chance_accuracy": 1.0 / len(label_counts)}


def _statistics(dataset: tf.data.Dataset) -> tuple[dict, int, np.ndarray]:
    """Per-position sums and sums of squares of "image" and "audio", the clip count, the label counts."""
    sums, count, label_counts = {}, 0, 0.0
    for element in dataset.as_numpy_iterator():
        targets = element[1] if isinstance(element, tuple) else element
        labels = np.asarray(targets["label"], np.float64)
        batched = labels.ndim == 2
        for key in PSNR_MAX_VALUE:
            value = np.asarray(targets[key], np.float64)
            value = value if batched else value[None]
            total, squares = sums.get(key, (0.0, 0.0))
            sums[key] = (total + value.sum(axis=0), squares + (value ** 2).sum(axis=0))
        label_counts = label_counts + labels.reshape(-1, labels.shape[-1]).sum(axis=0)
        count += len(labels) if batched else 1
    if count == 0:
        raise ValueError("Expected a dataset with at least one clip. Received: an empty dataset")
    return sums, count, label_counts


def _mean_prediction_psnr(sums: dict, count: int) -> dict[str, float]:
    scores = {}
    for key, (total, squares) in sums.items():
        mse = np.mean(np.maximum(squares / count - (total / count) ** 2, 0.0))  # The variance across clips.
        scores[key] = math.inf if mse == 0 else float(10 * np.log10(PSNR_MAX_VALUE[key] ** 2 / mse))
    return scores
