"""TextPreprocessor and PerceiverIO(tie_embeddings=True): the byte MLM's input and tied output."""

import keras
import numpy as np
import pytest

from perceiver_keras import PerceiverDecoder, PerceiverEncoder, PerceiverIO, TextPreprocessor, TrainablePositionEncoding

from .helpers import TOLERANCE, assert_fit_step, assert_saved_model_round_trip, randomize_weights, to_numpy

VOCAB, C, LENGTH = 262, 8, 10


def ids(batch=2, length=LENGTH, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, length)).astype("int32")


def test_embeds_ids_plus_positions_and_reverses_to_tied_logits():
    text = TextPreprocessor(VOCAB, C, max_length=16, output_bias=True)
    tokens = ids(length=7)
    text(tokens)  # builds it
    randomize_weights(text)
    embedded = to_numpy(text(tokens))
    table, positions = to_numpy(text.token_embeddings), to_numpy(text.position_embeddings)
    np.testing.assert_allclose(embedded, table[tokens] + positions[None, :7], **TOLERANCE)
    hidden = np.random.default_rng(1).normal(size=(2, 3, C)).astype("float32")
    logits = to_numpy(text(hidden, reverse=True))
    np.testing.assert_allclose(logits, hidden @ table.T + to_numpy(text.bias), rtol=1e-5, atol=1e-5)


def test_rejects_sequences_longer_than_its_positions_and_reverse_without_bias():
    text = TextPreprocessor(VOCAB, C, max_length=4)
    with pytest.raises(ValueError, match=r"4 positions\. Received: token_ids.shape=\(1, 5\)"):
        text(ids(batch=1, length=5))
    with pytest.raises(ValueError, match="output_bias=False"):
        text(np.zeros((1, 2, C), "float32"), reverse=True)
    with pytest.raises(ValueError, match="Received: vocab_size=0"):
        TextPreprocessor(0, C, 4)


def test_config_round_trip():
    text = TextPreprocessor(VOCAB, C, max_length=LENGTH, output_bias=True, name="text")
    text(ids())
    clone = TextPreprocessor.from_config(text.get_config())
    assert clone.get_config() == text.get_config()
    clone(ids())
    clone.set_weights(text.get_weights())
    np.testing.assert_allclose(to_numpy(clone(ids())), to_numpy(text(ids())), **TOLERANCE)


def tied_model():
    return PerceiverIO(
        preprocessor=TextPreprocessor(VOCAB, C, LENGTH, output_bias=True),
        encoder=PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2,
                                 num_cross_attention_heads=2),
        query=TrainablePositionEncoding(LENGTH, C),
        decoder=PerceiverDecoder(num_heads=2, use_query_residual=False),
        tie_embeddings=True, inputs_shape=(LENGTH,), input_dtype="int32", input_name="token_ids",
        use_padding_mask=True,
    )


def test_tied_model_shares_one_embedding_saves_and_trains(tmp_path):
    model = tied_model()
    randomize_weights(model, scale=0.3)
    inputs = {"token_ids": ids(), "padding_mask": np.ones((2, LENGTH), "int32")}
    assert tuple(model(inputs).shape) == (2, LENGTH, VOCAB)
    embeddings = [w for w in model.weights if "token_embeddings" in w.path]
    assert len(embeddings) == 1  # one table serves input and output
    loaded = assert_saved_model_round_trip(model, inputs, tmp_path)
    assert loaded.count_params() == model.count_params()
    assert_fit_step(model, inputs)


def test_tie_embeddings_needs_a_preprocessor():
    with pytest.raises(ValueError, match="Received: preprocessor=None"):
        PerceiverIO(encoder=PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1,
                                             num_self_attention_heads=2),
                    decoder=PerceiverDecoder(), query=TrainablePositionEncoding(3, 8), inputs_shape=(3, 8),
                    tie_embeddings=True)


def test_keras_serialization_keeps_the_tie():
    model = tied_model()
    clone = PerceiverIO.from_config(model.get_config())
    assert clone.tie_embeddings and clone.count_params() == model.count_params()
    assert isinstance(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model)), PerceiverIO)
