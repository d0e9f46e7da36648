"""The classification head the image and text classifiers share: one query, a decoder, logits."""

import keras

from perceiver_keras.decoder import PerceiverDecoder
from perceiver_keras.hub import _task_checks
from perceiver_keras.image import ClassificationPostprocessor
from perceiver_keras.position_encoding import TrainablePositionEncoding


def classification_head(backbone, inputs, num_classes, query, decoder, activation):
    """(query, decoder, postprocessor, outputs (B, num_classes)) of a classifier on `backbone`'s `inputs`.

    As the zoo's classifiers (and the reference's): one trainable query of the latent width, a decoder with
    a query residual projecting to the classes. A decoder config of another width is rebuilt with
    `num_classes` outputs (a new head on the same backbone).
    """
    dtype = backbone.dtype_policy
    query = _task_checks.layer(query, lambda: TrainablePositionEncoding(
        1, backbone.num_latent_channels, name="classification_query", dtype=dtype), dtype)
    decoder = _task_checks.layer(decoder, lambda: PerceiverDecoder(
        use_query_residual=True, output_channels=num_classes, name="decoder", dtype=dtype), dtype,
        output_channels=num_classes)
    postprocessor = ClassificationPostprocessor(name="logits", dtype=dtype)
    embedded, latents = backbone.encode(inputs)
    outputs = postprocessor(decoder(query(embedded), latents))
    if activation is not None:
        outputs = keras.layers.Activation(activation, name="predictions", dtype=dtype)(outputs)
    return query, decoder, postprocessor, outputs
