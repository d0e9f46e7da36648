"""`PerceiverOpticalFlowPreprocessor`: frame pairs -> the flow model's normalised frames."""

import keras

from perceiver_keras.flow import FlowPreprocessor
from perceiver_keras.hub._frame_scaling_preprocessor import FrameScalingPreprocessor
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_converter import PerceiverImageConverter


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverOpticalFlowPreprocessor(FrameScalingPreprocessor):
    """Normalises frame pairs (B, 2, H, W, 3) (or the "frames" of a dict) for `PerceiverOpticalFlow`.

    The image converter scales and offsets every frame (e.g. uint8 0..255 to DeepMind's [-1, 1]:
    `scale=2 / 255, offset=-1`) and does not resize: the model's Fourier features fix the frame size,
    and resizing would change the flow. Flow targets pass through.

    Args:
        image_converter: a `PerceiverImageConverter` without `image_size`.

    Example:
    >>> preprocessor = PerceiverOpticalFlowPreprocessor(PerceiverImageConverter(scale=2 / 255, offset=-1.0))
    >>> float(keras.ops.convert_to_numpy(preprocessor(keras.ops.ones((1, 2, 4, 4, 3)) * 255)).max())
    1.0
    """

    backbone_cls = PerceiverBackbone
    image_converter_cls = PerceiverImageConverter
    input_adapter_cls = FlowPreprocessor
    task_description = "an optical-flow model"
    why_not_resized = "Optical-flow frames are not resized (the flow would change with them)."

    def scale_frames(self, x):
        return dict(x, frames=self.image_converter(x["frames"])) if isinstance(x, dict) else self.image_converter(x)
