"""The classification head the image and text classifiers share: one query, a decoder, logits."""

import keras
from keras_hub.models import Task

from perceiver_keras.decoder import PerceiverDecoder
from perceiver_keras.hub import _preset_io, _task_checks
from perceiver_keras.image import ClassificationPostprocessor
from perceiver_keras.position_encoding import TrainablePositionEncoding


class ClassifierTask(_preset_io.PresetTask):
    """The constructor and config of `PerceiverImageClassifier` and `PerceiverTextClassifier`.

    As the zoo's classifiers (and the reference's): one trainable query of the latent width, a decoder with
    a query residual projecting to the classes. A decoder config of another width is rebuilt with
    `num_classes` outputs (a new head on the same backbone).
    """

    head_layer_args = ("query", "decoder")

    def __init__(self, backbone, num_classes=None, preprocessor=None, query=None, decoder=None, activation=None,
                 **kwargs):
        _task_checks.check_backbone(type(self), backbone)
        num_classes = _task_checks.num_classes(type(self), num_classes)
        self.backbone, self.preprocessor = backbone, preprocessor
        dtype = backbone.dtype_policy
        self.query = _task_checks.layer(query, lambda: TrainablePositionEncoding(
            1, backbone.num_latent_channels, name="classification_query", dtype=dtype), dtype)
        self.decoder = _task_checks.layer(decoder, lambda: PerceiverDecoder(
            use_query_residual=True, output_channels=num_classes, name="decoder", dtype=dtype), dtype,
            output_channels=num_classes)
        self.postprocessor = ClassificationPostprocessor(name="logits", dtype=dtype)
        inputs = backbone.input
        embedded, latents = backbone.encode(inputs)
        outputs = self.postprocessor(self.decoder(self.query(embedded), latents))
        if activation is not None:
            outputs = keras.layers.Activation(activation, name="predictions", dtype=dtype)(outputs)
        Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes, self.activation = num_classes, activation

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, activation=self.activation)
        return config
