"""`PerceiverImageConverter`: keras-hub's image converter (resize, scale, offset) for Perceiver presets."""

import keras
from keras_hub.layers import ImageConverter

from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverImageConverter(ImageConverter):
    """Resizes images to the model's size and normalises them: `x * scale + offset`, per channel.

    keras-hub's `ImageConverter` (arguments `image_size`, `scale`, `offset`, ...), registered for
    `PerceiverBackbone` so that `ImageConverter.from_preset(dir)` finds it. The image classifiers use
    it with `image_size`; the optical-flow and multimodal preprocessors use it without (their models'
    Fourier features fix the frame size) on frame pairs (B, 2, H, W, C) and videos (B, T, H, W, C).
    For a dataset normalised with `mean` and `std` after dividing by `pixel_max`:
    `scale = 1 / (pixel_max * std)`, `offset = -mean / std`.

    Example:
    >>> converter = PerceiverImageConverter(image_size=(8, 8), scale=1 / 255)
    >>> converter(keras.ops.ones((2, 16, 16, 3)) * 255).shape
    (2, 8, 8, 3)
    """

    backbone_cls = PerceiverBackbone
