"""tf.data pipelines of causal language modelling (Perceiver AR): windows cut from a token stream.

`causal_documents` reads a corpus of `data.SOURCES` (the masked LM's reader: `pydoc` offline, local
text files, and TFDS C4, Wikipedia, `pg19` books, `wiki40b` and `tiny_shakespeare`, which must
already be downloaded into `data_dir` with `tfds build`). Documents
become one stream of ids with an EOS id before each document: byte ids (`ByteTokenizer`'s: UTF-8
byte + 6) by default, or a SentencePiece model's (`zoo.language.vocabulary`); `causal_lm_dataset`
cuts the stream into windows of `sequence_length + 1` ids.

Each example is (x, y): x the window's first L ids (B, L), y the next id after each latent position,
the window's last N ids (B, N). The loss is on the latents only: every target has the whole prefix
before it. Training shuffles the documents, starts the stream at a random offset and shuffles the
windows, so each epoch cuts new windows; evaluation is deterministic. With `eval_window`, windows are
cut that long and the model reads their last L ids, so two models with the same N but different
contexts (Perceiver AR and a causal Transformer over the last N bytes) are scored on the same bytes.

Example:
    >>> docs = causal_documents("pydoc", "train")
    >>> ds = causal_lm_dataset(docs, sequence_length=1024, num_latents=128, batch_size=8, training=True)
    >>> x, y = next(iter(ds))  # (8, 1024), (8, 128)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from perceiver_keras.byte_tokenizer import EOS_ID, VOCAB_SIZE, ByteTokenizer
from zoo.language import data
from zoo.language._common import check_positive, plain

AUTOTUNE = tf.data.AUTOTUNE
causal_documents = data.documents  # the masked LM's corpora: one reader for both tasks


def token_stream(docs: tf.data.Dataset, vocabulary=None) -> tf.data.Dataset:
    """Documents -> a dataset of 1-D int32 id chunks, EOS before each document, whose concatenation is the stream.

    `vocabulary`: a `zoo.language.vocabulary` vocabulary (default: bytes).
    """
    tokenize, eos_id = (ByteTokenizer(add_special_tokens=False).tokenize, EOS_ID) if vocabulary is None else (
        vocabulary.tokenize, vocabulary.eos_id)
    ids = docs.batch(64).map(plain(tokenize), num_parallel_calls=AUTOTUNE)
    return ids.map(lambda rows: tf.concat([tf.fill([rows.nrows(), 1], eos_id), tf.cast(rows, tf.int32)], 1).flat_values)


byte_stream = token_stream  # the byte stream: `token_stream` with its default vocabulary


def causal_lm_dataset(docs: tf.data.Dataset, *, sequence_length: int, num_latents: int, batch_size: int,
                      training: bool, seed: int = 0, take: int | None = None,
                      eval_window: int | None = None, every_byte: bool = False, vocabulary=None) -> tf.data.Dataset:
    """Windows of the documents' token stream as (x (B, L) int32, y (B, N) int32).

    Args:
        docs: document strings (e.g. from `causal_documents`).
        sequence_length: L, the model's window.
        num_latents: N, the positions with a loss (the window's last N); N <= L.
        batch_size: windows per batch.
        training: shuffle documents and windows, start at a random offset each epoch, drop the last
            partial batch.
        seed: seeds the shuffles and offsets.
        take: keep only the first `take` windows.
        eval_window: cut windows of `eval_window + 1` ids (>= L + 1) and keep their last L + 1, so
            models of different L are scored on the same targets.
        every_byte: (evaluation) overlapping windows, one every N ids, so that every id of the stream
            after the first window's prefix is a target exactly once, with a full window before it
            (the held-out score of the whole split, not of one N in every L + 1 ids).
        vocabulary: a `zoo.language.vocabulary` vocabulary (default: bytes).
    """
    check_positive(sequence_length=sequence_length, num_latents=num_latents, batch_size=batch_size, take=take,
                   eval_window=eval_window)
    if num_latents > sequence_length:
        raise ValueError(f"Expected num_latents <= sequence_length. Received: num_latents={num_latents}, "
                         f"sequence_length={sequence_length}")
    cut = sequence_length if eval_window is None else eval_window
    if cut < sequence_length:
        raise ValueError(f"Expected eval_window >= sequence_length. Received: eval_window={eval_window}, "
                         f"sequence_length={sequence_length}")
    if training and take is None:
        docs = docs.shuffle(1_000, seed=seed, reshuffle_each_iteration=True)
    stream = token_stream(docs, vocabulary)
    if training:  # a new random start each epoch, so windows are not cut at the same places
        offsets = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        stream = tf.data.Dataset.zip((stream.enumerate(), offsets)).map(
            lambda indexed, offset: indexed[1][tf.cast(tf.where(indexed[0] == 0, offset % (cut + 1), 0), tf.int32):])
    if every_byte:
        if training:
            raise ValueError("Expected every_byte=True only for evaluation (training=False). Received: training=True")
        # Blocks of N ids; a window is the k blocks ending at each block (k N >= cut + 1), cut to its last
        # cut + 1 ids: its last N, the targets, are that block.
        blocks = stream.rebatch(num_latents, drop_remainder=True)
        count = -(-(cut + 1) // num_latents)
        windows = blocks.window(count, shift=1, drop_remainder=True).flat_map(lambda w: w.batch(count))
        windows = windows.map(lambda w: tf.reshape(w, [-1])[-(cut + 1):])
    else:
        windows = stream.rebatch(cut + 1, drop_remainder=True)
    if take is not None:
        windows = windows.take(take)
    if training:
        windows = windows.shuffle(1_000, seed=seed, reshuffle_each_iteration=True)
    prefix = sequence_length - num_latents

    def split(window):
        window = window[:, -(sequence_length + 1):]
        return window[:, :sequence_length], window[:, prefix + 1:]

    return windows.batch(batch_size, drop_remainder=training).map(split, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def unigram_bits_per_byte(train: tf.data.Dataset, test: tf.data.Dataset, vocabulary_size: int = VOCAB_SIZE) -> float:
    """Held-out bits per token (per byte for bytes) of a unigram model: add-one smoothed frequencies of
    `train`'s target ids."""
    counts = np.ones(vocabulary_size)
    for _, y in train.as_numpy_iterator():
        counts += np.bincount(y.ravel(), minlength=vocabulary_size)[:vocabulary_size]
    log_probs = np.log2(counts / counts.sum())
    targets = np.concatenate([y.ravel() for _, y in test.as_numpy_iterator()])
    if not len(targets):
        raise ValueError("Expected at least one held-out window for the unigram baseline. Received: none")
    return float(-log_probs[targets].mean())
