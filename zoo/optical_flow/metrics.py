"""The end-point error (EPE) of optical flow, as a Keras loss and a streamed metric, in pixels.

EPE is the mean over pixels of ||prediction x `flow_scale_factor` - true flow||_2: the models emit
flow divided by the scale factor (DeepMind's checkpoint: outputs x 20 are pixels) and the datasets
hold flow in pixels, so both report pixels. They take any layout ending in the two flow channels:
the dense (B, H, W, 2) or the subsampled (B, O, 2) of training. Both use `keras.ops` only.

Example:
    >>> model.compile(optimizer="adam", loss=EndPointErrorLoss(flow_scale_factor=20.0),
    ...               metrics=[EndPointError(flow_scale_factor=20.0)])
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.streaming import broadcast_weights

_PACKAGE = "zoo"  # As zoo.schedules.


def _check_scale(flow_scale_factor) -> float:
    if isinstance(flow_scale_factor, bool) or not isinstance(flow_scale_factor, (int, float)) or flow_scale_factor <= 0:
        raise ValueError(f"Expected flow_scale_factor > 0. Received: flow_scale_factor={flow_scale_factor!r}")
    return float(flow_scale_factor)


def _squared_error(y_true, y_pred, flow_scale_factor: float):
    # In float32 whatever the compute dtype: flows of tens of pixels square past bfloat16's precision.
    difference = ops.cast(y_pred, "float32") * flow_scale_factor - ops.cast(y_true, "float32")
    return ops.sum(ops.square(difference), axis=-1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EndPointErrorLoss(keras.losses.Loss):
    """Mean end-point error in pixels: the training loss of the optical-flow task.

    Args:
        flow_scale_factor: pixels per unit of the model's output (20 for the zoo's flow models).
        reduction, name, dtype: as for any Keras loss ("sum_over_batch_size" averages over pixels).

    Call arguments:
        y_true: flow in pixels (..., 2).
        y_pred: model outputs (..., 2), pixels / `flow_scale_factor`.
    """

    def __init__(self, flow_scale_factor=1.0, reduction="sum_over_batch_size", name="end_point_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.flow_scale_factor = _check_scale(flow_scale_factor)

    def call(self, y_true, y_pred):
        # The epsilon keeps the gradient finite where prediction and target agree exactly (zero flow
        # predicted for static pixels at initialisation); it adds at most 1e-6 pixels.
        return ops.sqrt(_squared_error(y_true, y_pred, self.flow_scale_factor) + 1e-12)

    def get_config(self):
        return {**super().get_config(), "flow_scale_factor": self.flow_scale_factor}


@keras.saving.register_keras_serializable(package=_PACKAGE)
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
        self.flow_scale_factor = _check_scale(flow_scale_factor)
        self.total = self.add_variable((), "zeros", "float32", name="total")
        self.count = self.add_variable((), "zeros", "float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        errors = ops.sqrt(_squared_error(y_true, y_pred, self.flow_scale_factor))
        weights = broadcast_weights(sample_weight, errors)
        self.total.assign_add(ops.sum(errors * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(ops.convert_to_tensor(self.total), ops.convert_to_tensor(self.count))

    def get_config(self):
        return {**super().get_config(), "flow_scale_factor": self.flow_scale_factor}
