"""`PerceiverMaskedLM`: Perceiver IO's byte masked language model as a keras-hub `MaskedLM`."""

import keras
from keras_hub.models import MaskedLM, Task

from perceiver_keras.decoder import PerceiverDecoder
from perceiver_keras.hub import _preset_io, _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_masked_lm_preprocessor import PerceiverMaskedLMPreprocessor
from perceiver_keras.position_encoding import TrainablePositionEncoding
from perceiver_keras.text import TextPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverMaskedLM(_preset_io.PresetTask, MaskedLM):
    """{"token_ids", "padding_mask"} (B, L), "mask_positions" (B, P) -> byte logits (B, P, V) there.

    The paper's masked LM: one trainable query per position (only the masked positions' are decoded:
    decoding cost is linear in P), a decoder without query residual to the embedding width E, and logits
    from the backbone's own byte embedding (tied weights) plus its output bias. With
    `mask_positions = [0 .. L-1]` it is the whole-sequence model of the zoo and of transformers'
    `PerceiverForMaskedLM`.

    Args:
        backbone: a `PerceiverBackbone` with a `TextPreprocessor` input adapter and a padding mask.
        preprocessor: optional `PerceiverMaskedLMPreprocessor` (run by fit/predict/evaluate).
        query: optional `TrainablePositionEncoding(L, E)` or its config (default: L = the backbone's
            sequence length, E = its embedding width).
        decoder: optional `PerceiverDecoder` or its config (default: 8 heads, query/key width 256, value
            width E, no query residual, as the reference).

    Example:
    >>> import numpy as np
    >>> from perceiver_keras import PerceiverEncoder, TextPreprocessor
    >>> backbone = PerceiverBackbone(TextPreprocessor(262, 16, 8, output_bias=True),
    ...     PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     inputs_shape=(8,), input_dtype="int32", input_name="token_ids", use_padding_mask=True)
    >>> mlm = PerceiverMaskedLM(backbone)
    >>> mlm({"token_ids": np.ones((1, 8), "int32"), "padding_mask": np.ones((1, 8), "int32"),
    ...      "mask_positions": np.array([[2, 5]], "int32")}).shape
    (1, 2, 262)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.1.
    """

    backbone_cls = PerceiverBackbone
    preprocessor_cls = PerceiverMaskedLMPreprocessor
    input_adapter_cls = TextPreprocessor
    task_description = "a masked language model"
    head_layer_args = ("query", "decoder")

    def __init__(self, backbone, preprocessor=None, query=None, decoder=None, **kwargs):
        _task_checks.check_backbone(type(self), backbone)
        _task_checks.no_classes(type(self), kwargs)
        adapter = backbone.input_adapter
        self.backbone, self.preprocessor = backbone, preprocessor
        dtype = backbone.dtype_policy
        self.query = _task_checks.layer(query, lambda: TrainablePositionEncoding(
            backbone.inputs_shape[0], adapter.output_channels, name="output_queries", dtype=dtype), dtype)
        self.decoder = _task_checks.layer(decoder, lambda: PerceiverDecoder(
            num_heads=8, qk_channels=256, v_channels=adapter.output_channels, name="decoder", dtype=dtype), dtype)
        mask_positions = keras.Input(shape=(None,), dtype="int32", name="mask_positions")
        inputs = {**backbone.input, "mask_positions": mask_positions}
        embedded, latents = backbone.encode(backbone.input)
        outputs = self.decoder(self.query(embedded, indices=mask_positions), latents)
        logits = adapter(outputs, reverse=True)  # the tied byte embedding
        Task.__init__(self, inputs=inputs, outputs=logits, **kwargs)
