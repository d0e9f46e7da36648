"""`PerceiverMaskedLMPreprocessor`: strings -> masked byte ids, the masked positions, their labels."""

import math

import keras
from keras_hub.layers import MaskedLMMaskGenerator
from keras_hub.models import MaskedLMPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from perceiver_keras.hub import _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_tokenizer import PerceiverTokenizer
from perceiver_keras.text import TextPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverMaskedLMPreprocessor(MaskedLMPreprocessor):
    """Texts (B,) -> ({"token_ids", "padding_mask", "mask_positions"}, mask_ids, mask_weights).

    Packs texts as `PerceiverTextClassifierPreprocessor` does, then masks bytes with keras-hub's
    `MaskedLMMaskGenerator` (`mask_selection_rate` of the bytes, of which `mask_token_rate` become
    [MASK] and `random_token_rate` a random id; the special tokens are never selected). The labels are the
    original ids at `mask_positions` (B, P), weighted 1 where a position was selected: what
    `PerceiverMaskedLM` and keras-hub's masked-LM loss expect.

    Args:
        tokenizer: a `PerceiverTokenizer`.
        sequence_length: int L, the model's.
        mask_selection_rate, mask_token_rate, random_token_rate: float probabilities.
        mask_selection_length: int P, masked positions per text (default: L x mask_selection_rate, rounded up).
        truncate: "longest_first" (the only one).

    Example:
    >>> preprocessor = PerceiverMaskedLMPreprocessor(PerceiverTokenizer(), sequence_length=16)
    >>> x, y, weights = preprocessor(["hello world"])
    >>> tuple(x["mask_positions"].shape), tuple(y.shape)
    ((1, 3), (1, 3))
    """

    backbone_cls = PerceiverBackbone
    tokenizer_cls = PerceiverTokenizer
    input_adapter_cls = TextPreprocessor
    task_description = "a text model"

    def __init__(self, tokenizer, sequence_length=2048, truncate="longest_first", mask_selection_rate=0.15,
                 mask_selection_length=None, mask_token_rate=0.8, random_token_rate=0.1, **kwargs):
        if truncate != "longest_first":
            raise ValueError(f"PerceiverMaskedLMPreprocessor truncates as the reference does. Expected "
                             f"truncate='longest_first'. Received: truncate={truncate!r}")
        if mask_selection_length is None:
            mask_selection_length = max(1, math.ceil(sequence_length * mask_selection_rate))
        super().__init__(tokenizer, sequence_length=sequence_length, truncate=truncate,
                         mask_selection_rate=mask_selection_rate, mask_selection_length=mask_selection_length,
                         mask_token_rate=mask_token_rate, random_token_rate=random_token_rate, **kwargs)

    def build(self, input_shape):
        # The tokenizer packs; the masker runs its TensorFlow path (the tokenizer's ids are TensorFlow tensors).
        self.masker = MaskedLMMaskGenerator(
            mask_selection_rate=self.mask_selection_rate, mask_selection_length=self.mask_selection_length,
            mask_token_rate=self.mask_token_rate, random_token_rate=self.random_token_rate,
            vocabulary_size=self.tokenizer.vocabulary_size(), mask_token_id=self.tokenizer.mask_token_id,
            unselectable_token_ids=self.tokenizer.special_token_ids, _allow_python_workflow=False)
        self.built = True

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        texts, pair = (x if len(x) == 2 else (x[0], None)) if isinstance(x, tuple) else (x, None)
        packed = self.tokenizer.pack(texts, pair, sequence_length=self.sequence_length)
        masked = self.masker(packed["token_ids"])
        x = {"token_ids": masked["token_ids"], "padding_mask": packed["padding_mask"],
             "mask_positions": masked["mask_positions"]}
        return keras.utils.pack_x_y_sample_weight(x, masked["mask_ids"], masked["mask_weights"])

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        _task_checks.check_loader_modality(cls, loader)
        kwargs.setdefault("sequence_length", loader.config["config"]["inputs_shape"][0])
        return super()._add_missing_kwargs(loader, kwargs)
