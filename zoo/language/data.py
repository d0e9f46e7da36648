"""tf.data input pipelines for the byte-level language models.

Masked language modelling (`documents` -> `masked_lm_dataset`): C4 (`c4/en`, the paper's corpus),
English Wikipedia, local `.txt` files, and `pydoc`, an offline corpus of real English that ships
with Python (`pydoc_data.topics`: 79 documents, ~465 KB). Every source has a "train" and a
"validation" split that never share a document.

Classification (`classification_dataset`, described by `CLASSIFICATION_DATASETS`): GLUE, IMDb and
`source_type`, an offline task built from files that ship with Python and numpy.

Model inputs are `{"token_ids": int32 (B, L), "padding_mask": int32 (B, L)}` (1 = real token),
byte ids from `perceiver_keras.byte_tokenizer` (UTF-8 byte + 6, ids 0..5 special).

Example:
    >>> docs = documents("pydoc", "train")
    >>> ds = masked_lm_dataset(docs, sequence_length=128, batch_size=8, training=True)
    >>> x, y, sample_weight = next(iter(ds))  # sample_weight: 1.0 at the masked positions
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sysconfig

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from perceiver_keras.byte_tokenizer import BYTE_OFFSET, CLS_ID, MASK_ID, SEP_ID, VOCAB_SIZE, ByteTokenizer

AUTOTUNE = tf.data.AUTOTUNE
WIKIPEDIA = "wikipedia/20230601.en"  # The newest English dump in TFDS 4.9.
SOURCES = ("c4", "wikipedia", "text_files", "pydoc")
HELD_OUT_EVERY = 4  # text_files, pydoc, source_type: every 4th document of a sorted listing is held out.
_WIKIPEDIA_SPLITS = {"train": "train[:99%]", "validation": "train[99%:]"}  # It has only "train".
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
        source: one of `SOURCES`. "c4" and "wikipedia" read TFDS `c4/en` and `WIKIPEDIA`, which
            must already be built in `data_dir` (`tfds build`; both need Apache Beam).
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
    _check_positive(take=take)
    if source == "pydoc":
        ds = tf.data.Dataset.from_tensor_slices(_held_out_split(pydoc_texts(), split))
    elif source == "text_files":
        paths = _held_out_split(_list_text_files(files), split)
        if not paths:
            raise ValueError(f"The text_files split {split!r} is empty: every {HELD_OUT_EVERY}th file is held "
                             f"out. Expected at least {HELD_OUT_EVERY} files. Received: files={files!r}")
        ds = tf.data.Dataset.from_tensor_slices(paths).map(tf.io.read_file)
    else:
        import tensorflow_datasets as tfds  # Imported here: it is slow, and pydoc does not need it.

        name, split = ("c4/en", split) if source == "c4" else (WIKIPEDIA, _WIKIPEDIA_SPLITS[split])
        ds = tfds.builder(name, data_dir=data_dir).as_dataset(split=split, shuffle_files=False)
        ds = ds.map(lambda example: example["text"])
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
    _check_positive(batch_size=batch_size, take=take)
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
    ids = docs.batch(64).map(_plain(tokenizer.tokenize), num_parallel_calls=AUTOTUNE)
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
    masker = _plain(functools.partial(
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
    _check_positive(batch_size=batch_size, take=take)
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

    ds = ds.batch(batch_size, drop_remainder=training).map(_plain(tokenize), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def classification_info(name: str) -> ClassificationInfo:
    """Returns `CLASSIFICATION_DATASETS[name]`, or raises ValueError listing the valid names."""
    if name not in CLASSIFICATION_DATASETS:
        raise ValueError(f"Unknown classification dataset. Expected one of: "
                         f"{', '.join(CLASSIFICATION_DATASETS)}. Received: name={name!r}")
    return CLASSIFICATION_DATASETS[name]


SOURCE_TYPE_CLASSES = ("python", "c_header", "english")
SOURCE_TYPE_SNIPPETS = {"train": 2_000, "test": 400}  # Per class.
SNIPPET_BYTES = (128, 256)


@functools.lru_cache(maxsize=2)
def source_type_snippets(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The offline `source_type` task: is a 128..256-byte snippet Python, a C header or English?

    Class 0 is Python source from the standard library (`sysconfig.get_paths()["stdlib"]`,
    without site-packages and pydoc_data, which is English in string literals), class 1 the C
    headers numpy ships (`numpy.get_include()`), class 2 the English prose of
    `pydoc_data.topics`. A real task: nothing but the bytes tells the classes apart, and the
    byte n-gram statistics of Python, C and prose differ (indentation and `def`/`self`, braces
    and `#define`, sentences), while the classes share the Latin alphabet and C comments and
    the pydoc topics quote code. Balanced, so the majority baseline is 1/3; a logistic
    regression on byte 1- and 2-gram counts reaches 0.86 test accuracy, on byte counts 0.77
    (Python 3.11, numpy 2.4).

    Every `HELD_OUT_EVERY`-th file of each sorted listing is "test", so the snippets of one file
    never reach both splits (the English test documents are `documents("pydoc", "validation")`'s,
    so a masked LM pretrained on pydoc's train split has not read them). Snippets start at random offsets of files drawn in proportion to their
    size (so they may overlap within a split), with a fixed seed: the dataset is the same on
    every call for the installed versions of Python and numpy.

    Args:
        split: "train" (2,000 snippets per class) or "test" (400 per class).

    Returns:
        `(texts, labels)`: bytes objects (N,) and int32 (N,), classes interleaved in a fixed
        random order.
    """
    documents_per_class = source_type_documents(split)  # Checks the split.
    rng = np.random.default_rng(list(SOURCE_TYPE_SNIPPETS).index(split))
    texts, labels = [], []
    for label, docs in enumerate(documents_per_class):
        sizes = np.array([len(d) if isinstance(d, bytes) else os.path.getsize(d) for d in docs], np.float64)
        sizes[sizes < SNIPPET_BYTES[0]] = 0
        contents = {}
        for i in rng.choice(len(docs), SOURCE_TYPE_SNIPPETS[split], p=sizes / sizes.sum()):
            if i not in contents:
                contents[i] = docs[i] if isinstance(docs[i], bytes) else _read_bytes(docs[i])
            length = min(int(rng.integers(SNIPPET_BYTES[0], SNIPPET_BYTES[1] + 1)), len(contents[i]))
            start = int(rng.integers(0, len(contents[i]) - length + 1))
            texts.append(contents[i][start:start + length])
            labels.append(label)
    order = rng.permutation(len(texts))
    return np.array(texts, dtype=object)[order], np.array(labels, np.int32)[order]


def source_type_documents(split: str) -> tuple[list[str], list[str], list[bytes]]:
    """The documents of a source_type split: Python paths, C header paths, English texts."""
    if split not in SOURCE_TYPE_SNIPPETS:
        raise ValueError(f"Unknown source_type split. Expected one of: train, test. Received: split={split!r}")
    import numpy  # For its headers.

    python = []
    for root, dirs, names in os.walk(sysconfig.get_paths()["stdlib"]):
        dirs[:] = [d for d in dirs if d not in ("site-packages", "dist-packages", "pydoc_data", "__pycache__")]
        python += [os.path.join(root, name) for name in names if name.endswith(".py")]
    headers = [os.path.join(root, name) for root, _, names in os.walk(numpy.get_include())
               for name in names if name.endswith(".h")]
    english = [text.encode("utf-8") for text in pydoc_texts()]
    return tuple(_held_out_split(docs, split) for docs in (sorted(python), sorted(headers), english))


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _held_out_split(items: list, split: str) -> list:
    held_out = split != "train"
    return [item for i, item in enumerate(items) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out]


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
        raise ValueError(f"Expected `files` to match at least one file. Received: files={files!r}")
    return sorted(paths)


def _plain(fn):
    """Marks a tf.data map function as free of tensor-dependent Python control flow.

    AutoGraph would otherwise rewrite it and every function it calls, tokenizer and tf_text
    included, which takes seconds per pipeline and changes nothing.
    """
    return tf.autograph.experimental.do_not_convert(fn)


def _check_positive(**values) -> None:
    for arg, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value!r}")

