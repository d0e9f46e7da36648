"""ByteTokenizer against transformers' PerceiverTokenizer (ids, truncation, pairs, decoding), in tf.data too."""

import math
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceiver_keras.byte_tokenizer import (
    BOS_ID,
    BYTE_OFFSET,
    CLS_ID,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    ByteTokenizer,
)

pytestmark = pytest.mark.tensorflow_only

transformers = pytest.importorskip("transformers")

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
MANY = settings(SETTINGS, max_examples=200)  # for the plain-Python paths, which are cheap

# Fragments that stress the byte mapping and the special-token matching.
FRAGMENTS = [
    "a", "Z", " ", "\n", "\t", "\x00", "é", "e\u0301", "\u0308", "漢字", "中文", "日本語", "한국어",
    "😀", "👩\u200d👩\u200d👧", "🇫🇷", "\ufffd", "\U0010ffff", "\u200b", "[", "]", "[[", "]]",
    "MASK", "[MAS", "ASK]", "[mask]", "[ MASK]", "[PAD ]", *SPECIAL_TOKENS,
]
fragment_texts = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)
special_heavy = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet="[]PADBOSEMKCL ", max_size=8)), max_size=20
).map("".join)
long_texts = st.builds(
    lambda base, extra: (base * math.ceil(5000 / len(base)) + extra),
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12).map("".join),
    st.text(max_size=50),
)
texts = st.one_of(st.text(), fragment_texts, special_heavy, long_texts)
short_texts = st.one_of(st.text(max_size=40), fragment_texts, special_heavy)
batches = st.lists(texts, min_size=1, max_size=4)

# Ids: uniform, biased to UTF-8 lead/continuation bytes, and valid UTF-8 cut at random places.
any_ids = st.lists(st.integers(0, VOCAB_SIZE - 1), max_size=40)
utf8ish_ids = st.lists(
    st.one_of(st.integers(0x80 + BYTE_OFFSET, VOCAB_SIZE - 1), st.integers(0, 5), st.integers(6, 0x7F + BYTE_OFFSET)),
    max_size=40,
)
cut_utf8_ids = st.builds(
    lambda text, lo, hi, noise: noise + [b + BYTE_OFFSET for b in text.encode("utf-8")][lo:hi] + noise,
    st.text(min_size=1, max_size=20), st.integers(0, 6), st.integers(-6, 80), st.lists(st.integers(0, 261), max_size=3),
)
id_lists = st.one_of(any_ids, utf8ish_ids, cut_utf8_ids)


@pytest.fixture(scope="module")
def ref():
    return transformers.PerceiverTokenizer()


@pytest.fixture(scope="module")
def tok():
    return ByteTokenizer()


@pytest.fixture(scope="module")
def raw_tok():
    return ByteTokenizer(add_special_tokens=False)


def _pad_ref(ref, a, length, b=None, add_special_tokens=True):
    out = ref(a, b, max_length=length, truncation=True, padding="max_length", add_special_tokens=add_special_tokens)
    return out["input_ids"], out["attention_mask"]


def test_constants_match_reference(ref):
    assert (PAD_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID) == (0, 1, 2, 3, 4, 5)
    assert [ref.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS] == list(range(6))
    assert (ref.pad_token, ref.bos_token, ref.eos_token, ref.mask_token, ref.cls_token, ref.sep_token) == SPECIAL_TOKENS
    assert VOCAB_SIZE == len(ref) == 262 and BYTE_OFFSET == 6


def test_documented_examples(ref, tok):
    assert tok.encode("a[MASK]b") == ref("a[MASK]b").input_ids == [4, 103, 3, 104, 5]
    assert tok.encode(" [MASK] ") == ref(" [MASK] ").input_ids == [4, 38, 3, 38, 5]  # no space stripping
    ids = [72 + 6, 0, 73 + 6, 3, 3, 0xC3 + 6]
    assert tok.decode(ids) == ref.decode(ids) == "H[PAD]I[MASK][MASK]\ufffd"
    assert tok.detokenize(ids).numpy().decode("utf-8") == "H[PAD]I[MASK][MASK]\ufffd"


@MANY
@given(text=texts)
def test_encode_matches_reference(ref, tok, raw_tok, text):
    assert tok.encode(text) == ref(text).input_ids
    assert raw_tok.encode(text) == ref(text, add_special_tokens=False).input_ids


@SETTINGS
@given(batch=batches)
def test_layer_and_tokenize_match_reference(ref, tok, raw_tok, batch):
    out = tok(batch)
    assert isinstance(out, tf.RaggedTensor) and out.dtype == tf.int32
    assert out.to_list() == ref(batch).input_ids
    raw = ref(batch, add_special_tokens=False).input_ids
    assert raw_tok(batch).to_list() == raw
    assert tok.tokenize(batch).to_list() == raw
    assert tok(batch[0]).numpy().tolist() == ref(batch[0]).input_ids  # scalar input -> dense (n,)


@SETTINGS
@given(batch=batches, length=st.integers(2, 48))
@pytest.mark.filterwarnings("ignore:ByteTokenizer truncated")
def test_padded_truncated_match_reference(ref, batch, length):
    tok = ByteTokenizer(sequence_length=length)
    out = tok(batch)
    ids, mask = _pad_ref(ref, batch, length)
    assert out["token_ids"].dtype == out["padding_mask"].dtype == tf.int32
    assert out["token_ids"].shape == (len(batch), length)
    assert out["token_ids"].numpy().tolist() == ids
    assert out["padding_mask"].numpy().tolist() == mask
    assert tok.encode(batch[0]) == ref(batch[0], max_length=length, truncation=True).input_ids
    raw = ByteTokenizer(sequence_length=length - 1, add_special_tokens=False)(batch)
    ids, mask = _pad_ref(ref, batch, length - 1, add_special_tokens=False)
    assert raw["token_ids"].numpy().tolist() == ids and raw["padding_mask"].numpy().tolist() == mask


@SETTINGS
@given(pairs=st.lists(st.tuples(texts, short_texts), min_size=1, max_size=4), length=st.integers(3, 40))
@pytest.mark.filterwarnings("ignore:ByteTokenizer truncated")
def test_pairs_match_reference(ref, tok, pairs, length):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    assert tok(a, pair=b).to_list() == ref(a, b).input_ids
    assert tok.encode(a[0], pair=b[0]) == ref(a[0], b[0]).input_ids
    padded = ByteTokenizer(sequence_length=length)
    out = padded(a, pair=b)
    ids, mask = _pad_ref(ref, a, length, b)
    assert out["token_ids"].numpy().tolist() == ids
    assert out["padding_mask"].numpy().tolist() == mask
    assert padded.encode(a[0], pair=b[0]) == ref(a[0], b[0], max_length=length, truncation=True).input_ids
    raw = ByteTokenizer(sequence_length=length, add_special_tokens=False)(a, pair=b)
    ids, mask = _pad_ref(ref, a, length, b, add_special_tokens=False)
    assert raw["token_ids"].numpy().tolist() == ids and raw["padding_mask"].numpy().tolist() == mask


def test_longest_first_rule_against_reference(ref):
    """Budget T = L - 3; the shorter text keeps min(len, ceil(T/2)) (a) or min(len, floor(T/2)) (b)."""
    a_all, b_all = "abcdefghij", "klmnopqrst"
    for length in range(3, 16):
        tok = ByteTokenizer(sequence_length=length)
        budget = length - 3
        for len_a in range(0, 10):
            for len_b in range(0, 10):
                a, b = a_all[:len_a], b_all[:len_b]
                if len_a + len_b <= budget:
                    keep_a, keep_b = len_a, len_b
                elif len_a <= len_b:
                    keep_a = min(len_a, math.ceil(budget / 2))
                    keep_b = budget - keep_a
                else:
                    keep_b = min(len_b, budget // 2)
                    keep_a = budget - keep_b
                expected = tok.encode(a[:keep_a]) + tok.encode(b[:keep_b])[1:]
                assert ref(a, b, max_length=length, truncation=True).input_ids == expected, (length, len_a, len_b)
                assert tok.encode(a, pair=b) == expected


@MANY
@given(ids=id_lists)
def test_decode_matches_reference(ref, tok, ids):
    for skip in (False, True):
        expected = ref.decode(ids, skip_special_tokens=skip)
        assert tok.decode(ids, skip_special_tokens=skip) == expected
        assert tok.detokenize(ids, skip_special_tokens=skip).numpy().decode("utf-8") == expected


@SETTINGS
@given(batch=st.lists(id_lists, min_size=1, max_size=5))
def test_detokenize_batches_match_reference(ref, tok, batch):
    for skip in (False, True):
        expected = [ref.decode(ids, skip_special_tokens=skip) for ids in batch]
        got = tok.detokenize(tf.ragged.constant(batch, dtype=tf.int32), skip_special_tokens=skip)
        assert [s.decode("utf-8") for s in got.numpy()] == expected
    # Dense (B, L) padded ids: the padding is "[PAD]", or dropped with skip_special_tokens.
    width = max(len(ids) for ids in batch)
    dense = np.array([ids + [PAD_ID] * (width - len(ids)) for ids in batch], np.int64)
    got = tok.detokenize(dense, skip_special_tokens=True).numpy()
    assert [s.decode("utf-8") for s in got] == [ref.decode(ids, skip_special_tokens=True) for ids in batch]
    got = tok.detokenize(tf.constant(dense)).numpy()
    assert [s.decode("utf-8") for s in got] == [ref.decode(row.tolist()) for row in dense]


def test_tf_replacement_matches_python_on_ill_formed_utf8(tok):
    """One U+FFFD per maximal ill-formed subpart, as Python's errors="replace" does."""
    cases = [b"\xed\xa0\x80", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80",
             b"\xf8\x88\x80\x80\x80", b"\xff\xfe", b"\xe2\x82", b"\xf0\x9f\x98", b"a\xf0\x9f\x98b\xe2\x82\xac\x80",
             b"\x80\xbf", b"\xed\x9f\xbf\xee\x80\x80", b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", b"\x00\xc3"]
    for raw in cases:
        ids = [b + BYTE_OFFSET for b in raw]
        assert tok.detokenize(ids).numpy().decode("utf-8") == raw.decode("utf-8", errors="replace"), raw
        assert tok.decode(ids) == raw.decode("utf-8", errors="replace")


def test_tokenize_any_rank_and_raw_bytes(tok):
    dense = tf.constant([["a", "[CLS]b"], ["", "é"]])
    assert tok.tokenize(dense).to_list() == [[[103], [4, 104]], [[], [201, 175]]]
    ragged = tf.ragged.constant([[["x"]], [["[SEP]", "yz"], []]])
    out = tok.tokenize(ragged)
    assert out.ragged_rank == 3 and out.to_list() == [[[[126]]], [[[5], [127, 128]], []]]
    assert tok.tokenize("[MASK]").numpy().tolist() == [3]
    assert tok.tokenize(tf.constant(b"\xff[\x00")).numpy().tolist() == [0xFF + 6, 97, 6]  # any bytes pass through
    texts = tf.constant([["ab[PAD]c", "😀"], ["", "[[EOS]]"]])
    assert tok.detokenize(tok.tokenize(texts).merge_dims(0, 1)).numpy().tolist() == tf.reshape(texts, [-1]).numpy().tolist()


def test_inside_tf_data_map(ref):
    strings = ["Hello, world!", "", "a[MASK]b", "漢字😀" * 10, "x" * 100]
    tok = ByteTokenizer(sequence_length=16)
    ds = tf.data.Dataset.from_tensor_slices(strings).batch(2).map(tok)
    assert ds.element_spec["token_ids"].shape.as_list() == [None, 16]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # graph mode: truncation is silent
        batches = list(ds.as_numpy_iterator())
    assert [b["token_ids"].shape for b in batches] == [(2, 16), (2, 16), (1, 16)]
    ids, mask = _pad_ref(ref, strings, 16)
    assert np.concatenate([b["token_ids"] for b in batches]).tolist() == ids
    assert np.concatenate([b["padding_mask"] for b in batches]).tolist() == mask
    # Pairs, ragged output and detokenize in graph mode too.
    pairs = tf.data.Dataset.from_tensor_slices((strings, strings[::-1])).batch(5)
    out = next(iter(pairs.map(lambda a, b: tok(a, pair=b))))
    assert out["token_ids"].numpy().tolist() == _pad_ref(ref, strings, 16, strings[::-1])[0]
    ragged = ByteTokenizer()
    text = next(iter(tf.data.Dataset.from_tensor_slices(strings).batch(5).map(
        lambda s: ragged.detokenize(ragged(s), skip_special_tokens=True))))
    assert [s.decode("utf-8") for s in text.numpy()] == [ref.decode(ref(s).input_ids, skip_special_tokens=True)
                                                         for s in strings]


def test_string_signature_function(ref):
    tok = ByteTokenizer(sequence_length=8)
    fn = tf.function(lambda s: tok(s), input_signature=[tf.TensorSpec([None], tf.string)])
    out = fn(tf.constant(["ab", "[CLS]xyzxyzxyz"]))
    assert out["token_ids"].numpy().tolist() == _pad_ref(ref, ["ab", "[CLS]xyzxyzxyz"], 8)[0]
    detok = tf.function(lambda i: tok.detokenize(i), input_signature=[tf.TensorSpec([None, None], tf.int32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 262\)"):
        detok(tf.constant([[6, 262]]))


@pytest.mark.filterwarnings("ignore:ByteTokenizer truncated")
def test_functional_model_with_string_input(ref):
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, ByteTokenizer(sequence_length=8)(inputs))
    assert model.output["token_ids"].shape == (None, 8)
    out = model(tf.constant(["ab", "a[SEP]bcdefgh"]))
    assert out["token_ids"].numpy().tolist() == _pad_ref(ref, ["ab", "a[SEP]bcdefgh"], 8)[0]


def test_get_config_round_trip():
    tok = ByteTokenizer(sequence_length=12, add_special_tokens=False, name="bytes")
    config = tok.get_config()
    assert config["sequence_length"] == 12 and config["add_special_tokens"] is False
    clone = ByteTokenizer.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tok))
    assert isinstance(restored, ByteTokenizer) and restored.get_config() == config
    assert restored(["abc"])["token_ids"].numpy().tolist() == [[103, 104, 105] + [0] * 9]


def test_bad_ids_raise(tok):
    for bad in (262, 300, -1):
        with pytest.raises(ValueError, match=rf"\[0, 262\)\. Received: id={bad}"):
            tok.decode([10, bad])
        with pytest.raises(ValueError, match=rf"\[0, 262\)\. Received: id={bad}"):
            tok.detokenize([[10, bad]])
    with pytest.raises(TypeError, match="float32"):
        tok.detokenize(tf.constant([1.0]))


@pytest.mark.filterwarnings("ignore:ByteTokenizer truncated")
def test_bad_sequence_length_raises():
    for bad in (0, 1):
        with pytest.raises(ValueError, match=f"Received: sequence_length={bad}"):
            ByteTokenizer(sequence_length=bad)
    with pytest.raises(ValueError, match="Received: sequence_length=2.5"):
        ByteTokenizer(sequence_length=2.5)
    tok = ByteTokenizer(sequence_length=2)
    assert tok(["abc"])["token_ids"].numpy().tolist() == [[CLS_ID, SEP_ID]]
    with pytest.raises(ValueError, match="Received: sequence_length=2"):
        tok(["a"], pair=["b"])
    with pytest.raises(ValueError, match="Received: sequence_length=2"):
        tok.encode("a", pair="b")
    assert ByteTokenizer(sequence_length=1, add_special_tokens=False).encode("ab") == [103]


def test_non_string_input_raises(tok):
    with pytest.raises(TypeError, match="int32"):
        tok(tf.constant([1, 2]))
    with pytest.raises(TypeError, match="float32"):
        tok.tokenize(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="int32"):
        tok(["a"], pair=tf.constant([1]))
    with pytest.raises(TypeError, match="int"):
        tok.encode(3)
    with pytest.raises(ValueError, match="shape"):
        tok(tf.constant([["a"]]))


def test_truncation_warning_in_eager_mode():
    tok = ByteTokenizer(sequence_length=5)
    with pytest.warns(UserWarning, match=r"truncated 2 of 3 .*sequence_length=5"):
        out = tok(["abcd", "ab", "abcde"])
    assert out["padding_mask"].numpy().tolist() == [[1] * 5, [1, 1, 1, 1, 0], [1] * 5]
    assert out["token_ids"].numpy().tolist()[0] == [CLS_ID, 103, 104, 105, SEP_ID]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok(["ab", "abc"])  # nothing truncated: no warning
    with pytest.warns(UserWarning, match=r"truncated 1 of 1 .*sequence_length=5"):
        tok(["a"], pair=["bcd"])


def test_lazy_package_export():
    import perceiver_keras

    assert perceiver_keras.ByteTokenizer is ByteTokenizer
    assert perceiver_keras.SPECIAL_TOKENS == SPECIAL_TOKENS and perceiver_keras.VOCAB_SIZE == 262
    with pytest.raises(AttributeError):
        perceiver_keras.NoSuchThing  # noqa: B018
    code = ("import sys, perceiver_keras; assert 'tensorflow' not in sys.modules, 'tf imported'; "
            "assert 'perceiver_keras.byte_tokenizer' not in sys.modules")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    pytest.importorskip("jax")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
