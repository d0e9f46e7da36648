"""Keras metrics and the masked-LM loss of the language tasks (GLUE's official metrics among them).

Every metric streams its state in variables and uses `keras.ops` only, so it runs on any backend.

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
from keras import ops

_PACKAGE = "zoo"  # As zoo.schedules.


def _flat(values, dtype):
    return ops.reshape(ops.cast(values, dtype), (-1,))


def _weights(sample_weight, y_true, dtype):
    if sample_weight is None:
        return ops.ones_like(y_true, dtype=dtype)
    return ops.broadcast_to(_flat(sample_weight, dtype), ops.shape(y_true))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MatthewsCorrelation(keras.metrics.Metric):
    """Matthews correlation coefficient of class predictions (GLUE's CoLA metric).

    The multi-class form of `sklearn.metrics.matthews_corrcoef`, from a streamed confusion matrix;
    0 when it is undefined (a single class predicted or present).

    Args:
        num_classes: the number of classes C.
        name, dtype: as for any metric.

    Call arguments:
        y_true: int class ids (B,).
        y_pred: logits or probabilities (B, C); the prediction is their argmax.
        sample_weight: optional (B,) weights.
    """

    def __init__(self, num_classes=2, name="matthews_correlation", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Expected num_classes >= 2. Received: num_classes={num_classes!r}")
        self.num_classes = num_classes
        self.confusion = self.add_variable((num_classes, num_classes), "zeros", self.dtype, name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = _flat(y_true, "int32")
        y_pred = ops.argmax(ops.reshape(y_pred, (-1, self.num_classes)), axis=-1)
        true = ops.one_hot(y_true, self.num_classes, dtype=self.dtype)
        true = true * _weights(sample_weight, y_true, self.dtype)[:, None]
        pred = ops.one_hot(y_pred, self.num_classes, dtype=self.dtype)
        self.confusion.assign_add(ops.matmul(ops.transpose(true), pred))

    def result(self):
        confusion = ops.convert_to_tensor(self.confusion)
        total = ops.sum(confusion)
        true, pred = ops.sum(confusion, axis=1), ops.sum(confusion, axis=0)
        covariance = ops.trace(confusion) * total - ops.sum(true * pred)
        scale = ops.sqrt((total * total - ops.sum(pred * pred)) * (total * total - ops.sum(true * true)))
        return ops.divide_no_nan(covariance, scale)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BinaryF1(keras.metrics.Metric):
    """F1 score of the positive class (1) of a two-class classifier (GLUE's MRPC and QQP metric).

    Equals `sklearn.metrics.f1_score(y_true, y_pred)`; 0 when there are no positives at all.

    Call arguments:
        y_true: int class ids (B,) in {0, 1}.
        y_pred: logits or probabilities (B, 2); the prediction is their argmax.
        sample_weight: optional (B,) weights.
    """

    def __init__(self, name="f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.counts = self.add_variable((3,), "zeros", self.dtype, name="counts")  # tp, fp, fn

    def update_state(self, y_true, y_pred, sample_weight=None):
        true = ops.cast(ops.equal(_flat(y_true, "int32"), 1), self.dtype)
        pred = ops.cast(ops.equal(ops.argmax(ops.reshape(y_pred, (-1, 2)), axis=-1), 1), self.dtype)
        weights = _weights(sample_weight, true, self.dtype)
        self.counts.assign_add(ops.stack([
            ops.sum(weights * true * pred), ops.sum(weights * (1 - true) * pred), ops.sum(weights * true * (1 - pred)),
        ]))

    def result(self):
        tp, fp, fn = ops.unstack(ops.convert_to_tensor(self.counts), 3)
        return ops.divide_no_nan(2 * tp, 2 * tp + fp + fn)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PearsonCorrelation(keras.metrics.Metric):
    """Pearson correlation of regression predictions with their targets (GLUE's STS-B metric).

    The moments are merged batch by batch (Chan et al.'s parallel update of means and centred
    sums), which stays accurate in float32 where raw sums of squares would cancel.

    Call arguments:
        y_true: float targets (B,).
        y_pred: predictions (B,) or (B, 1).
        sample_weight: optional (B,) weights.
    """

    def __init__(self, name="pearson", dtype=None):
        super().__init__(name=name, dtype=dtype)
        # weight sum, mean of y_true, mean of y_pred, centred sums of squares (true, pred), co-moment.
        self.moments = self.add_variable((6,), "zeros", self.dtype, name="moments")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true, pred = _flat(y_true, self.dtype), _flat(y_pred, self.dtype)
        weights = _weights(sample_weight, true, self.dtype)
        count, mean_true, mean_pred, square_true, square_pred, product = ops.unstack(
            ops.convert_to_tensor(self.moments), 6)
        batch_count = ops.sum(weights)
        batch_mean_true = ops.divide_no_nan(ops.sum(weights * true), batch_count)
        batch_mean_pred = ops.divide_no_nan(ops.sum(weights * pred), batch_count)
        centred_true, centred_pred = true - batch_mean_true, pred - batch_mean_pred
        new_count = count + batch_count
        delta_true, delta_pred = batch_mean_true - mean_true, batch_mean_pred - mean_pred
        share = ops.divide_no_nan(batch_count, new_count)
        cross = count * share  # count * batch_count / new_count
        self.moments.assign(ops.stack([
            new_count,
            mean_true + delta_true * share,
            mean_pred + delta_pred * share,
            square_true + ops.sum(weights * centred_true**2) + delta_true**2 * cross,
            square_pred + ops.sum(weights * centred_pred**2) + delta_pred**2 * cross,
            product + ops.sum(weights * centred_true * centred_pred) + delta_true * delta_pred * cross,
        ]))

    def result(self):
        _, _, _, square_true, square_pred, product = ops.unstack(ops.convert_to_tensor(self.moments), 6)
        return ops.divide_no_nan(product, ops.sqrt(square_true * square_pred))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpearmanCorrelation(keras.metrics.Metric):
    """Spearman rank correlation of regression predictions with their targets (STS-B's second metric).

    Ranks need every value, so the metric keeps the first `capacity` (prediction, target) pairs
    in fixed-size buffer variables and ranks them at `result()` (tied values share their average
    rank, as `scipy.stats.spearmanr`). Pairs beyond `capacity` are dropped: the default 65,536
    holds GLUE's largest regression split (STS-B train, 5,749 pairs) many times over; memory is
    2 * 4 * capacity bytes.

    Args:
        capacity: the most pairs kept.
        name, dtype: as for any metric.

    Call arguments:
        y_true: float targets (B,).
        y_pred: predictions (B,) or (B, 1).
        sample_weight: optional (B,); pairs of weight 0 are left out, the others count once.
    """

    def __init__(self, capacity=65_536, name="spearman", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 2:
            raise ValueError(f"Expected capacity >= 2. Received: capacity={capacity!r}")
        self.capacity = capacity
        # One spare slot at the end receives the pairs that are dropped.
        self.values = self.add_variable((2, capacity + 1), "zeros", self.dtype, name="values")
        self.count = self.add_variable((), "zeros", "int32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true, pred = _flat(y_true, self.dtype), _flat(y_pred, self.dtype)
        keep = ops.cast(_weights(sample_weight, true, self.dtype) != 0, "int32")
        slots = ops.where(keep > 0, self.count + ops.cumsum(keep) - 1, self.capacity)
        slots = ops.minimum(slots, self.capacity)
        updated = ops.scatter_update(ops.transpose(self.values), slots[:, None], ops.stack([true, pred], axis=1))
        self.values.assign(ops.transpose(updated))
        self.count.assign(ops.minimum(self.count + ops.sum(keep), self.capacity))

    def result(self):
        valid = ops.arange(self.capacity + 1) < self.count
        weights = ops.cast(valid, self.dtype)
        true, pred = ops.unstack(ops.convert_to_tensor(self.values), 2)
        rank_true, rank_pred = _average_ranks(true, valid, self.dtype), _average_ranks(pred, valid, self.dtype)
        count = ops.sum(weights)
        centred_true = (rank_true - ops.divide_no_nan(ops.sum(weights * rank_true), count)) * weights
        centred_pred = (rank_pred - ops.divide_no_nan(ops.sum(weights * rank_pred), count)) * weights
        scale = ops.sqrt(ops.sum(centred_true**2) * ops.sum(centred_pred**2))
        return ops.divide_no_nan(ops.sum(centred_true * centred_pred), scale)

    def get_config(self):
        return {**super().get_config(), "capacity": self.capacity}


def _average_ranks(values, valid, dtype):
    """1-based ranks of `values[valid]` among themselves, ties sharing their average rank."""
    values = ops.where(valid, values, float("inf"))  # Invalid slots sort after every valid value.
    ordered = ops.sort(values)
    below = ops.searchsorted(ordered, values, side="left")
    up_to = ops.searchsorted(ordered, values, side="right")
    return ops.cast(below + up_to + 1, dtype) / 2.0


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
