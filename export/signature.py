"""The serving signature shared by the SavedModel and every .tflite file.

Every exported artefact takes its inputs as named tensors (the Keras input names, or the keys of a
dict-input model) and returns a dict of named outputs, so that a caller can feed the SavedModel,
`saved_model_cli` and the LiteRT signature runner with the same names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

Inputs = np.ndarray | dict[str, np.ndarray]
"""Model inputs as NumPy: one array, or a dict of arrays keyed by input name."""


@dataclasses.dataclass(frozen=True)
class ServingSignature:
    """Names, dtypes and shapes of a model's inputs, and how the model wants them passed.

    Attributes:
        specs: input name -> `tf.TensorSpec`; the first dimension is the batch.
        structure: how the Keras model takes its inputs: `"tensor"` (one tensor), `"dict"` (a dict
            keyed by input name) or `"list"` (a list in the order of `specs`).
    """

    specs: dict[str, tf.TensorSpec]
    structure: str

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def to_model_inputs(self, feed: Mapping[str, Any]) -> Any:
        """Arranges named inputs the way the Keras model takes them."""
        if self.structure == "tensor":
            return feed[self.names[0]]
        if self.structure == "list":
            return [feed[name] for name in self.names]
        return {name: feed[name] for name in self.names}

    def to_feed(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Turns user inputs (one array or a dict) into named arrays of the signature's dtypes."""
        if isinstance(inputs, Mapping):
            missing = sorted(set(self.names) - set(inputs))
            if missing:
                raise ValueError(
                    f"Inputs are missing {missing}. Expected the keys {self.names}. "
                    f"Received: keys={sorted(inputs)}"
                )
            feed = {name: inputs[name] for name in self.names}
        elif len(self.names) == 1:
            feed = {self.names[0]: inputs}
        else:
            raise ValueError(
                f"The model takes {len(self.names)} named inputs {self.names}; pass a dict. "
                f"Received: {type(inputs).__name__}"
            )
        return {
            name: np.asarray(value, dtype=self.specs[name].dtype.as_numpy_dtype)
            for name, value in feed.items()
        }

    def with_static_shapes(self, example: Mapping[str, np.ndarray], batch_size: int = 1) -> ServingSignature:
        """Fixes the batch to `batch_size` and every other unknown dimension to the example's size."""
        specs = {}
        for name, spec in self.specs.items():
            dims = [batch_size] + [
                dim if dim is not None else example[name].shape[axis + 1]
                for axis, dim in enumerate(spec.shape.as_list()[1:])
            ]
            specs[name] = tf.TensorSpec(dims, spec.dtype, name=name)
        return ServingSignature(specs, self.structure)


def signature_of(model: keras.Model) -> ServingSignature:
    """Reads the input signature of a built Keras model.

    Args:
        model: a functional or Sequential model, or a subclassed model that has been called.

    Returns:
        The model's `ServingSignature`, with the batch dimension left unknown.
    """
    try:
        structure = model.input
    except (AttributeError, ValueError):
        # Subclassed models have no symbolic inputs; Keras records the shapes of their first call.
        from keras.src.export.export_utils import get_input_signature

        (structure,) = get_input_signature(model)
    if isinstance(structure, Mapping):
        items, kind = list(structure.items()), "dict"
    elif isinstance(structure, (list, tuple)):
        items, kind = [(_input_name(t, i), t) for i, t in enumerate(structure)], "list"
    else:
        items, kind = [(_input_name(structure, 0), structure)], "tensor"
    specs = {
        name: tf.TensorSpec((None, *tuple(t.shape)[1:]), tf.as_dtype(t.dtype), name=name)
        for name, t in items
    }
    return ServingSignature(specs, kind)


def _input_name(tensor: Any, index: int) -> str:
    name = (getattr(tensor, "name", None) or "").split(":")[0].replace("/", "_")
    # Symbolic tensors Keras made up (a Sequential built without an Input) get a counter-suffixed
    # name that changes between sessions; name those by position instead.
    if not name or name.startswith("keras_tensor"):
        return f"input_{index}"
    return name


def named_outputs(outputs: Any) -> dict[str, Any]:
    """Names a model's outputs: dict keys are kept, otherwise `output_0`, `output_1`, ..."""
    if isinstance(outputs, Mapping):
        return dict(outputs)
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": value for i, value in enumerate(outputs)}
    return {"output_0": outputs}


def serving_function(
    model: keras.Model, signature: ServingSignature
) -> tf.types.experimental.GenericFunction:
    """A `tf.function` over named inputs that returns named outputs, in inference mode.

    The function takes one positional dict argument; SavedModel signatures name their inputs after
    its keys, which keeps the input names stable across SavedModel and TFLite.
    """

    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return named_outputs(model(signature.to_model_inputs(inputs), training=False))

    return tf.function(serve, input_signature=[dict(signature.specs)], autograph=False)


def keras_predict(
    model: keras.Model, signature: ServingSignature, feed: Mapping[str, np.ndarray], batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Runs the Keras model on named inputs in inference mode and returns named NumPy outputs."""
    total = len(next(iter(feed.values())))
    chunks: list[dict[str, np.ndarray]] = []
    for start in range(0, total, batch_size):
        batch = {name: value[start : start + batch_size] for name, value in feed.items()}
        outputs = named_outputs(model(signature.to_model_inputs(batch), training=False))
        chunks.append({name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()})
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
