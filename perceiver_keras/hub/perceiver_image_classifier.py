"""`PerceiverImageClassifier`: a Perceiver IO image classifier as a keras-hub `ImageClassifier`."""

import keras
from keras_hub.models import ImageClassifier

from perceiver_keras.hub._classification_head import ClassifierTask
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_classifier_preprocessor import PerceiverImageClassifierPreprocessor
from perceiver_keras.image import ImagePreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverImageClassifier(ClassifierTask, ImageClassifier):
    """Images (B, H, W, C) -> class logits (B, num_classes): a backbone, one query, a decoder.

    One trainable query (B, 1, E) cross-attends to the backbone's latents with a query residual and is
    projected to the classes, as the paper's (and transformers') image classifiers. A new
    `num_classes` builds a new head on the same backbone:
    `keras_hub.models.ImageClassifier.from_preset(dir, num_classes=K)`.

    Args:
        backbone: a `PerceiverBackbone` with an `ImagePreprocessor` input adapter.
        num_classes: int, the classes.
        preprocessor: optional `PerceiverImageClassifierPreprocessor` (run by fit/predict/evaluate).
        query: optional `TrainablePositionEncoding(1, E)` (default E: the latent width) or its config.
        decoder: optional `PerceiverDecoder` (or its config, whose `output_channels` becomes
            `num_classes`); default one head with a query residual, as the reference.
        activation: optional activation of the logits (None: logits, as the zoo's models).

    Example:
    >>> from perceiver_keras import ImagePreprocessor, PerceiverEncoder
    >>> backbone = PerceiverBackbone(ImagePreprocessor("pixels", num_bands=2),
    ...     PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     inputs_shape=(8, 8, 1), input_name="images")
    >>> PerceiverImageClassifier(backbone, num_classes=3)(keras.ops.ones((2, 8, 8, 1))).shape
    (2, 3)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.5.
    """

    backbone_cls = PerceiverBackbone
    preprocessor_cls = PerceiverImageClassifierPreprocessor
    input_adapter_cls = ImagePreprocessor
    task_description = "an image classifier"
