"""Writing the SavedModel with a named serving signature, and checking it after reloading."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export.data import num_samples, slice_feed
from export.signature import ServingSignature, serving_function
from export.verify import max_abs_diff


@dataclasses.dataclass(frozen=True)
class ExtraSignature:
    """A further SavedModel signature, written next to the default one and checked after reloading.

    Attributes:
        function: a `tf.function` with an `input_signature`; its argument names (or the specs'
            names) become the signature's input names, and it returns a dict of named outputs.
            It may use the exported model and anything in `track`.
        example: named inputs (NumPy arrays, strings included) the reloaded signature is called on.
        expected: the named outputs it must give on `example`, within the SavedModel threshold;
            `None` compares with the in-memory `function`'s own outputs.
        track: what the SavedModel must hold besides the model: the layers, lookup tables or other
            trackables the function uses.
    """

    function: Any
    example: Mapping[str, Any]
    expected: Mapping[str, np.ndarray] | None = None
    track: tuple = ()

    def __post_init__(self):
        if not isinstance(self.function, tf.types.experimental.GenericFunction) or (
            self.function.input_signature is None
        ):
            raise ValueError(
                "ExtraSignature.function must be a tf.function with an input_signature. "
                f"Received: {self.function!r}"
            )
        if not self.example:
            raise ValueError("ExtraSignature.example needs named inputs to check the signature on.")

    def expected_outputs(self) -> dict[str, np.ndarray]:
        """`expected`, or the in-memory function's outputs on `example`."""
        if self.expected is not None:
            return {name: np.asarray(value) for name, value in self.expected.items()}
        outputs = self.function(**{name: tf.constant(value) for name, value in self.example.items()})
        return {name: value.numpy() for name, value in outputs.items()}


def write_saved_model(
    model: keras.Model,
    signature: ServingSignature,
    path: str | os.PathLike,
    signature_name: str,
    extra_signatures: Mapping[str, ExtraSignature] | None = None,
) -> None:
    """Writes `model` as a SavedModel whose signature `signature_name` takes named inputs.

    The signature's inputs are named after `signature.specs` and its outputs after
    `export.signature.named_outputs` (`output_0`, ... or the model's dict keys). Each of
    `extra_signatures` is written as a further signature of that name (its `track` objects held by
    the SavedModel); `serving_default` stays the model's own signature.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    # Registered first, so that Keras aliases it as "serving_default" when it has another name.
    archive.add_endpoint(signature_name, serving_function(model, signature))
    for name, extra in (extra_signatures or {}).items():
        for resource in extra.track:
            archive.track(resource)
        extra.function.get_concrete_function()  # Keras adds only traced tf.functions.
        archive.add_endpoint(name, extra.function)
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
        as `{name: {"dtype", "shape"}}` (unknown dimensions, or an unknown rank, are `None`), and
        `"exact_mismatches"` (`exact_mismatches`) when some outputs are not floats.
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
    # A scalar input (e.g. a generation length) holds for every sample: such a signature is called once.
    scalars = any(np.ndim(value) == 0 for value in feed.values())
    for start in range(0, 1 if scalars else num_samples(feed), batch_size):
        batch = feed if scalars else slice_feed(feed, start, start + batch_size)
        outputs = function(**{name: tf.constant(value) for name, value in batch.items()})
        chunks.append({name: value.numpy() for name, value in outputs.items()})
    actual = chunks[0] if len(chunks) == 1 else {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    if set(actual) != set(expected):
        raise ValueError(
            f"The SavedModel outputs differ from the Keras model's. Expected: {sorted(expected)}. "
            f"Received: {sorted(actual)}"
        )
    checked = {
        "signature": signature_name,
        "inputs": _describe(input_specs),
        "outputs": _describe(function.structured_outputs),
        "max_abs_diff": max_abs_diff(expected, actual),
    }
    exact = exact_mismatches(expected, actual)
    if exact:
        checked["exact_mismatches"] = exact
    return checked


def exact_mismatches(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> dict[str, int]:
    """For each non-float output (strings, integers), how many of its values differ from the expected ones."""
    found = {}
    for name, want in expected.items():
        want, got = np.asarray(want), np.asarray(actual[name])
        if np.issubdtype(want.dtype, np.floating):
            continue
        found[name] = int(want.size if got.shape != want.shape else np.count_nonzero(got != want))
    return found


def _describe(specs: Mapping[str, tf.TensorSpec]) -> dict[str, dict]:
    return {
        name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list() if spec.shape.rank is not None else None}
        for name, spec in sorted(specs.items())
    }

