"""`PerceiverMultimodalAutoencoderPreprocessor`: clips -> the multimodal autoencoder's normalised inputs."""

import keras

from perceiver_keras.hub._frame_scaling_preprocessor import FrameScalingPreprocessor
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_converter import PerceiverImageConverter
from perceiver_keras.multimodal import MultimodalPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverMultimodalAutoencoderPreprocessor(FrameScalingPreprocessor):
    """Normalises the "image" video (B, T, H, W, 3) of a clip dict; audio, label and indices pass through.

    The image converter scales and offsets every frame (e.g. uint8 to [0, 1]: `scale=1 / 255`) and does
    not resize: the model's Fourier queries fix the video size. Targets pass through.

    Args:
        image_converter: a `PerceiverImageConverter` without `image_size`.

    Example:
    >>> preprocessor = PerceiverMultimodalAutoencoderPreprocessor(PerceiverImageConverter(scale=1 / 255))
    >>> clip = preprocessor({"image": keras.ops.ones((1, 2, 4, 4, 3)) * 255, "audio": keras.ops.ones((1, 8, 1))})
    >>> float(keras.ops.convert_to_numpy(clip["image"]).max())
    1.0
    """

    backbone_cls = PerceiverBackbone
    image_converter_cls = PerceiverImageConverter
    input_adapter_cls = MultimodalPreprocessor
    task_description = "a multimodal autoencoder"
    why_not_resized = "The multimodal autoencoder's videos are not resized (its Fourier queries fix their size)."

    def scale_frames(self, x):
        return dict(x, image=self.image_converter(x["image"])) if "image" in x else x
