"""Small plain-Keras models and data builders for tests/test_export.py.

`digits_data` is also the data builder that the CLI test's run.json names
("tests.export_fixtures:digits_data"), the way a zoo training run names its own.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits

NUM_TRAIN = 1400
SEQUENCE_LENGTH, VOCABULARY_SIZE, MARKER_TOKEN = 12, 20, 3


def _digits() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data / 16.0).astype("float32"), digits.target.astype("int32")


def digits_data(num_calibration: int = 200, calibration_scale: float = 1.0) -> dict:
    """Calibration pixels from the training split and the held-out `(x, y)`.

    Args:
        num_calibration: training images used for int8 calibration.
        calibration_scale: multiplies the calibration pixels; a small value gives the int8
            converter far too narrow activation ranges (a deliberately bad calibration).
    """
    x, y = _digits()
    return {
        "calibration": x[:num_calibration] * np.float32(calibration_scale),
        "eval": (x[NUM_TRAIN:], y[NUM_TRAIN:]),
    }


def digits_model(epochs: int = 10) -> keras.Model:
    """An MLP over the 8x8 digits (64 pixels in [0, 1]) -> 10 logits, trained for a few epochs."""
    keras.utils.set_random_seed(0)
    pixels = keras.Input((64,), name="pixels")
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(pixels)
    logits = keras.layers.Dense(10, name="logits")(hidden)
    model = keras.Model(pixels, logits, name="digits_mlp")
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = _digits()
    model.fit(x[:NUM_TRAIN], y[:NUM_TRAIN], epochs=epochs, batch_size=64, verbose=0)
    return model


def token_data(num_samples: int = 600) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Padded token sequences; the label says whether the marker token occurs before the padding."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, SEQUENCE_LENGTH + 1, size=num_samples)
    mask = (np.arange(SEQUENCE_LENGTH)[None] < lengths[:, None]).astype("int32")
    tokens = rng.integers(1, VOCABULARY_SIZE, size=(num_samples, SEQUENCE_LENGTH)).astype("int32") * mask
    labels = (np.sum((tokens == MARKER_TOKEN) * mask, axis=1) > 0).astype("int32")
    return {"token_ids": tokens, "padding_mask": mask}, labels


def token_model(epochs: int = 10) -> keras.Model:
    """Embedding -> masked max-pool -> MLP -> 2 logits, taking a dict of two int32 (B, L) inputs."""
    keras.utils.set_random_seed(0)
    token_ids = keras.Input((SEQUENCE_LENGTH,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((SEQUENCE_LENGTH,), dtype="int32", name="padding_mask")
    embedded = keras.layers.Embedding(VOCABULARY_SIZE, 16, name="embedding")(token_ids)
    mask = keras.ops.expand_dims(keras.ops.cast(padding_mask, "float32"), -1)
    pooled = keras.layers.GlobalMaxPooling1D(name="pool")(embedded * mask)
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(pooled)
    logits = keras.layers.Dense(2, name="logits")(hidden)
    model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, logits, name="tokens")
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    inputs, labels = token_data()
    model.fit({k: v[:500] for k, v in inputs.items()}, labels[:500], epochs=epochs, verbose=0)
    return model
