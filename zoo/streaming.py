"""Helpers of the streaming metrics (PSNR, end-point error), now in `perceiver_keras.metrics`."""

from perceiver_keras.metrics import broadcast_weights

__all__ = ["broadcast_weights"]
