"""Streamed Keras metrics of the zoo's tasks: GLUE's official metrics, PSNR and the end-point error.

Every metric keeps its state in variables (sums over every value seen, not means of batch means)
and uses `keras.ops` only, so it runs on any backend.

| metric | task |
|---|---|
| `MatthewsCorrelation` | GLUE CoLA |
| `BinaryF1` | GLUE MRPC, QQP |
| `PearsonCorrelation`, `SpearmanCorrelation` | GLUE STS-B (regression) |
| `PeakSignalToNoiseRatio` | multimodal autoencoding (video, audio) |
| `EndPointError` | optical flow |

Example:
    >>> classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...                    metrics=["accuracy", BinaryF1()])
"""

from __future__ import annotations

import math

import keras
from keras import ops

from perceiver_keras.losses import checked_flow_scale_factor, squared_end_point_errors
from perceiver_keras.saving import register_former_names


def _flat(values, dtype):
    return ops.reshape(ops.cast(values, dtype), (-1,))


def _weights(sample_weight, y_true, dtype):
    if sample_weight is None:
        return ops.ones_like(y_true, dtype=dtype)
    return ops.broadcast_to(_flat(sample_weight, dtype), ops.shape(y_true))


def broadcast_weights(sample_weight, values):
    """float32 weights of `values`' shape: ones, or `sample_weight` broadcast from the left (e.g. (B,))."""
    if sample_weight is None:
        return ops.ones_like(values, dtype="float32")
    weights = ops.cast(sample_weight, "float32")
    weights = ops.reshape(weights, ops.shape(weights) + (1,) * (len(values.shape) - len(weights.shape)))
    return ops.broadcast_to(weights, ops.shape(values))


@keras.saving.register_keras_serializable(package="perceiver_keras")
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


@keras.saving.register_keras_serializable(package="perceiver_keras")
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


@keras.saving.register_keras_serializable(package="perceiver_keras")
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


@keras.saving.register_keras_serializable(package="perceiver_keras")
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



@keras.saving.register_keras_serializable(package="perceiver_keras")
class PeakSignalToNoiseRatio(keras.metrics.Metric):
    """PSNR in dB over every value seen: 10 log10(max_value^2 / MSE), the MSE streamed, not per batch.

    Args:
        max_value: the value range R (1 for frames in [0, 1], 2 for audio in [-1, 1]).
        name, dtype: as for any metric.

    Call arguments:
        y_true, y_pred: the same shape, any layout. sample_weight: optional weights broadcastable
            to y_true's shape from the left (e.g. (B,)).
    """

    def __init__(self, max_value=1.0, name="psnr", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(max_value, bool) or not isinstance(max_value, (int, float)) or not max_value > 0:
            raise ValueError(f"Expected max_value > 0. Received: max_value={max_value!r}")
        self.max_value = float(max_value)
        self.squared_error = self.add_variable((), "zeros", "float32", name="squared_error")
        self.count = self.add_variable((), "zeros", "float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        # In float32 whatever the compute dtype: bfloat16 squares lose the small errors PSNR is about.
        errors = ops.square(ops.cast(y_pred, "float32") - ops.cast(y_true, "float32"))
        weights = broadcast_weights(sample_weight, errors)
        self.squared_error.assign_add(ops.sum(errors * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        mse = ops.divide_no_nan(ops.convert_to_tensor(self.squared_error), ops.convert_to_tensor(self.count))
        # An exact reconstruction gives +inf.
        return 10.0 * ops.log(self.max_value ** 2 / mse) / math.log(10.0)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value}


@keras.saving.register_keras_serializable(package="perceiver_keras")
class EndPointError(keras.metrics.Metric):
    """End-point error in pixels, averaged over every pixel seen (not batch by batch).

    Args:
        flow_scale_factor: pixels per unit of the model's output.
        name, dtype: as for any metric.

    Call arguments:
        y_true: flow in pixels (..., 2).
        y_pred: model outputs (..., 2).
        sample_weight: optional weights broadcastable to y_true's shape without its last axis
            (e.g. (B,) or a validity mask (B, H, W)).
    """

    def __init__(self, flow_scale_factor=1.0, name="epe", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.flow_scale_factor = checked_flow_scale_factor(flow_scale_factor)
        self.total = self.add_variable((), "zeros", "float32", name="total")
        self.count = self.add_variable((), "zeros", "float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        errors = ops.sqrt(squared_end_point_errors(y_true, y_pred, self.flow_scale_factor))
        weights = broadcast_weights(sample_weight, errors)
        self.total.assign_add(ops.sum(errors * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(ops.convert_to_tensor(self.total), ops.convert_to_tensor(self.count))

    def get_config(self):
        return {**super().get_config(), "flow_scale_factor": self.flow_scale_factor}


# Files saved while these classes lived in the zoo name them "zoo>...".
register_former_names("zoo", MatthewsCorrelation, BinaryF1, PearsonCorrelation, SpearmanCorrelation,
                      PeakSignalToNoiseRatio, EndPointError)


def bits_per_token(y_true, y_pred):
    """Cross-entropy of logits `y_pred` (..., V) against integer `y_true` (...) in bits (natural log / ln 2)."""
    nats = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    return nats / math.log(2.0)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class BitsPerByte(keras.metrics.MeanMetricWrapper):
    """Mean cross-entropy in bits per predicted token of a byte language model (from logits).

    A byte model's bits per byte is the compression rate it would reach as an arithmetic coder; a
    uniform guess over 256 bytes scores 8. Sample weights select positions as for any mean metric.

    Example:
    >>> metric = BitsPerByte()
    >>> metric.update_state(keras.ops.array([[1]]), keras.ops.zeros((1, 1, 4)))
    >>> round(float(metric.result()), 4)
    2.0
    """

    def __init__(self, name="bits_per_byte", dtype=None):
        super().__init__(fn=bits_per_token, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
