"""tf.data input pipelines for byte masked language modelling: the corpora and the masking.

`documents` reads a corpus of `SOURCES`: C4 (`c4/en`, the paper's corpus), English Wikipedia,
PG-19 books, Wiki-40B English and Tiny Shakespeare (TFDS, downloaded beforehand), local `.txt`
files, or `pydoc`, an offline corpus of real English that ships with Python
(`pydoc_data.topics`: 79 documents, ~465 KB); every source has a "train" and a "validation"
split that never share a document. `masked_lm_dataset` cuts the documents into windows and masks
whole words; `most_frequent_byte_baseline` is the trivial baseline to beat. Model inputs are
`{"token_ids": int32 (B, L), "padding_mask": int32 (B, L)}` (1 = real token), byte ids from
`perceiver_keras.byte_tokenizer` (UTF-8 byte + 6, ids 0..5 special). The classification
pipelines are in `zoo.language.classification_data`, the offline `source_type` task in
`zoo.language.source_type`.

Example:
    >>> docs = documents("pydoc", "train")
    >>> ds = masked_lm_dataset(docs, sequence_length=128, batch_size=8, training=True)
    >>> x, y, sample_weight = next(iter(ds))  # sample_weight: 1.0 at the masked positions
"""

from __future__ import annotations

import functools
import os

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from perceiver_keras.byte_tokenizer import BYTE_OFFSET, CLS_ID, MASK_ID, SEP_ID, VOCAB_SIZE, ByteTokenizer
from zoo.language._common import HELD_OUT_EVERY, check_positive, held_out_split, plain

AUTOTUNE = tf.data.AUTOTUNE
WIKIPEDIA = "wikipedia/20230601.en"  # The newest English dump in TFDS 4.9.
# TFDS corpora of long documents: name -> (builder, text feature, {split: TFDS split}); Wikipedia has only "train".
TFDS_CORPORA = {
    "c4": ("c4/en", "text", {"train": "train", "validation": "validation"}),
    "wikipedia": (WIKIPEDIA, "text", {"train": "train[:99%]", "validation": "train[99%:]"}),
    "pg19": ("pg19", "book_text", {"train": "train", "validation": "validation"}),
    "wiki40b": ("wiki40b/en", "text", {"train": "train", "validation": "validation"}),
    "tiny_shakespeare": ("tiny_shakespeare", "text", {"train": "train", "validation": "validation"}),
}
SOURCES = ("c4", "wikipedia", "text_files", "pydoc", "pg19", "wiki40b", "tiny_shakespeare")
# tab, newline, vertical tab, form feed, carriage return, space.
_WHITESPACE_IDS = tuple(b + BYTE_OFFSET for b in b"\t\n\x0b\x0c\r ")


def documents(
    source: str,
    split: str,
    *,
    data_dir: str | None = None,
    files: str | list[str] | None = None,
    take: int | None = None,
) -> tf.data.Dataset:
    """Returns a dataset of document strings (scalar tf.string), in a fixed order.

    Args:
        source: one of `SOURCES`. The TFDS corpora (`TFDS_CORPORA`: c4, wikipedia, pg19, wiki40b,
            tiny_shakespeare) must already be built in `data_dir` (`tfds build`; C4 and Wikipedia
            need Apache Beam).
            "text_files" reads `files`, one document per file. "pydoc" needs nothing.
        split: "train" or "validation". Wikipedia's validation is its last 1%; text_files and
            pydoc hold out every `HELD_OUT_EVERY`-th document of their sorted listing.
        data_dir: TFDS data directory.
        files: for "text_files": a file, a directory (its `*.txt`, recursively), a glob, or a
            list of those.
        take: keep only the first `take` documents.

    Raises:
        ValueError: on an unknown source or split, `files` given to another source or missing,
            or an empty text_files split.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown source. Expected one of: {', '.join(SOURCES)}. Received: source={source!r}")
    if split not in ("train", "validation"):
        raise ValueError(f"Unknown split. Expected one of: train, validation. Received: split={split!r}")
    if (files is None) == (source == "text_files"):
        raise ValueError(f"Expected `files` exactly when source='text_files'. Received: source={source!r}, "
                         f"files={files!r}")
    check_positive(take=take)
    if source == "pydoc":
        ds = tf.data.Dataset.from_tensor_slices(held_out_split(pydoc_texts(), split))
    elif source == "text_files":
        paths = held_out_split(_list_text_files(files), split)
        if not paths:
            count = len(_list_text_files(files))
            raise ValueError(f"--text-files {files!r} gives no {split} file: every {HELD_OUT_EVERY}th file is held out "
                             f"for validation, so at least {HELD_OUT_EVERY} files are needed. Received: {count} "
                             f"file{'s' if count != 1 else ''}")
        ds = tf.data.Dataset.from_tensor_slices(paths).map(tf.io.read_file)
    else:
        import tensorflow_datasets as tfds  # Imported here: it is slow, and pydoc does not need it.

        name, feature, splits = TFDS_CORPORA[source]
        ds = tfds.builder(name, data_dir=data_dir).as_dataset(split=splits[split], shuffle_files=False)
        ds = ds.map(lambda example: example[feature])
    return ds if take is None else ds.take(take)


def pydoc_texts() -> list[str]:
    """The 79 documents of Python's `pydoc_data.topics`, sorted by topic name."""
    from pydoc_data.topics import topics

    return [topics[name] for name in sorted(topics)]


def masked_lm_dataset(
    docs: tf.data.Dataset,
    *,
    sequence_length: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    mask_probability: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    take: int | None = None,
) -> tf.data.Dataset:
    """Builds the byte masked-language-modelling pipeline of the paper (section 4.1).

    The documents' bytes are concatenated with a SEP between documents and cut into windows of
    `sequence_length - 2` bytes, each wrapped as `[CLS] window [SEP]` (only the last one is
    padded). Whole words are masked: a word is a run of non-whitespace bytes with the whitespace
    before it, so the words concatenate back to the exact bytes; CLS and SEP are words of their
    own and never masked (so are the literal strings "[MASK]" etc., which the tokenizer maps to
    special ids). `tf_text.mask_language_model` selects `ceil(mask_probability * words)` words
    per window; each byte of a selected word independently becomes MASK (`mask_token_rate`), a
    random byte id in [6, 262) (`random_token_rate`) or stays (BERT's rule, as tf_text applies
    it).

    Masking runs on whole batches, with stateless draws seeded per batch (subclasses of
    tf_text's RandomItemSelector and MaskValuesChooser): evaluation masks are the same on every
    iteration; training reshuffles the documents and windows and draws new masks every epoch.

    Args:
        docs: a dataset of document strings (e.g. from `documents`).
        sequence_length: L, the length of a sequence including CLS and SEP (at least 3).
        batch_size: sequences per batch.
        training: shuffle and re-mask every iteration, and drop the last partial batch.
        seed: seeds the shuffling and the masks.
        mask_probability: the fraction of words selected.
        mask_token_rate: the fraction of selected bytes replaced by MASK.
        random_token_rate: the fraction of selected bytes replaced by a random byte.
        take: keep only the first `take` windows (of the unshuffled documents).

    Returns:
        A dataset of `(x, y, sample_weight)`: x = `{"token_ids", "padding_mask"}` int32 (B, L);
        y int32 (B, L), the unmasked ids; sample_weight float32 (B, L), 1.0 exactly at the
        selected positions (use it as the loss's and metrics' sample weight).
    """
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 3:
        raise ValueError(f"Expected sequence_length >= 3 (CLS, a byte, SEP). Received: "
                         f"sequence_length={sequence_length!r}")
    check_positive(batch_size=batch_size, take=take)
    for arg, value in (("mask_probability", mask_probability), ("mask_token_rate", mask_token_rate),
                       ("random_token_rate", random_token_rate)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"Expected {arg} in [0, 1]. Received: {arg}={value}")
    if mask_token_rate + random_token_rate > 1.0:
        raise ValueError(f"Expected mask_token_rate + random_token_rate <= 1. Received: "
                         f"mask_token_rate={mask_token_rate}, random_token_rate={random_token_rate}")
    tokenizer = ByteTokenizer(add_special_tokens=False)
    if training and take is None:  # With `take`, every epoch keeps the same windows.
        docs = docs.shuffle(1_000, seed=seed, reshuffle_each_iteration=True)
    # A SEP before every document but the first, then one flat stream of ids, re-cut into windows.
    ids = docs.batch(64).map(plain(tokenizer.tokenize), num_parallel_calls=AUTOTUNE)
    ids = ids.map(lambda rows: tf.concat([tf.fill([rows.nrows(), 1], SEP_ID), rows], 1).flat_values)
    ids = ids.enumerate().map(lambda i, stream: stream[tf.cast(i == 0, tf.int32):])
    windows = ids.rebatch(sequence_length - 2).filter(lambda window: tf.size(window) > 0)
    if take is not None:
        windows = windows.take(take)
    if training:
        windows = windows.shuffle(1_000, seed=seed, reshuffle_each_iteration=True)
    windows = windows.map(lambda window: tf.concat([[CLS_ID], window, [SEP_ID]], 0))
    batches = windows.ragged_batch(batch_size, drop_remainder=training)
    # One stateless seed per batch: the same masks on every evaluation pass, new ones every epoch.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=training).batch(2)
    masker = plain(functools.partial(
        _mask_batch, sequence_length=sequence_length, mask_probability=mask_probability,
        mask_token_rate=mask_token_rate, random_token_rate=random_token_rate))
    return tf.data.Dataset.zip((batches, seeds)).map(masker, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def words_of(ids: tf.RaggedTensor) -> tf.RaggedTensor:
    """Splits byte ids (B, (n)) into words (B, (words), (bytes)) that concatenate back to `ids`.

    A word starts at a row's start, at every whitespace byte that follows a non-whitespace one,
    and at and after every special id (CLS, SEP, ...), which are words of their own.
    """
    flat = ids.flat_values
    special = flat < BYTE_OFFSET
    space = tf.reduce_any(flat[:, None] == tf.constant(_WHITESPACE_IDS, flat.dtype), axis=1)
    row_start = tf.ragged.range(ids.row_lengths()).flat_values == 0
    previous_special = tf.concat([[True], special[:-1]], 0)
    previous_space = tf.concat([[False], space[:-1]], 0)
    starts = row_start | special | previous_special | (space & ~previous_space)
    words = tf.RaggedTensor.from_row_starts(flat, tf.where(starts)[:, 0])
    words_per_row = tf.math.unsorted_segment_sum(tf.cast(starts, tf.int64), ids.value_rowids(), ids.nrows())
    return tf.RaggedTensor.from_row_lengths(words, words_per_row)


class _StatelessItemSelector(tf_text.RandomItemSelector):
    """tf_text's RandomItemSelector rule with stateless draws, independent for every row.

    The parent selects `min(ceil(selection_rate * selectable items), max_selections_per_batch)`
    items of each row by shuffling the row's item indices with `shuffle_fn`; that function sees
    only `range(num_items)`, so a stateless shuffle would mask the same word indices in every
    row of equal length, and the default stateful shuffle is not reproducible. Here every
    selectable item draws a stateless uniform key and each row keeps its largest keys.
    """

    def __init__(self, seed, **kwargs):
        super().__init__(**kwargs)
        self._seed = seed

    def get_selection_mask(self, input_ids, axis=1):
        if axis != 1:
            raise ValueError(f"Expected axis=1 (words). Received: axis={axis}")
        selectable = self.get_selectable(input_ids, axis)  # (B, (items)) bool
        keys = tf.random.stateless_uniform(tf.shape(selectable.flat_values), self._seed)
        keys = selectable.with_flat_values(tf.where(selectable.flat_values, keys, -1.0)).to_tensor(-1.0)
        rank = tf.argsort(tf.argsort(keys, axis=1, direction="DESCENDING", stable=True), axis=1, stable=True)
        count = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=1)
        count = tf.minimum(tf.math.ceil(count * self.selection_rate), float(self.max_selections_per_batch))
        chosen = rank < tf.cast(count, rank.dtype)[:, None]
        return tf.RaggedTensor.from_tensor(chosen, lengths=selectable.row_lengths())


class _StatelessMaskValuesChooser(tf_text.MaskValuesChooser):
    """tf_text's MaskValuesChooser with stateless draws and random ids restricted to bytes.

    The parent draws random ids in [0, vocab_size), which would put PAD, CLS or SEP in a text.
    """

    def __init__(self, seed, mask_token_rate, random_token_rate):
        super().__init__(VOCAB_SIZE, MASK_ID, mask_token_rate, random_token_rate)
        self._seed, self._rates = seed, (mask_token_rate, random_token_rate)

    def get_mask_values(self, masked_lm_ids):
        values = masked_lm_ids.flat_values
        choice_seed, byte_seed = tf.unstack(tf.random.experimental.stateless_split(self._seed, 2))
        choice = tf.random.stateless_uniform(tf.shape(values), choice_seed)
        random_ids = tf.random.stateless_uniform(tf.shape(values), byte_seed, BYTE_OFFSET, VOCAB_SIZE, values.dtype)
        mask_rate, random_rate = self._rates
        values = tf.where(choice < mask_rate, tf.cast(MASK_ID, values.dtype),
                          tf.where(choice < mask_rate + random_rate, random_ids, values))
        return masked_lm_ids.with_flat_values(values)


def _mask_batch(ids, seed, *, sequence_length, mask_probability, mask_token_rate, random_token_rate):
    """Masks a batch of `[CLS] window [SEP]` rows (B, (n)); returns padded (x, y, sample_weight)."""
    select_seed, values_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    selector = _StatelessItemSelector(select_seed, max_selections_per_batch=sequence_length,
                                      selection_rate=mask_probability, unselectable_ids=list(range(BYTE_OFFSET)))
    chooser = _StatelessMaskValuesChooser(values_seed, mask_token_rate, random_token_rate)
    masked, positions, _ = tf_text.mask_language_model(words_of(ids), selector, chooser, axis=1)
    indices = tf.stack([positions.value_rowids(), positions.flat_values], axis=1)
    shape = tf.stack([ids.nrows(), sequence_length])
    weights = tf.scatter_nd(indices, tf.ones_like(positions.flat_values, tf.float32), shape)
    x = {"token_ids": masked.to_tensor(shape=[None, sequence_length]),
         "padding_mask": tf.ones_like(ids).to_tensor(shape=[None, sequence_length])}
    return x, ids.to_tensor(shape=[None, sequence_length]), tf.ensure_shape(weights, [None, sequence_length])


def most_frequent_byte_baseline(train_ds: tf.data.Dataset, test_ds: tf.data.Dataset) -> dict:
    """The trivial masked-LM baseline: always predict the most frequent masked target.

    Args:
        train_ds, test_ds: finite `masked_lm_dataset`s of `(x, y, sample_weight)`.

    Returns:
        `{"most_frequent_id", "accuracy", "num_test_targets"}`: the id most often masked in
        `train_ds`, and the fraction of `test_ds`'s masked positions whose target it is.
    """
    counts = np.zeros(VOCAB_SIZE, np.int64)
    for _, y, weight in train_ds.as_numpy_iterator():
        counts += np.bincount(y[weight > 0], minlength=VOCAB_SIZE)
    most_frequent = int(counts.argmax())
    hits = total = 0
    for _, y, weight in test_ds.as_numpy_iterator():
        targets = y[weight > 0]
        hits, total = hits + int(np.sum(targets == most_frequent)), total + targets.size
    return {"most_frequent_id": most_frequent, "accuracy": hits / max(total, 1), "num_test_targets": total}


def _list_text_files(files: str | list[str]) -> list[str]:
    paths = set()
    for pattern in [files] if isinstance(files, (str, os.PathLike)) else files:
        pattern = os.fspath(pattern)
        if tf.io.gfile.isdir(pattern):
            paths.update(os.path.join(root, f) for root, _, names in tf.io.gfile.walk(pattern)
                         for f in names if f.endswith(".txt"))
        else:
            paths.update(tf.io.gfile.glob(pattern))
    if not paths:
        raise ValueError(f"--text-files {files!r} matches no file: expected a .txt file, a folder holding .txt "
                         f"files or a glob matching at least one file. Received: --text-files {files!r}")
    return sorted(paths)


def text_files_argument(text: str) -> str:
    """The argparse `type` of `--text-files`: `text` when it matches a file, so a bad pattern is refused up front."""
    import argparse

    try:
        _list_text_files(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a .txt file, a folder holding .txt files or a glob matching at "
                                         f"least one file; it matches none. Received: {text!r}") from None
    return text

