"""`PerceiverTokenizer`: the project's `ByteTokenizer` behind keras-hub's `Tokenizer` contract."""

import keras
from keras_hub.tokenizers import Tokenizer

from perceiver_keras import byte_tokenizer
from perceiver_keras.byte_tokenizer import ByteTokenizer
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone

# keras-hub's names for the special tokens (its packers read start_token_id / end_token_id).
_SPECIAL_TOKEN_NAMES = {"[PAD]": "pad_token", "[BOS]": "bos_token", "[EOS]": "eos_token", "[MASK]": "mask_token",
                        "[CLS]": "cls_token", "[SEP]": "sep_token"}


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverTokenizer(Tokenizer):
    """Perceiver IO's byte tokenizer (ids equal transformers' `PerceiverTokenizer`) as a keras-hub Tokenizer.

    `tokenize` gives the raw ids (UTF-8 bytes + 6, the literal strings "[PAD]" ... "[SEP]" as their
    special ids 0..5; no [CLS]/[SEP], no padding), `detokenize` the inverse, and `pack` the model's
    inputs: `[CLS] text [SEP]` (or `[CLS] a [SEP] b [SEP]` for pairs) truncated as the reference
    ("longest_first") and padded to a length. The work is done by `perceiver_keras.ByteTokenizer`
    (TensorFlow ops: it runs eagerly and in tf.data whatever the Keras backend). There is no
    vocabulary file: the preset's tokenizer.json is the whole tokenizer.

    Shapes: `tokenize` strings (B,) -> int32 ragged (B, None); `pack` -> {"token_ids", "padding_mask"}
    int32 (B, L).

    Example:
    >>> tokenizer = PerceiverTokenizer()
    >>> tokenizer.tokenize("hi").numpy().tolist()
    [110, 111]
    >>> tokenizer.pack(["hi"], sequence_length=6)["token_ids"].numpy().tolist()
    [[4, 110, 111, 5, 0, 0]]

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.1.
    """

    backbone_cls = PerceiverBackbone

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._raw = ByteTokenizer(add_special_tokens=False, name="byte_tokenizer")
        for token, name in _SPECIAL_TOKEN_NAMES.items():
            self._add_special_token(token, name)
        self.start_token_id, self.end_token_id = byte_tokenizer.CLS_ID, byte_tokenizer.SEP_ID

    def tokenize(self, inputs):
        return self._raw.tokenize(inputs)

    def detokenize(self, inputs, skip_special_tokens=False):
        return self._raw.detokenize(inputs, skip_special_tokens=skip_special_tokens)

    def pack(self, texts, pair=None, sequence_length=None):
        """{"token_ids", "padding_mask"} int32 (B, L) of texts (B,) (and pairs), as the reference encodes them."""
        return ByteTokenizer(sequence_length=sequence_length)(texts, pair)

    def vocabulary_size(self):
        return byte_tokenizer.VOCAB_SIZE

    def get_vocabulary(self):
        return list(byte_tokenizer.SPECIAL_TOKENS) + [chr(b) for b in range(256)]

    def id_to_token(self, id):
        if not 0 <= id < byte_tokenizer.VOCAB_SIZE:
            raise ValueError(f"`id` must be in [0, {byte_tokenizer.VOCAB_SIZE}). Received: id={id}")
        return self.get_vocabulary()[id]

    def token_to_id(self, token):
        if token in byte_tokenizer.SPECIAL_TOKENS:
            return byte_tokenizer.SPECIAL_TOKENS.index(token)
        if len(token) == 1 and ord(token) < 256:
            return ord(token) + byte_tokenizer.BYTE_OFFSET
        raise ValueError(f"PerceiverTokenizer has a token per byte and the special tokens "
                         f"{list(byte_tokenizer.SPECIAL_TOKENS)}. Received: token={token!r}")

    # No vocabulary file: nothing to save with the preset or to load from it.
    def save_assets(self, dir_path):
        pass

    def load_assets(self, dir_path):
        pass

    def load_preset_assets(self, preset):
        pass
