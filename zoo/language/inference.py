"""Using the language models on text: batch encoding with checks, and `fill_mask`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from perceiver_keras.byte_tokenizer import BYTE_OFFSET, MASK_ID, PAD_ID, VOCAB_SIZE, ByteTokenizer

Span = tuple[int, int]


def sequence_length_of(model: keras.Model) -> int:
    """The fixed number of byte positions L of a language model's `token_ids` input."""
    inputs = model.input if isinstance(model.input, Mapping) else {}
    if "token_ids" not in inputs:
        raise ValueError(f"Expected a language model with a 'token_ids' input. Received: inputs={sorted(inputs)}")
    return int(inputs["token_ids"].shape[1])


def check_token_inputs(inputs: Mapping[str, np.ndarray], sequence_length: int) -> dict[str, np.ndarray]:
    """Validates {token_ids, padding_mask} for a model of `sequence_length` positions; returns int32 copies.

    Raises:
        ValueError: a missing key, an empty batch, a shape other than (B, sequence_length), a mask
            that differs in shape from the ids or holds values other than 0/1, or an id outside
            [0, 262). Each message names the expected and the received value.
    """
    missing = sorted({"token_ids", "padding_mask"} - set(inputs))
    if missing:
        raise ValueError(f"Expected the keys ['padding_mask', 'token_ids']. Received: keys={sorted(inputs)}")
    ids, mask = (np.asarray(inputs[k]) for k in ("token_ids", "padding_mask"))
    if ids.ndim != 2 or ids.shape[1] != sequence_length:
        raise ValueError(f"Expected token_ids of shape (batch, {sequence_length}). Received: shape={ids.shape}")
    if ids.shape[0] == 0:
        raise ValueError(f"Expected at least one sequence. Received: an empty batch, token_ids.shape={ids.shape}")
    if mask.shape != ids.shape:
        raise ValueError(f"Expected padding_mask of shape {ids.shape} (as token_ids). Received: shape={mask.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"Expected padding_mask values 0 or 1. Received: values={np.unique(mask)[:10].tolist()}")
    bad = ids[(ids < 0) | (ids >= VOCAB_SIZE)]
    if bad.size:
        raise ValueError(f"Expected token ids in [0, {VOCAB_SIZE}). Received: id={int(bad[0])}")
    return {"token_ids": ids.astype("int32"), "padding_mask": mask.astype("int32")}


def fill_mask(model: keras.Model, texts: str | Sequence[str],
              mask_spans: Sequence[Span] | Sequence[Sequence[Span]] | None = None) -> str | list[str]:
    """Fills masked bytes of text with a masked language model's most likely bytes.

    A byte is masked where the text holds the literal "[MASK]" (one byte each, as the reference
    tokenizer reads it) or where `mask_spans` gives `(start, end)` UTF-8 byte offsets of the
    text. Each masked byte is replaced by the model's most likely byte (special ids excluded);
    the bytes are decoded as UTF-8 with invalid sequences replaced, as the reference decoder does.

    Args:
        model: a masked language model (inputs {token_ids, padding_mask}, logits (B, L, 262)).
        texts: one text or a list.
        mask_spans: for one text, a list of (start, end) byte spans; for a list, one list per text.

    Returns:
        The filled text (or list of texts).

    Example:
    >>> fill_mask(model, "The cat sat on the [MASK][MASK][MASK].")  # doctest: +SKIP
    """
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    if not texts:
        raise ValueError("Expected at least one text. Received: an empty list")
    spans = [mask_spans or []] if single else list(mask_spans or [[] for _ in texts])
    if len(spans) != len(texts):
        raise ValueError(f"Expected one list of spans per text ({len(texts)}). Received: {len(spans)} lists")
    length = sequence_length_of(model)
    tokenizer = ByteTokenizer()  # no length: truncation is done (and reported) here
    ids = np.full((len(texts), length), PAD_ID, "int32")
    truncated = 0
    for row, (text, text_spans) in enumerate(zip(texts, spans)):
        encoded = tokenizer.encode(text)
        if len(encoded) > length:  # [CLS] + the first L - 2 ids + [SEP], as the reference truncates
            encoded, truncated = encoded[:length - 1] + encoded[-1:], truncated + 1
        num_bytes = len(encoded) - 2  # without [CLS] and [SEP]
        for start, end in text_spans:
            if not 0 <= start < end <= num_bytes:
                raise ValueError(f"Expected byte spans within [0, {num_bytes}] of text {row}. "
                                 f"Received: span=({start}, {end})")
            encoded[1 + start:1 + end] = [MASK_ID] * (end - start)
        ids[row, :len(encoded)] = encoded
    feed = check_token_inputs({"token_ids": ids, "padding_mask": (ids != PAD_ID).astype("int32")}, length)
    logits = keras.ops.convert_to_numpy(model(feed, training=False))
    predicted = logits[..., BYTE_OFFSET:].argmax(-1) + BYTE_OFFSET  # bytes only, never a special id
    filled = np.where(ids == MASK_ID, predicted, ids)
    outputs = [tokenizer.decode([int(i) for i in row if i >= BYTE_OFFSET]) for row in filled]
    if truncated:
        warnings.warn(f"{truncated} of {len(texts)} texts were longer than the model's {length} positions "
                      f"and were truncated to {length - 2} bytes.", stacklevel=2)
    return outputs[0] if single else outputs
