"""Tests of the language pipelines and metrics (offline: TFDS datasets are mocked, corpora ship with Python)."""

import itertools
import re

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.metrics import f1_score, matthews_corrcoef

from perceiver_keras.byte_tokenizer import BYTE_OFFSET, CLS_ID, MASK_ID, SEP_ID, VOCAB_SIZE
from zoo.language import data, metrics
from zoo.language.classification_data import CLASSIFICATION_DATASETS, classification_dataset
from zoo.language.source_type import source_type_documents, source_type_snippets

pytestmark = pytest.mark.tensorflow_only

L = 64  # sequence_length of the pipeline tests.


@pytest.fixture
def mock_tfds(tmp_path):
    """Ten random examples per split; returns the data_dir that keeps TFDS inside tmp_path."""
    with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
        yield str(tmp_path)


@pytest.fixture(scope="module")
def pydoc_eval():
    """The masked pydoc validation split, as numpy arrays (B, L)."""
    ds = data.masked_lm_dataset(data.documents("pydoc", "validation"), sequence_length=L, batch_size=64,
                                training=False)
    return [_concat(batches) for batches in zip(*_epoch(ds))], ds


def _epoch(ds):
    return list(ds.as_numpy_iterator())


def _concat(batches):
    if isinstance(batches[0], dict):
        return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    return np.concatenate(batches)


def _stream(y):
    """The byte stream of `masked_lm_dataset` labels: every row without CLS, its last SEP and padding."""
    return [int(i) for row in y for i in row[row != 0][1:-1]]


def _expected_stream(texts):
    ids = [[b + BYTE_OFFSET for b in text.encode("utf-8")] for text in texts]
    return [i for k, doc in enumerate(ids) for i in ([SEP_ID] if k else []) + doc]


def _check_inputs(x, batch, length=L):
    assert x["token_ids"].shape == x["padding_mask"].shape == (batch, length)
    assert x["token_ids"].dtype == x["padding_mask"].dtype == np.int32
    np.testing.assert_array_equal(x["padding_mask"], (x["token_ids"] != 0).astype(np.int32))
    assert np.all(x["token_ids"][:, 0] == CLS_ID)


def test_classification_table():
    table = CLASSIFICATION_DATASETS
    assert set(table) == {f"glue/{t}" for t in ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte",
                                                 "wnli")} | {"imdb_reviews", "source_type"}
    assert table["glue/qqp"].text_keys == ("question1", "question2") and table["imdb_reviews"].text_keys == ("text",)
    assert table["glue/mnli"].eval_split == "validation_matched" and table["glue/mnli"].num_classes == 3
    assert table["imdb_reviews"].eval_split == "test" and table["glue/stsb"].num_classes == 1
    for name, info in table.items():
        assert [m.name for m in metrics.metrics_for(name)] == list(info.metrics)
    assert table["glue/cola"].metrics == ("matthews_correlation",)
    assert table["glue/mrpc"].metrics == ("f1", "accuracy") and table["glue/stsb"].metrics == ("pearson", "spearman")


@pytest.mark.parametrize("name, split, training", [
    ("glue/cola", "validation", False), ("glue/mrpc", "validation", False), ("glue/stsb", "train", True),
    ("imdb_reviews", "test", False),
])
def test_classification_pipeline(mock_tfds, name, split, training):
    info = CLASSIFICATION_DATASETS[name]
    ds = classification_dataset(name, split, sequence_length=L, batch_size=4, training=training,
                                data_dir=mock_tfds)
    batches = _epoch(ds)
    assert [len(y) for _, y in batches] == ([4, 4] if training else [4, 4, 2])
    x, y = _concat([b[0] for b in batches]), _concat([b[1] for b in batches])
    _check_inputs(x, len(y))
    assert np.all(np.sum(x["token_ids"] == SEP_ID, axis=1) == len(info.text_keys))  # [CLS] a [SEP] b [SEP]
    if info.num_classes == 1:
        assert y.dtype == np.float32
    else:
        assert y.dtype == np.int32 and set(np.unique(y)) <= set(range(info.num_classes))


def test_c4_and_wikipedia_documents(mock_tfds):
    for source in ("c4", "wikipedia"):
        docs = _epoch(data.documents(source, "validation", data_dir=mock_tfds, take=5))
        assert len(docs) == 5 and all(isinstance(doc, bytes) and doc for doc in docs)


def test_text_files(tmp_path):
    texts = [f"document {i}: naïve café, 日本語 {'x' * 50 * i}\n" for i in range(9)]
    for i, text in enumerate(texts):
        (tmp_path / f"{i}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "skipped.md").write_text("not a text file")
    train = [d.decode() for d in _epoch(data.documents("text_files", "train", files=str(tmp_path)))]
    validation = [d.decode() for d in _epoch(data.documents("text_files", "validation", files=str(tmp_path)))]
    assert validation == [texts[3], texts[7]] and train == [t for t in texts if t not in validation]
    as_glob = data.documents("text_files", "train", files=[str(tmp_path / "[0-5].txt"), str(tmp_path / "8.txt")])
    assert len(_epoch(as_glob)) == 6  # 7 files, the 4th held out.
    with pytest.raises(ValueError, match="gives no validation file"):
        data.documents("text_files", "validation", files=str(tmp_path / "[0-2].txt"))


def test_pydoc_split_is_disjoint():
    train, validation = (_epoch(data.documents("pydoc", split)) for split in ("train", "validation"))
    assert len(validation) == 19 and len(train) == 60
    assert not set(train) & set(validation)
    assert sorted(train + validation) == sorted(t.encode() for t in data.pydoc_texts())


def test_masking_statistics(pydoc_eval):
    (x, y, weights), _ = pydoc_eval
    _check_inputs(x, len(y))
    tokens, selected = x["token_ids"], weights == 1
    assert set(np.unique(weights)) == {0.0, 1.0}
    # The windows concatenate back to the documents, joined by SEP; only the last one is padded.
    assert _stream(y) == _expected_stream(t.decode() for t in _epoch(data.documents("pydoc", "validation")))
    assert np.all(x["padding_mask"][:-1] == 1) and x["padding_mask"][-1, -1] == 0
    assert not np.any(selected & (y < BYTE_OFFSET))  # No PAD, CLS or SEP selected.
    np.testing.assert_array_equal(tokens[~selected], y[~selected])
    # Whole words (whitespace + non-whitespace, as re.findall(rb"\s*\S+|\s+")): all or nothing of a word
    # is selected, ceil(15%) of a row's words are.
    selected_words = words = 0
    for ids, row_selected in zip(y, selected):
        chosen = expected = 0
        for is_special, run in itertools.groupby(zip(ids[ids != 0], row_selected), lambda p: p[0] < BYTE_OFFSET):
            if is_special:
                continue
            run = list(run)
            start = 0
            for word in re.findall(rb"\s*\S+|\s+", bytes(int(i) - BYTE_OFFSET for i, _ in run)):
                flags = {bool(flag) for _, flag in run[start:start + len(word)]}
                assert len(flags) == 1
                chosen, expected, start = chosen + flags.pop(), expected + 1, start + len(word)
        assert chosen == np.ceil(np.float32(expected) * np.float32(0.15))  # tf_text's rule, in float32.
        selected_words, words = selected_words + chosen, words + expected
    assert 0.15 <= selected_words / words < 0.2  # Rows of 62 bytes hold about 10 words.
    # 80% MASK, 10% random byte, 10% unchanged, decided byte by byte.
    masked, target = tokens[selected], y[selected]
    assert abs(np.mean(masked == MASK_ID) - 0.8) < 0.02
    assert abs(np.mean(masked == target) - 0.1) < 0.02
    random = masked[(masked != MASK_ID) & (masked != target)]
    assert abs(random.size / masked.size - 0.1) < 0.02 and random.min() >= BYTE_OFFSET and random.max() < VOCAB_SIZE


def test_masks_reproducible_in_evaluation_and_fresh_in_training(pydoc_eval):
    (x, _, weights), ds = pydoc_eval
    again_x, _, again_weights = (_concat(part) for part in zip(*_epoch(ds)))
    np.testing.assert_array_equal(x["token_ids"], again_x["token_ids"])
    np.testing.assert_array_equal(weights, again_weights)
    training = data.masked_lm_dataset(data.documents("pydoc", "validation"), sequence_length=L, batch_size=16,
                                      training=True, take=64)
    first, second = _epoch(training), _epoch(training)
    assert [len(y) for _, y, _ in first] == [16] * 4
    assert not np.array_equal(first[0][2], second[0][2])
    windows = [sorted(row.tobytes() for _, y, _ in epoch for row in y) for epoch in (first, second)]
    assert windows[0] == windows[1]  # With `take`, the same windows in a new order.


def test_most_frequent_byte_baseline(pydoc_eval):
    (_, y, weights), ds = pydoc_eval
    baseline = data.most_frequent_byte_baseline(ds, ds)
    targets = y[weights == 1]
    assert baseline["most_frequent_id"] == np.bincount(targets).argmax() == ord(" ") + BYTE_OFFSET
    assert baseline["accuracy"] == pytest.approx(np.mean(targets == baseline["most_frequent_id"]))
    assert baseline["num_test_targets"] == targets.size and 0.1 < baseline["accuracy"] < 0.3


def test_source_type():
    texts, labels = source_type_snippets("train")
    test_texts, test_labels = source_type_snippets("test")
    assert np.bincount(labels).tolist() == [2000] * 3 and np.bincount(test_labels).tolist() == [400] * 3
    assert all(128 <= len(t) <= 256 for t in list(texts) + list(test_texts))
    source_type_snippets.cache_clear()
    again, again_labels = source_type_snippets("test")
    assert list(again) == list(test_texts) and list(again_labels) == list(test_labels)
    for label, (train_docs, test_docs) in enumerate(zip(*map(source_type_documents, ("train", "test")))):
        assert train_docs and test_docs and not set(train_docs) & set(test_docs)
        contents = [d if isinstance(d, bytes) else open(d, "rb").read() for d in test_docs]
        for snippet in test_texts[test_labels == label][:20]:  # Every test snippet comes from a test file.
            assert any(snippet in content for content in contents)
    ds = classification_dataset("source_type", "test", sequence_length=L, batch_size=100, training=False)
    x, y = next(iter(ds))
    _check_inputs({k: v.numpy() for k, v in x.items()}, 100)
    assert y.dtype == tf.int32


def _batches(*arrays, size=37):
    for start in range(0, len(arrays[0]), size):
        yield tuple(a[start:start + size] for a in arrays)


@pytest.mark.parametrize("weighted", [False, True])
def test_classification_metrics_match_sklearn(weighted):
    rng = np.random.default_rng(int(weighted))
    n = 300
    weights = rng.uniform(0.5, 2.0, n).astype(np.float32) if weighted else None
    y3 = rng.integers(0, 3, n)
    logits3 = rng.normal(size=(n, 3)).astype(np.float32) + np.eye(3, dtype=np.float32)[y3]
    y2 = rng.integers(0, 2, n)
    logits2 = rng.normal(size=(n, 2)).astype(np.float32) + np.eye(2, dtype=np.float32)[y2]
    for metric, y, logits, expected in [
        (metrics.MatthewsCorrelation(3), y3, logits3, matthews_corrcoef(y3, logits3.argmax(1), sample_weight=weights)),
        (metrics.BinaryF1(), y2, logits2, f1_score(y2, logits2.argmax(1), sample_weight=weights)),
    ]:
        w = np.ones(n, np.float32) if weights is None else weights
        for y_batch, logits_batch, w_batch in _batches(y, logits, w):
            metric.update_state(y_batch, logits_batch, w_batch if weighted else None)
        assert float(metric.result()) == pytest.approx(expected, abs=1e-5)
        metric.reset_state()
        assert float(metric.result()) == 0.0


def test_correlation_metrics_match_scipy():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 5, 500).astype(np.float32)
    pred = (1000 + true + rng.normal(size=500)).round(1).astype(np.float32)  # Offset and ties.
    tied_true = true.round(0)
    pearson, spearman, small = metrics.PearsonCorrelation(), metrics.SpearmanCorrelation(), \
        metrics.SpearmanCorrelation(capacity=200)
    for t, p, tt in _batches(true, pred, tied_true):
        pearson.update_state(t, p[:, None])
        spearman.update_state(tt, p[:, None])
        small.update_state(t, p)
    assert float(pearson.result()) == pytest.approx(scipy.stats.pearsonr(true, pred)[0], abs=1e-5)
    assert float(spearman.result()) == pytest.approx(scipy.stats.spearmanr(tied_true, pred)[0], abs=1e-5)
    assert float(small.result()) == pytest.approx(scipy.stats.spearmanr(true[:200], pred[:200])[0], abs=1e-5)
    weights = (rng.uniform(size=500) < 0.5).astype(np.float32)
    weighted_pearson, dropped = metrics.PearsonCorrelation(), metrics.SpearmanCorrelation()
    for t, p, w in _batches(true, pred, weights):
        weighted_pearson.update_state(t, p, w)
        dropped.update_state(t, p, w)
    keep = weights == 1
    assert float(weighted_pearson.result()) == pytest.approx(scipy.stats.pearsonr(true[keep], pred[keep])[0], abs=1e-5)
    assert float(dropped.result()) == pytest.approx(scipy.stats.spearmanr(true[keep], pred[keep])[0], abs=1e-5)
    restored = metrics.SpearmanCorrelation.from_config(small.get_config())
    assert restored.capacity == 200 and restored.name == "spearman"


def test_masked_lm_loss_and_accuracy_count_masked_positions_only():
    import keras

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB_SIZE, (4, 16)).astype(np.int32)
    y = rng.integers(0, VOCAB_SIZE, (4, 16)).astype(np.int32)
    weights = (rng.uniform(size=(4, 16)) < 0.3).astype(np.float32)
    model = keras.Sequential([keras.Input((16,), dtype="int32"), keras.layers.Embedding(VOCAB_SIZE, VOCAB_SIZE)])
    model.compile(loss=metrics.masked_lm_loss(), weighted_metrics=metrics.masked_lm_metrics())
    logits = model.predict(tokens, verbose=0)
    log_probs = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    cross_entropy = -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]
    expected = np.sum(cross_entropy * weights) / np.sum(weights)
    assert float(metrics.masked_lm_loss()(y, logits, weights)) == pytest.approx(expected, rel=1e-5)
    result = model.evaluate(tokens, y, sample_weight=weights, batch_size=4, return_dict=True, verbose=0)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    hits = logits.argmax(-1) == y
    assert result["masked_accuracy"] == pytest.approx(np.sum(hits * weights) / np.sum(weights))


def test_errors():
    with pytest.raises(ValueError, match=r"glue/cola, glue/sst2.*source_type\. Received: name='glue/nope'"):
        classification_dataset("glue/nope", "train", sequence_length=L, batch_size=2, training=False)
    with pytest.raises(ValueError, match="imdb_reviews.*Received: name='imdb'"):
        metrics.metrics_for("imdb")
    with pytest.raises(ValueError, match="Expected sequence_length >= 5 for glue/mrpc. Received: sequence_length=4"):
        classification_dataset("glue/mrpc", "train", sequence_length=4, batch_size=2, training=False)
    docs = data.documents("pydoc", "train")
    for bad in (2, 0, True, 64.0):
        with pytest.raises(ValueError, match="Expected sequence_length >= 3"):
            data.masked_lm_dataset(docs, sequence_length=bad, batch_size=2, training=False)
    with pytest.raises(ValueError, match="Expected one of: c4, wikipedia, text_files, pydoc, pg19, wiki40b, tiny_shakespeare. Received: source=.c5."):
        data.documents("c5", "train")
    with pytest.raises(ValueError, match="Received: split='test'"):
        data.documents("pydoc", "test")
    with pytest.raises(ValueError, match="Received: split='validation'"):
        source_type_snippets("validation")
    with pytest.raises(ValueError, match="mask_token_rate \\+ random_token_rate <= 1"):
        data.masked_lm_dataset(docs, sequence_length=L, batch_size=2, training=False, mask_token_rate=0.95)


def test_dataset_metrics_in_compiled_evaluate():
    import keras

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 8)).astype(np.float32)
    scores = (features[:, 0] + rng.normal(size=200)).astype(np.float32)
    labels = (scores > 0).astype(np.int32)
    for name, outputs, y, expected in [
        ("glue/stsb", 1, scores, lambda p: [scipy.stats.pearsonr(scores, p[:, 0])[0],
                                            scipy.stats.spearmanr(scores, p[:, 0])[0]]),
        ("glue/mrpc", 2, labels, lambda p: [f1_score(labels, p.argmax(1)), np.mean(labels == p.argmax(1))]),
        ("glue/cola", 2, labels, lambda p: [matthews_corrcoef(labels, p.argmax(1))]),
    ]:
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(outputs)])
        model.compile(loss="mse" if outputs == 1 else "sparse_categorical_crossentropy",
                      metrics=metrics.metrics_for(name))
        result = model.evaluate(features, y, batch_size=32, return_dict=True, verbose=0)
        predictions = model.predict(features, verbose=0)
        names = CLASSIFICATION_DATASETS[name].metrics
        np.testing.assert_allclose([result[m] for m in names], expected(predictions), atol=1e-5)
