"""The end-point error (EPE) of optical flow as a Keras loss, in pixels.

EPE is the mean over pixels of ||prediction x `flow_scale_factor` - true flow||_2: the models emit
flow divided by the scale factor (DeepMind's checkpoint: outputs x 20 are pixels) and the datasets
hold flow in pixels. It takes any layout ending in the two flow channels: the dense (B, H, W, 2) or
the subsampled (B, O, 2) of training. `perceiver_keras.metrics.EndPointError` streams the same value.

Example:
    >>> model.compile(optimizer="adam", loss=EndPointErrorLoss(flow_scale_factor=20.0),
    ...               metrics=[EndPointError(flow_scale_factor=20.0)])
"""

from __future__ import annotations

import keras
from keras import ops

from perceiver_keras.saving import register_former_names


def checked_flow_scale_factor(flow_scale_factor) -> float:
    """`flow_scale_factor` as a float; ValueError unless it is a number > 0."""
    if isinstance(flow_scale_factor, bool) or not isinstance(flow_scale_factor, (int, float)) or flow_scale_factor <= 0:
        raise ValueError(f"Expected flow_scale_factor > 0. Received: flow_scale_factor={flow_scale_factor!r}")
    return float(flow_scale_factor)


def squared_end_point_errors(y_true, y_pred, flow_scale_factor: float):
    """||y_pred x flow_scale_factor - y_true||^2 over the last axis, in float32 whatever the inputs' dtype."""
    # Flows of tens of pixels square past bfloat16's precision.
    difference = ops.cast(y_pred, "float32") * flow_scale_factor - ops.cast(y_true, "float32")
    return ops.sum(ops.square(difference), axis=-1)


@keras.saving.register_keras_serializable(package="perceiver_keras")
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
        self.flow_scale_factor = checked_flow_scale_factor(flow_scale_factor)

    def call(self, y_true, y_pred):
        # The epsilon keeps the gradient finite where prediction and target agree exactly (zero flow
        # predicted for static pixels at initialisation); it adds at most 1e-6 pixels.
        return ops.sqrt(squared_end_point_errors(y_true, y_pred, self.flow_scale_factor) + 1e-12)

    def get_config(self):
        return {**super().get_config(), "flow_scale_factor": self.flow_scale_factor}


register_former_names("zoo", EndPointErrorLoss)
