"""`PerceiverTextClassifierPreprocessor`: strings (or pairs) -> the text classifier's byte ids and mask."""

import keras
from keras_hub.models import TextClassifierPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from perceiver_keras.hub import _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_tokenizer import PerceiverTokenizer
from perceiver_keras.text import TextPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverTextClassifierPreprocessor(TextClassifierPreprocessor):
    """Texts (B,), or pairs as a tuple (texts, texts), -> {"token_ids", "padding_mask"} int32 (B, L).

    `[CLS] text [SEP]` (pairs `[CLS] a [SEP] b [SEP]`), truncated as the reference ("longest_first")
    and padded to `sequence_length` (the model's L): the inputs of `PerceiverTextClassifier` and of the
    zoo's text pipelines. Labels pass through.

    Args:
        tokenizer: a `PerceiverTokenizer`.
        sequence_length: int L.
        truncate: "longest_first", the reference's truncation (the only one).

    Example:
    >>> preprocessor = PerceiverTextClassifierPreprocessor(PerceiverTokenizer(), sequence_length=6)
    >>> keras.ops.convert_to_numpy(preprocessor(["hi"])["token_ids"]).tolist()
    [[4, 110, 111, 5, 0, 0]]
    """

    backbone_cls = PerceiverBackbone
    tokenizer_cls = PerceiverTokenizer
    input_adapter_cls = TextPreprocessor
    task_description = "a text model"

    def __init__(self, tokenizer, sequence_length=2048, truncate="longest_first", **kwargs):
        if truncate != "longest_first":
            raise ValueError(f"PerceiverTextClassifierPreprocessor truncates as the reference does. Expected "
                             f"truncate='longest_first'. Received: truncate={truncate!r}")
        super().__init__(tokenizer, sequence_length=sequence_length, truncate=truncate, **kwargs)

    def build(self, input_shape):
        self.built = True  # the tokenizer packs; keras-hub's MultiSegmentPacker is not used

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        texts, pair = (x if len(x) == 2 else (x[0], None)) if isinstance(x, tuple) else (x, None)
        x = self.tokenizer.pack(texts, pair, sequence_length=self.sequence_length)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        _task_checks.check_loader_modality(cls, loader)
        kwargs.setdefault("sequence_length", loader.config["config"]["inputs_shape"][0])
        return super()._add_missing_kwargs(loader, kwargs)
