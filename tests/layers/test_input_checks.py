"""Model inputs checked at the entry in the user's terms, on every backend (issue: reliability)."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perceiver_keras import (
    ClassificationPostprocessor,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    TextPreprocessor,
    TrainablePositionEncoding,
)

ENCODER = dict(num_latents=4, num_latent_channels=8, num_self_attention_layers_per_block=1, num_self_attention_heads=2)
LENGTH, VOCAB = 6, 20


def _text_model(**kwargs):
    return PerceiverIO(
        encoder=PerceiverEncoder(**ENCODER), decoder=PerceiverDecoder(output_channels=3),
        query=TrainablePositionEncoding(index_dims=1, encoding_channels=8),
        preprocessor=TextPreprocessor(vocab_size=VOCAB, output_channels=8, max_length=LENGTH),
        postprocessor=ClassificationPostprocessor(), inputs_shape=(LENGTH,), input_dtype="int32",
        input_name="token_ids", use_padding_mask=True, **kwargs)


def _image_model(**kwargs):
    return PerceiverIO(
        encoder=PerceiverEncoder(**ENCODER), decoder=PerceiverDecoder(output_channels=3),
        query=TrainablePositionEncoding(index_dims=1, encoding_channels=8), inputs_shape=(5, 4), **kwargs)


def _feed(ids=None, mask=None):
    ids = np.arange(2 * LENGTH).reshape(2, LENGTH) % VOCAB if ids is None else ids
    return {"token_ids": np.asarray(ids, "int32"), "padding_mask": np.ones((2, LENGTH), "int32") if mask is None
            else np.asarray(mask, "int32")}


@pytest.fixture(scope="module")
def text_model():
    return _text_model()


@pytest.mark.parametrize("ids, message", [
    ([[-1, 0, 1, 2, 3, 4]] * 2, r"token ids in \[0, 20\).*from -1 to 4.*index \[0, 0\]"),
    ([[0, 1, 2, 3, 4, 20]] * 2, r"token ids in \[0, 20\).*from 0 to 20.*index \[0, 5\]"),
])
def test_token_ids_outside_the_vocabulary_are_refused(text_model, ids, message):
    with pytest.raises(ValueError, match=message):
        text_model(_feed(ids=ids))
    with pytest.raises(ValueError, match=message):
        text_model.predict(_feed(ids=ids), verbose=0)


def test_padding_masks_must_be_zero_or_one_and_the_ids_shape(text_model):
    with pytest.raises(ValueError, match=r"padding_mask` of 0 and 1 only.*Received: values \[2\]"):
        text_model(_feed(mask=[[1, 1, 2, 1, 0, 0]] * 2))
    with pytest.raises(ValueError, match=r"expected `padding_mask` of shape \('batch', 6\)"):
        text_model({**_feed(), "padding_mask": np.ones((2, 4), "int32")})


def test_batch_zero_wrong_rank_and_missing_inputs(text_model):
    with pytest.raises(ValueError, match="empty batch"):
        text_model({k: v[:0] for k, v in _feed().items()})
    with pytest.raises(ValueError, match=r"add a batch axis"):
        text_model({k: v[0] for k, v in _feed().items()})
    with pytest.raises(ValueError, match=r"takes the inputs \['padding_mask', 'token_ids'\].*missing \['padding_mask'\]"):
        text_model({"token_ids": _feed()["token_ids"]})


def test_a_bad_predict_does_not_break_later_valid_calls():
    model = _image_model()
    good = np.zeros((2, 5, 4), "float32")
    first = model.predict(good, verbose=0)
    with pytest.raises(ValueError, match=r"expected `inputs` of shape \('batch', 5, 4\).*add a batch axis"):
        model.predict(good[0], verbose=0)  # rank 2: Keras 3.15 would retrace and break later calls
    np.testing.assert_allclose(model.predict(good, verbose=0), first, atol=1e-6)


def test_check_finite_is_an_option_and_round_trips():
    model = _image_model(check_finite=True)
    bad = np.zeros((2, 5, 4), "float32")
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite value in `inputs` at index \[1, 2, 3\]"):
        model(bad)
    assert PerceiverIO.from_config(model.get_config()).check_finite is True
    assert keras.ops.convert_to_numpy(_image_model()(bad)).shape == (2, 1, 3)  # off by default: computed


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-300, 300), min_size=1, max_size=12), st.sampled_from([0, 1, 2, 3]))
def test_random_malformed_token_inputs_get_our_value_errors(text_model, values, shape_kind):
    ids = np.asarray(values, "int32")
    if shape_kind == 0:
        ids = ids[None]
    elif shape_kind == 1:
        ids = np.resize(ids, (2, LENGTH))
    elif shape_kind == 2:
        ids = np.resize(ids, (1, 1, LENGTH))
    valid = ids.shape[1:] == (LENGTH,) and ids.min() >= 0 and ids.max() < VOCAB
    feed = {"token_ids": ids, "padding_mask": np.ones(ids.shape, "int32")}
    if valid:
        text_model(feed)
        return
    with pytest.raises(ValueError, match=r"token_ids|padding_mask"):
        text_model(feed)
