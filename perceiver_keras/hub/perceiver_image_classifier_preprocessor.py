"""`PerceiverImageClassifierPreprocessor`: images -> the image classifier's normalised input."""

import keras
from keras_hub.models import ImageClassifierPreprocessor

from perceiver_keras.hub import _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_converter import PerceiverImageConverter
from perceiver_keras.image import ImagePreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverImageClassifierPreprocessor(ImageClassifierPreprocessor):
    """Resizes and normalises images (B, H, W, C) for `PerceiverImageClassifier`; labels pass through.

    Args:
        image_converter: a `PerceiverImageConverter` (the model's image size, the dataset's scale and offset).

    Example:
    >>> preprocessor = PerceiverImageClassifierPreprocessor(PerceiverImageConverter((8, 8), scale=1 / 16))
    >>> preprocessor(keras.ops.ones((2, 8, 8, 1)) * 16).shape
    (2, 8, 8, 1)
    """

    backbone_cls = PerceiverBackbone
    image_converter_cls = PerceiverImageConverter
    input_adapter_cls = ImagePreprocessor
    task_description = "an image model"

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        _task_checks.check_loader_modality(cls, loader)
        return super()._add_missing_kwargs(loader, kwargs)
