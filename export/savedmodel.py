"""Writing the SavedModel with a named serving signature, and checking it after reloading."""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from export.data import num_samples, slice_feed
from export.signature import ServingSignature, serving_function
from export.verify import max_abs_diff


def write_saved_model(
    model: keras.Model, signature: ServingSignature, path: str | os.PathLike, signature_name: str
) -> None:
    """Writes `model` as a SavedModel whose signature `signature_name` takes named inputs.

    The signature's inputs are named after `signature.specs` and its outputs after
    `export.signature.named_outputs` (`output_0`, ... or the model's dict keys).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(signature_name, serving_function(model, signature))
    archive.write_out(os.fspath(path), verbose=False)


def verify_saved_model(
    path: str | os.PathLike,
    signature_name: str,
    feed: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    batch_size: int = 64,
) -> dict:
    """Reloads the SavedModel with `tf.saved_model.load` and compares its outputs to Keras'.

    Args:
        path: the SavedModel directory.
        signature_name: the serving signature to call.
        feed: named inputs.
        expected: the Keras model's named outputs on `feed`.
        batch_size: samples per call.

    Returns:
        `{"signature", "inputs", "outputs", "max_abs_diff"}`, with the inputs and outputs described
        as `{name: {"dtype", "shape"}}` (unknown dimensions are `None`).
    """
    loaded = tf.saved_model.load(os.fspath(path))
    if signature_name not in loaded.signatures:
        raise ValueError(
            f"The SavedModel at {path} has no signature {signature_name!r}. "
            f"Received signatures: {sorted(loaded.signatures)}"
        )
    function = loaded.signatures[signature_name]
    _, input_specs = function.structured_input_signature
    chunks = []
    for start in range(0, num_samples(feed), batch_size):
        batch = slice_feed(feed, start, start + batch_size)
        outputs = function(**{name: tf.constant(value) for name, value in batch.items()})
        chunks.append({name: value.numpy() for name, value in outputs.items()})
    actual = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    if set(actual) != set(expected):
        raise ValueError(
            f"The SavedModel outputs differ from the Keras model's. Expected: {sorted(expected)}. "
            f"Received: {sorted(actual)}"
        )
    return {
        "signature": signature_name,
        "inputs": _describe(input_specs),
        "outputs": _describe(function.structured_outputs),
        "max_abs_diff": max_abs_diff(expected, actual),
    }


def _describe(specs: Mapping[str, tf.TensorSpec]) -> dict[str, dict]:
    return {
        name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
        for name, spec in sorted(specs.items())
    }

