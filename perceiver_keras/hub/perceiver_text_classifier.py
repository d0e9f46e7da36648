"""`PerceiverTextClassifier`: a Perceiver IO byte-level text classifier as a keras-hub `TextClassifier`."""

import keras
from keras_hub.models import TextClassifier

from perceiver_keras.hub._classification_head import ClassifierTask
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_text_classifier_preprocessor import PerceiverTextClassifierPreprocessor
from perceiver_keras.text import TextPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverTextClassifier(ClassifierTask, TextClassifier):
    """{"token_ids", "padding_mask"} (B, L) -> class logits (B, num_classes), or strings through `predict`.

    The byte masked LM's encoder (so its weights transfer: `TextClassifier.from_preset(mlm_preset,
    num_classes=K)`), one trainable query decoded with a query residual and projected to the classes,
    as transformers' `PerceiverForSequenceClassification`. `num_classes=1` is a regression head.

    Args:
        backbone: a `PerceiverBackbone` with a `TextPreprocessor` input adapter and a padding mask.
        num_classes: int, the classes.
        preprocessor: optional `PerceiverTextClassifierPreprocessor` (run by fit/predict/evaluate).
        query, decoder, activation: as in `PerceiverImageClassifier`.

    Example:
    >>> from perceiver_keras import PerceiverEncoder, TextPreprocessor
    >>> backbone = PerceiverBackbone(TextPreprocessor(262, 16, 8),
    ...     PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     inputs_shape=(8,), input_dtype="int32", input_name="token_ids", use_padding_mask=True)
    >>> classifier = PerceiverTextClassifier(backbone, num_classes=2)
    >>> classifier({"token_ids": keras.ops.ones((1, 8), "int32"), "padding_mask": keras.ops.ones((1, 8), "int32")}).shape
    (1, 2)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.1 (GLUE).
    """

    backbone_cls = PerceiverBackbone
    preprocessor_cls = PerceiverTextClassifierPreprocessor
    input_adapter_cls = TextPreprocessor
    task_description = "a text classifier"
