"""Keras metrics and the masked-LM loss of the language tasks (GLUE's official metrics among them).

The metric classes live in `perceiver_keras.metrics` (so that a saved model's metrics reload after
`import perceiver_keras` alone) and are importable from here as before.

| dataset | metrics (`metrics_for`) |
|---|---|
| glue/cola | matthews_correlation |
| glue/mrpc, glue/qqp | f1 (of the positive class), accuracy |
| glue/stsb | pearson, spearman (regression) |
| the other GLUE tasks, imdb_reviews, source_type | accuracy |

Example:
    >>> model.compile(optimizer="adam", loss=masked_lm_loss(), weighted_metrics=masked_lm_metrics())
    >>> classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...                    metrics=metrics_for("glue/mrpc"))
"""

from __future__ import annotations

import keras

from perceiver_keras.metrics import BinaryF1, MatthewsCorrelation, PearsonCorrelation, SpearmanCorrelation

__all__ = ["BinaryF1", "MatthewsCorrelation", "PearsonCorrelation", "SpearmanCorrelation", "masked_lm_loss",
           "masked_lm_metrics", "metrics_for"]

_FACTORIES = {
    "accuracy": lambda num_classes: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    "matthews_correlation": lambda num_classes: MatthewsCorrelation(num_classes),
    "f1": lambda num_classes: BinaryF1(),
    "pearson": lambda num_classes: PearsonCorrelation(),
    "spearman": lambda num_classes: SpearmanCorrelation(),
}


def metrics_for(dataset_name: str) -> list[keras.metrics.Metric]:
    """New metric objects for a dataset of `CLASSIFICATION_DATASETS` (`zoo.language.classification_data`).

    Raises:
        ValueError: for an unknown dataset (the message lists the valid names).
    """
    from zoo.language.classification_data import classification_info  # Lazy: it imports TensorFlow.

    info = classification_info(dataset_name)
    return [_FACTORIES[name](info.num_classes) for name in info.metrics]


def masked_lm_metrics() -> list[keras.metrics.Metric]:
    """The masked LM's accuracy; pass it as `compile(weighted_metrics=...)`.

    Keras feeds `sample_weight` only to `weighted_metrics`, so that only the masked positions
    (weight 1 in `masked_lm_dataset`) count; under `metrics=` every position would.
    """
    return [keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")]


def masked_lm_loss() -> keras.losses.Loss:
    """Cross-entropy from logits averaged over the masked positions only.

    With `masked_lm_dataset`'s sample weights, Keras' "mean_with_sample_weight" reduction divides
    the weighted sum by the sum of the weights, i.e. the number of masked positions; the default
    "sum_over_batch_size" would divide by every position, B * L, and scale the loss by the
    masked fraction of positions (about 1/6).
    """
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight", name="masked_lm_loss")
