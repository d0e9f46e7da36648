"""`PerceiverMultimodalAutoencoderPreprocessor`: clips -> the multimodal autoencoder's normalised inputs."""

import keras
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from perceiver_keras.hub import _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_converter import PerceiverImageConverter
from perceiver_keras.multimodal import MultimodalPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverMultimodalAutoencoderPreprocessor(Preprocessor):
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

    def __init__(self, image_converter=None, **kwargs):
        super().__init__(**kwargs)
        if image_converter is not None and image_converter.image_size is not None:
            raise ValueError("The multimodal autoencoder's videos are not resized (its Fourier queries fix their size). "
                             f"Expected an image converter without image_size. Received: image_size={image_converter.image_size}")
        self.image_converter = image_converter

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if self.image_converter is not None and "image" in x:
            x = dict(x, image=self.image_converter(x["image"]))
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        _task_checks.check_loader_modality(cls, loader)
        return super()._add_missing_kwargs(loader, kwargs)
