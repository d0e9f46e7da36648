"""`PerceiverMultimodalAutoencoder`: Perceiver IO's video, audio and label autoencoder as a keras-hub `Task`."""

import keras
from keras_hub.models import Task

from perceiver_keras.hub import _preset_io, _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_multimodal_autoencoder_preprocessor import (
    PerceiverMultimodalAutoencoderPreprocessor,
)
from perceiver_keras.multimodal import MultimodalPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverMultimodalAutoencoder(_preset_io.PresetTask, Task):
    """A dict of modalities in ("audio", "image", "label" for the paper's model), the same decoded out.

    The backbone embeds and concatenates the modalities and encodes them; one decoder runs over every
    modality's queries (`MultimodalQuery`), and `MultimodalPostprocessor`'s heads give each modality back.
    For each of `subsampled_modalities` the model also takes "<modality>_indices" (B, O) and decodes
    those points only (subsampled decoding in training), as `MultimodalPerceiverIO`.

    Args:
        backbone: a `PerceiverBackbone` with a `MultimodalPreprocessor` input adapter.
        query: a `MultimodalQuery` or its config.
        decoder: a `PerceiverDecoder` or its config.
        postprocessor: a `MultimodalPostprocessor` or its config.
        preprocessor: optional `PerceiverMultimodalAutoencoderPreprocessor` (run by fit/predict/evaluate).
        subsampled_modalities: modalities decoded at given indices only.

    Example:
    >>> from perceiver_keras import (MultimodalPostprocessor, MultimodalQuery, OneHotPreprocessor,
    ...     PerceiverDecoder, PerceiverEncoder, TrainablePositionEncoding)
    >>> backbone = PerceiverBackbone(MultimodalPreprocessor({"label": OneHotPreprocessor(3)}),
    ...     PerceiverEncoder(4, 8, num_self_attention_layers_per_block=1, num_self_attention_heads=2))
    >>> model = PerceiverMultimodalAutoencoder(backbone, MultimodalQuery({"label": TrainablePositionEncoding(1, 6)}),
    ...     PerceiverDecoder(output_channels=8), MultimodalPostprocessor({"label": 3}, {"label": (3,)}))
    >>> model({"label": keras.ops.ones((2, 3))})["label"].shape
    (2, 3)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.3.
    """

    backbone_cls = PerceiverBackbone
    preprocessor_cls = PerceiverMultimodalAutoencoderPreprocessor
    input_adapter_cls = MultimodalPreprocessor
    task_description = "a multimodal autoencoder"
    head_layer_args = ("query", "decoder", "postprocessor")

    def __init__(self, backbone, query, decoder, postprocessor, preprocessor=None, subsampled_modalities=(), **kwargs):
        _task_checks.check_backbone(type(self), backbone)
        _task_checks.no_classes(type(self), kwargs)
        self.backbone, self.preprocessor = backbone, preprocessor
        dtype = backbone.dtype_policy
        self.query, self.decoder, self.postprocessor = (
            _task_checks.layer(spec, None, dtype) for spec in (query, decoder, postprocessor))
        subsampled_modalities = sorted(subsampled_modalities)
        decodable = set(self.query.queries) & set(self.postprocessor.output_channels)
        if not set(subsampled_modalities) <= decodable:
            raise ValueError(f"`subsampled_modalities` must be decoded modalities ({', '.join(sorted(decodable))}). "
                             f"Received: subsampled_modalities={subsampled_modalities}")
        modalities = backbone.input
        indices = {key: keras.Input(shape=(None,), dtype="int32", name=f"{key}_indices") for key in subsampled_modalities}
        embedded, latents = backbone.encode(modalities)
        outputs = self.decoder(self.query(embedded, indices=indices or None), latents)
        outputs = self.postprocessor(outputs, indices=indices or None)
        inputs = {**modalities, **{f"{key}_indices": x for key, x in indices.items()}}
        Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.subsampled_modalities = subsampled_modalities

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """As `keras.Model.compile`; "auto": Adam(1e-4), L1 for every modality but "label" (cross-entropy)."""
        if loss == "auto":
            loss = {key: keras.losses.CategoricalCrossentropy(from_logits=True) if key == "label"
                    else keras.losses.MeanAbsoluteError() for key in self.postprocessor.output_channels}
        super().compile(optimizer=keras.optimizers.Adam(1e-4) if optimizer == "auto" else optimizer, loss=loss,
                        metrics=None if metrics == "auto" else metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(subsampled_modalities=list(self.subsampled_modalities))
        return config
