"""tf.data pipelines for byte-level text classification: GLUE, IMDb and the offline source_type task.

`CLASSIFICATION_DATASETS` describes every dataset (`ClassificationInfo`: its text features, number
of classes, splits and metrics) and `classification_dataset` builds its batched pipeline of
`(x, y)`, x = `{"token_ids": int32 (B, L), "padding_mask": int32 (B, L)}` (1 = real token) from
`perceiver_keras.byte_tokenizer.ByteTokenizer`, texts and sentence pairs as `[CLS] a [SEP]` or
`[CLS] a [SEP] b [SEP]`. The GLUE and IMDb datasets come from TFDS (downloaded on first use);
`source_type` is built offline by `zoo.language.source_type`.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from perceiver_keras.byte_tokenizer import ByteTokenizer
from zoo.language._common import check_positive, plain
from zoo.language.source_type import source_type_snippets

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class ClassificationInfo:
    """What a pipeline needs to know about a text-classification dataset.

    Attributes:
        name: the name used by this module, also the TFDS name (except `source_type`).
        text_keys: the feature(s) holding the text; two for sentence-pair tasks.
        num_classes: the number of labels; 1 for regression (STS-B's similarity in [0, 5]).
        train_split, eval_split: the split names to train and to evaluate on (GLUE's test
            labels are hidden, so its validation split is the evaluation split).
        metrics: the metric names reported (`zoo.language.metrics.metrics_for` builds them).
    """

    name: str
    text_keys: tuple[str, ...]
    num_classes: int
    train_split: str = "train"
    eval_split: str = "validation"
    metrics: tuple[str, ...] = ("accuracy",)


def _glue(task, keys, num_classes=2, **kwargs) -> ClassificationInfo:
    return ClassificationInfo(f"glue/{task}", keys, num_classes, **kwargs)


CLASSIFICATION_DATASETS: dict[str, ClassificationInfo] = {info.name: info for info in (
    _glue("cola", ("sentence",), metrics=("matthews_correlation",)),
    _glue("sst2", ("sentence",)),
    _glue("mrpc", ("sentence1", "sentence2"), metrics=("f1", "accuracy")),
    _glue("qqp", ("question1", "question2"), metrics=("f1", "accuracy")),
    _glue("stsb", ("sentence1", "sentence2"), 1, metrics=("pearson", "spearman")),
    _glue("mnli", ("premise", "hypothesis"), 3, eval_split="validation_matched"),
    _glue("qnli", ("question", "sentence")),
    _glue("rte", ("sentence1", "sentence2")),
    _glue("wnli", ("sentence1", "sentence2")),
    ClassificationInfo("imdb_reviews", ("text",), 2, eval_split="test"),
    ClassificationInfo("source_type", ("text",), 3, eval_split="test"),
)}


def classification_dataset(
    name: str,
    split: str,
    *,
    sequence_length: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    data_dir: str | None = None,
    take: int | None = None,
) -> tf.data.Dataset:
    """Builds the batched pipeline of a text-classification dataset.

    Args:
        name: one of `CLASSIFICATION_DATASETS`.
        split: a split of the dataset, e.g. its `train_split` or `eval_split`; TFDS datasets
            accept slices such as "train[:90%]". source_type has "train" and "test".
        sequence_length: L; texts are truncated to fit `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`
            (the longer text of a pair is cut first).
        batch_size: examples per batch.
        training: shuffle (reshuffled every iteration) and drop the last partial batch.
        seed: seeds the shuffling.
        data_dir: TFDS data directory (downloaded there when missing).
        take: keep only the first `take` examples (before shuffling).

    Returns:
        A dataset of `(x, y)`: x = `{"token_ids", "padding_mask"}` int32 (B, L); y int32 class
        ids (B,), or float32 scores (B,) for regression (num_classes == 1).
    """
    info = classification_info(name)
    minimum = 2 * len(info.text_keys) + 1  # The special tokens and a byte of every text.
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < minimum:
        raise ValueError(f"Expected sequence_length >= {minimum} for {name}. Received: "
                         f"sequence_length={sequence_length!r}")
    check_positive(batch_size=batch_size, take=take)
    label_dtype = tf.float32 if info.num_classes == 1 else tf.int32
    if name == "source_type":
        texts, labels = source_type_snippets(split)
        ds = tf.data.Dataset.from_tensor_slices(((texts,), labels))
    else:
        import tensorflow_datasets as tfds

        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
        ds = builder.as_dataset(split=split, shuffle_files=training and take is None,
                                read_config=tfds.ReadConfig(shuffle_seed=seed))
        ds = ds.map(lambda ex: (tuple(ex[key] for key in info.text_keys), tf.cast(ex["label"], label_dtype)))
    if take is not None:
        ds = ds.take(take)
    if training:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    tokenizer = ByteTokenizer(sequence_length=sequence_length)

    def tokenize(texts, labels):
        return tokenizer(texts[0], pair=texts[1] if len(texts) > 1 else None), labels

    ds = ds.batch(batch_size, drop_remainder=training).map(plain(tokenize), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def classification_info(name: str) -> ClassificationInfo:
    """Returns `CLASSIFICATION_DATASETS[name]`, or raises ValueError listing the valid names."""
    if name not in CLASSIFICATION_DATASETS:
        raise ValueError(f"Unknown classification dataset. Expected one of: "
                         f"{', '.join(CLASSIFICATION_DATASETS)}. Received: name={name!r}")
    return CLASSIFICATION_DATASETS[name]
