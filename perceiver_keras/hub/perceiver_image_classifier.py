"""`PerceiverImageClassifier`: a Perceiver IO image classifier as a keras-hub `ImageClassifier`."""

import keras
from keras_hub.models import ImageClassifier, Task

from perceiver_keras.hub import _preset_files, _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_classifier_preprocessor import PerceiverImageClassifierPreprocessor
from perceiver_keras.hub._classification_head import classification_head
from perceiver_keras.image import ImagePreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverImageClassifier(ImageClassifier):
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

    def __init__(self, backbone, num_classes=None, preprocessor=None, query=None, decoder=None, activation=None,
                 **kwargs):
        _task_checks.check_backbone(type(self), backbone)
        num_classes = _task_checks.num_classes(type(self), num_classes)
        self.backbone, self.preprocessor = backbone, preprocessor
        inputs = backbone.input
        self.query, self.decoder, self.postprocessor, outputs = classification_head(
            backbone, inputs, num_classes, query, decoder, activation)
        Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes, self.activation = num_classes, activation

    def save_to_preset(self, preset_dir, max_shard_size=10, metadata=None):
        """Writes the preset (task, backbone, preprocessor, metadata) to `preset_dir`, all or nothing.

        `metadata`: JSON-able entries added to metadata.json under "perceiver_keras".
        """
        with _preset_files.writing(preset_dir) as folder:
            super().save_to_preset(folder, max_shard_size=max_shard_size)
            _preset_files.add_metadata(folder, type(self).__name__, metadata)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        _preset_files.check_preset(preset, cls, load_weights, cls.input_adapter_cls, cls.task_description)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def get_config(self):
        config = Task.get_config(self)
        config.update(num_classes=self.num_classes, activation=self.activation,
                      query=keras.saving.serialize_keras_object(self.query),
                      decoder=keras.saving.serialize_keras_object(self.decoder))
        return config
