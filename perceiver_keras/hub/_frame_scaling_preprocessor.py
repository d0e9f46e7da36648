"""`FrameScalingPreprocessor`: the optical-flow and multimodal preprocessors' shared base (scale, never resize)."""

import keras
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from perceiver_keras.hub import _task_checks


class FrameScalingPreprocessor(Preprocessor):
    """A keras-hub `Preprocessor` whose image converter scales and offsets frames and never resizes them.

    The model fixes the frame size (its Fourier features or queries are built for it), so an image converter
    with `image_size` is refused.
    Targets and sample weights pass through. Not registered and without `backbone_cls`, so keras-hub's
    `from_preset` never picks it; the preprocessors built on it declare:
        why_not_resized: the first sentence of the error for an image converter with `image_size`.
        scale_frames(x): `x` with its frames through `self.image_converter`.

    Args:
        image_converter: a `PerceiverImageConverter` without `image_size`.
    """

    why_not_resized = None

    def __init__(self, image_converter=None, **kwargs):
        super().__init__(**kwargs)
        if image_converter is not None and image_converter.image_size is not None:
            raise ValueError(f"{self.why_not_resized} Expected an image converter without image_size. "
                             f"Received: image_size={image_converter.image_size}")
        self.image_converter = image_converter

    def scale_frames(self, x):
        raise NotImplementedError(f"{type(self).__name__} must say where its frames are: define scale_frames(x)")

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if self.image_converter is not None:
            x = self.scale_frames(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        _task_checks.check_loader_modality(cls, loader)
        return super()._add_missing_kwargs(loader, kwargs)
