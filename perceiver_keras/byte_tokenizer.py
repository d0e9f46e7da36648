"""Perceiver IO's byte-level tokenizer as a Keras preprocessing layer (TensorFlow ops, tf.data ready).

The ids equal Hugging Face transformers' `PerceiverTokenizer` exactly: UTF-8 bytes offset by 6, the
ids 0..5 reserved for the special tokens "[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]"
(these literal strings inside a text are matched as their special token, as the reference does),
`[CLS] a [SEP]` for one text and `[CLS] a [SEP] b [SEP]` for a pair, and the reference's
"longest_first" truncation.

This module imports TensorFlow; the tokenizer is TensorFlow-only (it runs in `tf.data` and in a
SavedModel string signature whatever Keras backend the model uses). It only uses core TensorFlow
ops, so a SavedModel that contains it loads without tensorflow-text.
"""

import re
import warnings

import keras
import numpy as np
import tensorflow as tf

from perceiver_keras import _checks

PAD_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(6)
SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]")
BYTE_OFFSET = len(SPECIAL_TOKENS)
VOCAB_SIZE = 256 + BYTE_OFFSET

# The special strings cannot overlap one another (each starts with "[", ends with "]" and holds no
# bracket inside), so a left-to-right regex split finds the same matches as the reference's trie.
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")
_SPECIAL_ENCODER = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
# Every id's bytes: the special strings, then the 256 single bytes.
_ID_BYTES = tuple(s.encode("utf-8") for s in SPECIAL_TOKENS) + tuple(bytes([b]) for b in range(256))
_OPEN_BRACKET_ID = ord("[") + BYTE_OFFSET


def _longest_first(len_a, len_b, budget):
    """Lengths kept of a pair under transformers' "longest_first" truncation (Python ints)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    if len_a <= len_b:
        keep_a = min(len_a, (budget + 1) // 2)
        return keep_a, budget - keep_a
    keep_b = min(len_b, budget // 2)
    return budget - keep_b, keep_b


def _num_special(add_special_tokens, pair):
    return (3 if pair else 2) if add_special_tokens else 0


def _tokenize_flat(texts):
    """Raw ids of a 1-D string tensor (N,) -> int32 RaggedTensor (N, None)."""
    # Split on "[": every piece but a row's first began with "[" and is either a special
    # token ("MASK]...") or a plain bracket. Byte-exact, so any bytes (even invalid UTF-8) pass.
    pieces = tf.strings.split(texts, sep="[")
    flat = pieces.flat_values
    first = tf.equal(tf.ragged.range(pieces.row_lengths()).flat_values, 0)
    special_id = tf.fill(tf.shape(flat), tf.constant(-1, tf.int32))
    skip = tf.zeros(tf.shape(flat), tf.int32)
    for token_id, token in enumerate(SPECIAL_TOKENS):
        name = token[1:]
        hit = tf.logical_and(
            tf.logical_not(first), tf.equal(tf.strings.substr(flat, 0, len(name)), name)
        )
        special_id = tf.where(hit, token_id, special_id)
        skip = tf.where(hit, len(name), skip)
    prefix_id = tf.where(special_id >= 0, special_id, _OPEN_BRACKET_ID)
    # A one-id prefix ([special] or "[") for every piece but the first, then the rest's bytes.
    has_prefix = tf.cast(tf.logical_not(first), tf.int64)
    prefix = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(prefix_id, tf.logical_not(first)), has_prefix)
    rest = tf.strings.substr(flat, skip, tf.strings.length(flat) - skip)
    chars = tf.strings.bytes_split(rest)
    byte_values = tf.reshape(tf.io.decode_raw(chars.flat_values, tf.uint8), [-1])
    byte_ids = chars.with_flat_values(tf.cast(byte_values, tf.int32) + BYTE_OFFSET)
    piece_ids = tf.concat([prefix, byte_ids], axis=1)
    return pieces.with_flat_values(piece_ids).merge_dims(1, 2)


def _keep_first(ids, keep):
    """The first keep[i] ids of every row i of a RaggedTensor (N, None) (cheap dense ops)."""
    row_ids = ids.value_rowids()
    position = tf.range(tf.shape(ids.values, out_type=row_ids.dtype)[0]) - tf.gather(ids.row_starts(), row_ids)
    kept = tf.boolean_mask(ids.values, position < tf.cast(tf.gather(keep, row_ids), row_ids.dtype))
    return tf.RaggedTensor.from_row_lengths(kept, tf.cast(keep, row_ids.dtype), validate=False)


def _pack(ids, pair_ids, length, add_special_tokens):
    """Truncates, adds [CLS]/[SEP] and pads ids (N, None) (and a pair's).

    `length`: None (ragged output), an int or an int32 scalar tensor. Returns the ragged ids or the
    {"token_ids", "padding_mask"} dict, and the (N,) bool "truncated" (None without `length`).
    """
    batch = ids.nrows()
    truncated = None
    if length is not None:
        budget = length - _num_special(add_special_tokens, pair_ids is not None)
        len_a = tf.cast(ids.row_lengths(), tf.int32)
        if pair_ids is None:
            truncated = len_a > budget
            ids = _keep_first(ids, tf.minimum(len_a, budget))
        else:
            len_b = tf.cast(pair_ids.row_lengths(), tf.int32)
            truncated = len_a + len_b > budget
            keep_a_short = tf.minimum(len_a, (budget + 1) // 2)  # when len_a <= len_b
            keep_b_short = tf.minimum(len_b, budget // 2)  # when len_a > len_b
            keep_a = tf.where(len_a <= len_b, keep_a_short, budget - keep_b_short)
            keep_b = tf.where(len_a <= len_b, budget - keep_a_short, keep_b_short)
            keep_a = tf.where(truncated, keep_a, len_a)
            keep_b = tf.where(truncated, keep_b, len_b)
            ids, pair_ids = _keep_first(ids, keep_a), _keep_first(pair_ids, keep_b)
    parts = [ids] if pair_ids is None else [ids, pair_ids]
    if add_special_tokens:
        cls = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), CLS_ID))
        sep = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), SEP_ID))
        parts = [cls, ids, sep] + ([] if pair_ids is None else [pair_ids, sep])
    parts = [p.with_row_splits_dtype(tf.int64) for p in parts]
    ids = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    if length is None:
        return ids, truncated
    shape = [None, length] if isinstance(length, int) else tf.stack([batch, tf.cast(length, batch.dtype)])
    token_ids = ids.to_tensor(default_value=PAD_ID, shape=shape)
    padding_mask = tf.sequence_mask(ids.row_lengths(), length, dtype=tf.int32)
    return {"token_ids": token_ids, "padding_mask": padding_mask}, truncated


def _encode(texts, pair, length, add_special_tokens):
    """Texts (N,) (and pair (N,)) -> `_pack`'s output, in TensorFlow ops."""
    pair_ids = None if pair is None else _tokenize_flat(pair)
    return _pack(_tokenize_flat(texts), pair_ids, length, add_special_tokens)


_tokenize_compiled = tf.function(
    _tokenize_flat, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
)
_EAGER_ENCODERS = {}


def _tokenize_1d(texts):
    """`_tokenize_flat`, as one compiled graph when eager."""
    return _tokenize_compiled(texts) if tf.executing_eagerly() else _tokenize_flat(texts)


def _eager_encoder(has_pair, has_length, add_special_tokens):
    """A compiled `_encode` taking (texts, [pair], [length]) tensors, one per variant."""
    key = (has_pair, has_length, add_special_tokens)
    if key not in _EAGER_ENCODERS:
        specs = [tf.TensorSpec([None], tf.string)] * (2 if has_pair else 1)
        specs += [tf.TensorSpec([], tf.int32)] if has_length else []

        def encode(*args):
            pair = args[1] if has_pair else None
            length = args[-1] if has_length else None
            return _encode(args[0], pair, length, add_special_tokens)

        _EAGER_ENCODERS[key] = tf.function(encode, input_signature=specs, autograph=False)
    return _EAGER_ENCODERS[key]


def _detokenize(ids, skip_special_tokens):
    """int32 ids (..., L), dense or ragged, in [0, 262) -> strings (...), as the reference's decode."""
    if skip_special_tokens:
        if isinstance(ids, tf.RaggedTensor):
            ids = tf.ragged.boolean_mask(ids, ids >= BYTE_OFFSET)
        elif ids.shape.rank == 1:
            ids = tf.boolean_mask(ids, ids >= BYTE_OFFSET)
        else:
            ids = tf.RaggedTensor.from_tensor(ids)
            ids = tf.ragged.boolean_mask(ids, ids >= BYTE_OFFSET)
    pieces = tf.gather(tf.constant(_ID_BYTES), ids)
    joined = tf.strings.reduce_join(pieces, axis=-1)
    # ICU's replacement follows the "maximal subpart" rule, as Python's errors="replace" does
    # (one U+FFFD per maximal ill-formed subsequence); the tests check it against Python.
    return tf.strings.unicode_transcode(
        joined, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD, replace_control_characters=False
    )


_DETOKENIZERS = {}


def _detokenize_compiled(ids, skip_special_tokens):
    """`_detokenize` as one compiled graph per input kind (dense / ragged, rank), for eager calls."""
    rank = ids.shape.rank
    if isinstance(ids, tf.RaggedTensor):
        key = (rank, ids.ragged_rank, ids.row_splits.dtype, skip_special_tokens)
        spec = tf.RaggedTensorSpec([None] * rank, tf.int32, ids.ragged_rank, ids.row_splits.dtype)
    else:
        key = (rank, 0, None, skip_special_tokens)
        spec = tf.TensorSpec([None] * rank, tf.int32)
    if key not in _DETOKENIZERS:
        _DETOKENIZERS[key] = tf.function(
            lambda x: _detokenize(x, skip_special_tokens), input_signature=[spec], autograph=False
        )
    return _DETOKENIZERS[key](ids)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class ByteTokenizer(keras.layers.Layer):
    """Turns strings into Perceiver IO byte ids, equal to transformers' `PerceiverTokenizer`.

    Every UTF-8 byte `b` becomes the id `b + 6`; ids 0..5 are the special tokens PAD, BOS, EOS,
    MASK, CLS and SEP (`SPECIAL_TOKENS`), and the literal strings "[PAD]" ... "[SEP]" inside a
    text are matched as those tokens. With `add_special_tokens`, one text becomes
    `[CLS] text [SEP]` and a pair `[CLS] a [SEP] b [SEP]`. With a `sequence_length`, sequences
    are truncated as the reference's `truncation=True` ("longest_first" for pairs: the longer
    text loses tokens first) and padded with PAD (0). Built from TensorFlow ops: it runs eagerly,
    inside `tf.data.Dataset.map` and in a `tf.function` / SavedModel signature (TensorFlow only,
    whatever Keras backend the model uses).

    Shapes:
        Input: string tensor (B,) or scalar (a Python `str` or list of `str` is converted).
        Output with `sequence_length=None`: int32 `tf.RaggedTensor` (B, None) of ids (a dense
        int32 (n,) tensor for a scalar input).
        Output with `sequence_length=L`: a dict `{"token_ids": int32 (B, L), "padding_mask":
        int32 (B, L)}` (1 for a real token, 0 for padding; (L,) each for a scalar input).

    Args:
        sequence_length: optional int, the length to truncate and pad to. At least 2 with
            `add_special_tokens` (3 for pairs), else at least 1. `None`: no truncation, no
            padding, ragged output.
        add_special_tokens: bool, add `[CLS]`/`[SEP]` as the reference's default does.
        **kwargs: base layer arguments (`name`, ...).

    Call arguments:
        texts: string tensor (B,) or scalar, or a Python `str` / list of `str`.
        pair: optional second texts of the same shape, for sentence pairs.

    In eager mode a warning says how many texts were truncated; in graph mode (`tf.data`,
    `tf.function`) truncation is silent. `tokenize`, `detokenize`, `encode` and `decode` give
    the raw ids, the inverse in TensorFlow, and plain-Python single-sequence versions.

    Example:
    >>> tok = ByteTokenizer(sequence_length=6)
    >>> tok.encode("hi")
    [4, 110, 111, 5]
    >>> out = tok(["hi", "a[MASK]"])
    >>> out["token_ids"].numpy().tolist()
    [[4, 110, 111, 5, 0, 0], [4, 103, 3, 5, 0, 0]]
    >>> out["padding_mask"].numpy().tolist()
    [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]]
    >>> tok.decode([4, 110, 111, 5], skip_special_tokens=True)
    'hi'

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.1 (byte-level language
    modelling); transformers' `PerceiverTokenizer`.
    """

    def __init__(self, sequence_length=None, add_special_tokens=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(add_special_tokens, (bool, np.bool_)):
            raise ValueError(
                f"`add_special_tokens` must be a bool. Received: add_special_tokens={add_special_tokens!r}"
            )
        self.add_special_tokens = bool(add_special_tokens)
        self.sequence_length = _checks.positive_int("sequence_length", sequence_length, allow_none=True)
        self._check_room(pair=False)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.supports_masking = False
        self.built = True

    def _check_room(self, pair):
        """Raises ValueError when `sequence_length` leaves no room for the special tokens."""
        needed = max(_num_special(self.add_special_tokens, pair), 1)
        if self.sequence_length is not None and self.sequence_length < needed:
            what = "[CLS] a [SEP] b [SEP]" if pair else "[CLS] and [SEP]"
            raise ValueError(
                f"`sequence_length` must be at least {needed} to leave room for {what}"
                f"{' with sentence pairs' if pair else ''}. Received: sequence_length={self.sequence_length}"
            )

    # ------------------------------------------------------------------ TensorFlow
    @staticmethod
    def _as_string_tensor(texts, arg="texts"):
        """Converts Python strings / arrays to a string tensor; rejects any other dtype."""
        if isinstance(texts, (tf.Tensor, tf.RaggedTensor)):
            tensor = texts
        else:
            if isinstance(texts, (list, tuple)) and len(texts) == 0:
                return tf.constant([], tf.string)
            try:
                tensor = tf.convert_to_tensor(texts)
            except (TypeError, ValueError) as e:
                raise TypeError(
                    f"ByteTokenizer expected string input for `{arg}`. Received: {arg} of type "
                    f"{type(texts).__name__} ({e})"
                ) from None
        if tensor.dtype != tf.string:
            raise TypeError(
                f"ByteTokenizer expected string input for `{arg}`. Received: {arg}.dtype={tensor.dtype.name}"
            )
        return tensor

    def tokenize(self, texts):
        """Raw ids of strings of any rank: bytes + 6, special-token strings mapped to their ids.

        No [CLS]/[SEP], no truncation, no padding.

        Args:
            texts: string `tf.Tensor` or `tf.RaggedTensor` of any rank (or Python strings).

        Returns:
            int32 `tf.RaggedTensor` with one more (ragged) dimension than `texts`; for a scalar
            input, a dense int32 tensor (n,).
        """
        texts = self._as_string_tensor(texts)
        if isinstance(texts, tf.RaggedTensor):
            return texts.with_flat_values(_tokenize_1d(texts.flat_values))
        rank = texts.shape.rank
        if rank is None:
            raise ValueError("ByteTokenizer.tokenize needs inputs of known rank. Received: texts.shape=<unknown>")
        if rank == 0:
            return _tokenize_1d(tf.reshape(texts, [1]))[0]
        if rank == 1:
            return _tokenize_1d(texts)
        nested = tf.RaggedTensor.from_tensor(texts, ragged_rank=rank - 1)
        return nested.with_flat_values(_tokenize_1d(nested.flat_values))

    def call(self, texts, pair=None):
        texts = self._as_string_tensor(texts)
        if isinstance(texts, tf.RaggedTensor) or texts.shape.rank not in (0, 1):
            raise ValueError(
                "ByteTokenizer expects a string tensor of shape (B,) or a scalar "
                f"(use `tokenize` for other ranks). Received: texts.shape={texts.shape}"
            )
        scalar = texts.shape.rank == 0
        args = [tf.reshape(texts, [-1])]
        if pair is not None:
            self._check_room(pair=True)
            pair = self._as_string_tensor(pair, "pair")
            if isinstance(pair, tf.RaggedTensor) or not pair.shape.is_compatible_with(texts.shape):
                raise ValueError(
                    "`pair` must have the shape of `texts`. "
                    f"Received: texts.shape={texts.shape}, pair.shape={pair.shape}"
                )
            args.append(tf.reshape(pair, [-1]))
        if tf.executing_eagerly():
            # One compiled graph instead of dozens of small eager ops (about 20x faster).
            if self.sequence_length is not None:
                args.append(tf.constant(self.sequence_length, tf.int32))
            encoder = _eager_encoder(pair is not None, self.sequence_length is not None, self.add_special_tokens)
            out, truncated = encoder(*args)
        else:
            out, truncated = _encode(args[0], args[1] if pair is not None else None, self.sequence_length,
                                     self.add_special_tokens)
        if truncated is not None:
            self._warn_truncation(truncated)
        if scalar:
            return {k: v[0] for k, v in out.items()} if isinstance(out, dict) else out[0]
        return out

    def _warn_truncation(self, truncated):
        if not tf.executing_eagerly():
            return
        count = int(tf.reduce_sum(tf.cast(truncated, tf.int32)))
        if count:
            warnings.warn(
                f"ByteTokenizer truncated {count} of {int(tf.size(truncated))} text(s) to "
                f"sequence_length={self.sequence_length}.",
                stacklevel=2,
            )

    def detokenize(self, ids, skip_special_tokens=False):
        """Strings of id sequences, as the reference's `decode` (invalid UTF-8 -> U+FFFD).

        Args:
            ids: integer `tf.Tensor` / `tf.RaggedTensor` (B, L) or (L,) (or nested Python lists),
                ids in [0, 262).
            skip_special_tokens: bool, drop the ids 0..5 (so padding too) instead of writing
                "[PAD]", "[MASK]", ...

        Returns:
            string tensor (B,), or a scalar for (L,) ids.
        """
        if not isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
            ids = tf.ragged.constant(ids) if _is_jagged(ids) else tf.convert_to_tensor(ids, dtype_hint=tf.int32)
        if not ids.dtype.is_integer:
            raise TypeError(f"ByteTokenizer.detokenize expected integer ids. Received: ids.dtype={ids.dtype.name}")
        if ids.shape.rank == 0:
            raise ValueError(f"ByteTokenizer.detokenize expects ids of shape (L,) or (B, L). Received: ids.shape={ids.shape}")
        values = ids.flat_values if isinstance(ids, tf.RaggedTensor) else ids
        if tf.executing_eagerly():
            flat = np.asarray(values).reshape(-1)
            bad = flat[(flat < 0) | (flat >= VOCAB_SIZE)]
            if bad.size:
                raise ValueError(f"Token ids must lie in [0, {VOCAB_SIZE}). Received: id={int(bad[0])}")
            checks = []
        else:
            message = f"ByteTokenizer.detokenize: token ids must lie in [0, {VOCAB_SIZE})."
            checks = [
                tf.debugging.assert_greater_equal(values, tf.cast(0, values.dtype), message=message),
                tf.debugging.assert_less(values, tf.cast(VOCAB_SIZE, values.dtype), message=message),
            ]
        with tf.control_dependencies(checks):
            if isinstance(ids, tf.RaggedTensor):
                ids = ids.with_flat_values(tf.identity(tf.cast(ids.flat_values, tf.int32)))
            else:
                ids = tf.identity(tf.cast(ids, tf.int32))
        if tf.executing_eagerly():
            return _detokenize_compiled(ids, bool(skip_special_tokens))
        return _detokenize(ids, bool(skip_special_tokens))

    def __call__(self, texts, pair=None, **kwargs):
        # Python strings become tensors here (Keras only accepts tensors positionally); symbolic
        # Keras inputs (functional models) pass through to `call`, traced on the TF backend.
        if not isinstance(texts, keras.KerasTensor):
            texts = self._as_string_tensor(texts)
        if pair is not None:
            self._check_room(pair=True)
            kwargs["pair"] = pair if isinstance(pair, keras.KerasTensor) else self._as_string_tensor(pair, "pair")
        return super().__call__(texts, **kwargs)

    # ------------------------------------------------------------------ plain Python
    def _python_ids(self, text, arg):
        if not isinstance(text, str):
            raise TypeError(f"ByteTokenizer.encode expected a str for `{arg}`. Received: type {type(text).__name__}")
        ids = []
        for i, piece in enumerate(_SPECIAL_RE.split(text)):
            if i % 2:
                ids.append(_SPECIAL_ENCODER[piece])
            else:
                ids.extend(b + BYTE_OFFSET for b in piece.encode("utf-8"))
        return ids

    def encode(self, text, pair=None):
        """Ids of one text (or pair) as a list, equal to the reference's `tok(text, pair).input_ids`.

        Truncated (not padded) to `sequence_length` when it is set, as the reference's
        `truncation=True, max_length=sequence_length`.
        """
        ids = self._python_ids(text, "text")
        pair_ids = None if pair is None else self._python_ids(pair, "pair")
        if self.sequence_length is not None:
            self._check_room(pair=pair is not None)
            budget = self.sequence_length - _num_special(self.add_special_tokens, pair is not None)
            if pair_ids is None:
                ids = ids[:budget]
            else:
                keep_a, keep_b = _longest_first(len(ids), len(pair_ids), budget)
                ids, pair_ids = ids[:keep_a], pair_ids[:keep_b]
        if self.add_special_tokens:
            ids = [CLS_ID] + ids + [SEP_ID]
            if pair_ids is not None:
                ids += pair_ids + [SEP_ID]
        elif pair_ids is not None:
            ids += pair_ids
        return ids

    def decode(self, ids, skip_special_tokens=False):
        """The string of one id sequence, equal to the reference's `decode`.

        Ids 0..5 become "[PAD]" ... "[SEP]" (dropped with `skip_special_tokens`), the others
        their byte (id - 6); the bytes are decoded as UTF-8 with errors="replace".
        """
        if isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
            ids = ids.numpy().tolist() if isinstance(ids, tf.Tensor) else ids.to_list()
        elif isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if isinstance(ids, (int, np.integer)):
            ids = [ids]
        out = bytearray()
        for token_id in ids:
            if isinstance(token_id, bool) or not isinstance(token_id, (int, np.integer)):
                raise TypeError(f"ByteTokenizer.decode expected integer ids. Received: id={token_id!r}")
            token_id = int(token_id)
            if not 0 <= token_id < VOCAB_SIZE:
                raise ValueError(f"Token ids must lie in [0, {VOCAB_SIZE}). Received: id={token_id}")
            if token_id >= BYTE_OFFSET:
                out.append(token_id - BYTE_OFFSET)
            elif not skip_special_tokens:
                out += _ID_BYTES[token_id]
        return out.decode("utf-8", errors="replace")

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length, "add_special_tokens": self.add_special_tokens})
        return config


def _is_jagged(ids):
    """True for nested Python lists of unequal lengths (which need a ragged constant)."""
    if not isinstance(ids, (list, tuple)) or not ids or not isinstance(ids[0], (list, tuple)):
        return False
    return len({len(row) for row in ids}) > 1
