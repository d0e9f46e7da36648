"""The vocabularies of causal language modelling: UTF-8 bytes, or a SentencePiece model (T5's).

A preset's metadata names its vocabulary (`tokenizer`: "bytes", the default, or "t5_sentencepiece").
Both turn documents into id streams inside tf.data (tensorflow-text for SentencePiece) and texts into
ids and back for generation. The SentencePiece model is read with `tf.io.gfile`, so a local file or a
`gs://` URL; T5's (`T5_SENTENCEPIECE_MODEL`, 32,000 pieces; pad 0, EOS 1, unknown 2) needs network.

Example:
    >>> vocabulary = vocabulary_for(zoo.registry.get_preset("pydoc_ar"))
    >>> vocabulary.encode("hi"), vocabulary.unit
    ([110, 111], 'byte')
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from perceiver_keras.byte_tokenizer import BYTE_OFFSET, EOS_ID, PAD_ID, VOCAB_SIZE, ByteTokenizer
from zoo.registry import Preset

T5_SENTENCEPIECE_MODEL = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
TOKENIZERS = ("bytes", "t5_sentencepiece")


class ByteVocabulary:
    """`ByteTokenizer`'s ids: 6 special ids (0 padding, EOS_ID before each document), then byte b at b + 6."""

    name, unit, size, pad_id, eos_id, first_text_id = "bytes", "byte", VOCAB_SIZE, PAD_ID, EOS_ID, BYTE_OFFSET

    def __init__(self):
        self._tokenizer = ByteTokenizer(add_special_tokens=False)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """A batch of strings (B,) -> ids (B, None) int32, no special ids."""
        return self._tokenizer.tokenize(texts)

    def encode(self, text: str | bytes) -> list[int]:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return [b + BYTE_OFFSET for b in data]

    def decode(self, ids: list[int]) -> bytes:
        return bytes(i - BYTE_OFFSET for i in ids if BYTE_OFFSET <= i < VOCAB_SIZE)

    def sampling_mask(self) -> np.ndarray:
        """True for the ids generation may choose: the bytes."""
        return np.arange(self.size) >= BYTE_OFFSET


class SentencePieceVocabulary:
    """A SentencePiece model's ids (as T5's: 0 padding, 1 EOS, 2 unknown), read from a file or URL.

    Args:
        model: the model file's path or URL (`tf.io.gfile`), or its serialized bytes.
        size: the model's vocabulary size as the model's logits see it (T5 rounds 32,100 up to
            32,128); at least the SentencePiece model's own size.
    """

    name, unit, first_text_id = "t5_sentencepiece", "token", 3

    def __init__(self, model: str | os.PathLike | bytes, size: int | None = None):
        import sentencepiece
        import tensorflow_text

        if isinstance(model, bytes):
            proto = model
        else:
            proto = _read(os.fspath(model))
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(proto)
        except (RuntimeError, OSError) as error:
            raise ValueError(f"Expected a SentencePiece model. Received: {model!r} ({error})") from None
        self._processor = processor
        self._tokenizer = tensorflow_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)
        own = processor.get_piece_size()
        self.size = own if size is None else int(size)
        if self.size < own:
            raise ValueError(f"The model's vocabulary_size must hold the SentencePiece model's {own} ids. "
                             f"Received: vocabulary_size={self.size}")
        self.pad_id = max(processor.pad_id(), 0)
        self.eos_id = processor.eos_id()
        if self.eos_id < 0:
            raise ValueError("Expected a SentencePiece model with an EOS piece (documents are separated by it). "
                             f"Received: {model!r} (eos_id -1)")
        self._special = sorted({i for i in (processor.pad_id(), processor.eos_id(), processor.unk_id(),
                                            processor.bos_id()) if i >= 0})

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return self._tokenizer.tokenize(texts)

    def encode(self, text: str | bytes) -> list[int]:
        return list(self._processor.EncodeAsIds(text.decode("utf-8", errors="replace") if isinstance(text, bytes)
                                                else text))

    def decode(self, ids: list[int]) -> bytes:
        own = self._processor.get_piece_size()
        return self._processor.DecodeIds([int(i) for i in ids if i < own]).encode("utf-8")

    def sampling_mask(self) -> np.ndarray:
        """True for the ids generation may choose: the model's pieces, not its special or padding ids."""
        mask = np.zeros(self.size, bool)
        mask[:self._processor.get_piece_size()] = True
        mask[self._special] = False
        return mask


def model_location(path: str | os.PathLike | None) -> str | None:
    """A SentencePiece model's location as a run records it: a URL as given, a local path made absolute (so
    `python -m zoo generate RUN` and `python -m export RUN` find it from any folder)."""
    if path is None:
        return None
    path = os.fspath(path)
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def _read(path: str) -> bytes:
    """The bytes of a local file or URL (gs://...), or a ValueError saying why they cannot be read."""
    try:
        if not tf.io.gfile.exists(path):
            raise ValueError(f"Expected a SentencePiece model file or URL. Received: {path!r} (not found)")
        with tf.io.gfile.GFile(path, "rb") as file:
            return file.read()
    except tf.errors.OpError as error:  # e.g. no network for gs://
        raise ValueError(f"Could not read the SentencePiece model {path!r}: {error.message.splitlines()[0]}. Copy it "
                         "where this machine can read it and pass --sentencepiece-model FILE "
                         "(sentencepiece_model= in Python).") from None


def make_vocabulary(tokenizer: str = "bytes", vocabulary_size: int | None = None,
                    sentencepiece_model: str | os.PathLike | bytes | None = None
                    ) -> ByteVocabulary | SentencePieceVocabulary:
    """The vocabulary named `tokenizer` ("bytes" or "t5_sentencepiece": `sentencepiece_model`, default
    T5's file, for a model of `vocabulary_size` logits)."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"Expected tokenizer in {list(TOKENIZERS)}. Received: tokenizer={tokenizer!r}")
    if tokenizer == "bytes":
        return ByteVocabulary()
    return SentencePieceVocabulary(sentencepiece_model or T5_SENTENCEPIECE_MODEL, size=vocabulary_size)


def tokenizer_of(preset: Preset) -> str:
    """The preset's vocabulary name (metadata "tokenizer"; "bytes" when it names none)."""
    return preset.metadata.get("tokenizer", "bytes")


def unit_of(preset: Preset) -> str:
    """What one id of the preset's vocabulary is: "byte" or "token" (the metric is bits per that)."""
    return "byte" if tokenizer_of(preset) == "bytes" else "token"


def vocabulary_for(preset: Preset, options: dict[str, Any] | None = None) -> ByteVocabulary | SentencePieceVocabulary:
    """The vocabulary of `preset`; `options["sentencepiece_model"]` replaces T5's file."""
    return make_vocabulary(tokenizer_of(preset), preset.config.get("vocabulary_size"),
                           (options or {}).get("sentencepiece_model"))
