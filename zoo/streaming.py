"""Helpers of the zoo's streaming metrics (PSNR, end-point error): sums over every value seen."""

from __future__ import annotations

from keras import ops


def broadcast_weights(sample_weight, values):
    """float32 weights of `values`' shape: ones, or `sample_weight` broadcast from the left (e.g. (B,))."""
    if sample_weight is None:
        return ops.ones_like(values, dtype="float32")
    weights = ops.cast(sample_weight, "float32")
    weights = ops.reshape(weights, ops.shape(weights) + (1,) * (len(values.shape) - len(weights.shape)))
    return ops.broadcast_to(weights, ops.shape(values))
