"""Model inputs checked at the model's entry, in the user's terms, before Keras or a backend sees them.

Shapes and dtypes are checked on every call; values (token ids inside the vocabulary, padding masks of
0 and 1, output indices in range, and with `check_finite` finite floats) on concrete arrays: NumPy
arrays and eager tensors of any backend, i.e. `model(x)`, `model.predict(x)`, `evaluate` and
`fit` of arrays. Inside a traced function (a tf.data pipeline, `jit`) values are not known and only
shapes are checked. Every error is a ValueError naming the input, what was expected and what was
received, so that a bad call neither computes silently wrong results (a negative id wrapping to
the last row of the embedding) nor leaves Keras' compiled predict function broken for later calls
(Keras 3.15 retraces for a rank-3 image and then fails every valid batch).
"""

import numpy as np

import keras


def concrete(value):
    """`value` as a NumPy array if it holds values now (NumPy, lists, eager tensors), else None."""
    if value is None or keras.backend.is_keras_tensor(value):
        return None
    if isinstance(value, (np.ndarray, list, tuple, int, float, np.generic)):
        return np.asarray(value)
    try:
        return np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:  # noqa: BLE001 - a symbolic tensor (tf.function, JAX tracer) has no values yet
        return None


class InputRule:
    """What one named input must be.

    Args:
        shape: the shape without the batch axis (None: any size).
        dtype: "float", "int" or "bool".
        low, high: values must lie in [low, high) (high None: no upper bound).
        high_closed: values may also equal `high`: [low, high] (e.g. one-hot labels in [0, 1]).
        binary: values must be 0 or 1.
        what: the user's name for the values, e.g. "token ids".
        same_shape_as: another input's name whose shape this one must have.
    """

    def __init__(self, shape, dtype, low=None, high=None, binary=False, what="values", same_shape_as=None,
                 high_closed=False):
        self.shape, self.dtype = tuple(shape), dtype
        self.low, self.high, self.binary, self.what = low, high, binary, what
        self.high_closed = bool(high_closed)
        self.same_shape_as = same_shape_as


def check(model_name, inputs, rules, main_name=None, check_finite=False):
    """Raises ValueError unless `inputs` (one array or a dict) fits `rules` (name -> InputRule).

    Args:
        model_name: the model's name, for the messages.
        inputs: what the user passed.
        rules: the model's inputs.
        main_name: the input a single (non-dict) argument stands for.
        check_finite: also refuse NaN and infinite float values.
    """
    if isinstance(inputs, dict):
        unknown, missing = sorted(set(inputs) - set(rules)), sorted(set(rules) - set(inputs))
        if unknown or missing:
            raise ValueError(f"Model '{model_name}' takes the inputs {sorted(rules)}. Received: {sorted(inputs)} "
                             f"({'unknown ' + str(unknown) if unknown else ''}"
                             f"{'; ' if unknown and missing else ''}{'missing ' + str(missing) if missing else ''})")
        named = dict(inputs)
    else:
        if len(rules) > 1 or main_name is None:
            raise ValueError(f"Model '{model_name}' takes a dict with the inputs {sorted(rules)}. "
                             f"Received: a {type(inputs).__name__}")
        named = {main_name: inputs}
    shapes = {}
    for name, value in named.items():
        rule = rules[name]
        shape = tuple(getattr(value, "shape", np.shape(value)))
        shapes[name] = shape
        expected = ("batch", *(d if d is not None else "any" for d in rule.shape))
        if len(shape) != len(rule.shape) + 1 or any(
                want is not None and got is not None and want != got for want, got in zip(rule.shape, shape[1:])):
            hint = " (add a batch axis: x[None])" if tuple(shape) == tuple(rule.shape) else ""
            raise ValueError(f"Model '{model_name}' expected `{name}` of shape {expected}. "
                             f"Received: {name}.shape={shape}{hint}")
        if shape[0] == 0:
            raise ValueError(f"Model '{model_name}' got an empty batch: `{name}` has 0 samples. "
                             f"Received: {name}.shape={shape}")
    batches = {name: shape[0] for name, shape in shapes.items() if shape[0] is not None}
    if len(set(batches.values())) > 1:
        raise ValueError(f"Model '{model_name}' expected every input with the same batch size. Received: "
                         + ", ".join(f"{name}.shape={shapes[name]}" for name in sorted(batches)))
    for name, value in named.items():
        rule = rules[name]
        if rule.same_shape_as and shapes[name] != shapes.get(rule.same_shape_as, shapes[name]):
            raise ValueError(f"Model '{model_name}' expected `{name}` of the shape of `{rule.same_shape_as}` "
                             f"{shapes[rule.same_shape_as]}. Received: {name}.shape={shapes[name]}")
        array = concrete(value)
        if array is not None:
            _check_values(model_name, name, array, rule, check_finite)


def _check_values(model_name, name, array, rule, check_finite):
    kind = array.dtype.kind
    if rule.dtype in ("int", "bool") and kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"Model '{model_name}' expected integer {rule.what} in `{name}`. "
                             f"Received: {name} of dtype {array.dtype} with non-integer values")
    if rule.binary and array.size and not np.isin(array, (0, 1)).all():
        bad = np.unique(array[~np.isin(array, (0, 1))])[:5].tolist()
        raise ValueError(f"Model '{model_name}' expected `{name}` of 0 and 1 only (1: attend to the position). "
                         f"Received: values {bad}")
    if (rule.low is not None or rule.high is not None) and array.size and kind in "iuf":
        low, high = array.min(), array.max()
        above = (lambda v: v > rule.high) if rule.high_closed else (lambda v: v >= rule.high)
        if (rule.low is not None and low < rule.low) or (rule.high is not None and above(high)):
            where = np.argwhere((array < (rule.low if rule.low is not None else -np.inf))
                                | (above(array) if rule.high is not None else False))[0].tolist()
            bounds = (f"[{rule.low}, {rule.high}{']' if rule.high_closed else ')'}" if rule.high is not None
                      else f">= {rule.low}")
            raise ValueError(f"Model '{model_name}' expected {rule.what} in {bounds} in `{name}`. Received: "
                             f"values from {low} to {high}; the first out of range at index {where}")
    if check_finite and kind == "f" and not np.all(np.isfinite(array)):
        where = np.argwhere(~np.isfinite(array))[0].tolist()
        raise ValueError(f"Model '{model_name}' got a NaN or infinite value in `{name}` at index {where} "
                         f"(check_finite=True).")
