"""The end-point error (EPE) of optical flow, as a Keras loss and a streamed metric, in pixels.

Both live in `perceiver_keras` (`losses.EndPointErrorLoss`, `metrics.EndPointError`), so that a
saved flow model's loss and metric reload after `import perceiver_keras` alone; they are importable
from here as before.

Example:
    >>> model.compile(optimizer="adam", loss=EndPointErrorLoss(flow_scale_factor=20.0),
    ...               metrics=[EndPointError(flow_scale_factor=20.0)])
"""

from perceiver_keras.losses import EndPointErrorLoss
from perceiver_keras.metrics import EndPointError

__all__ = ["EndPointError", "EndPointErrorLoss"]
