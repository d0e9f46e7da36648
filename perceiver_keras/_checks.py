"""Argument and shape checks shared by the layers.

Every message names what was expected and what was received, in the style of Keras'
`MultiHeadAttention` ("... Received: num_heads=0").
"""

import numbers

import keras
import numpy as np
from keras import ops


def positive_int(name, value, allow_none=False):
    """Returns `value` if it is a positive int (or None when allowed), else raises ValueError."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def probability(name, value):
    """Returns `value` if it lies in [0, 1), else raises ValueError."""
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def one_of(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises ValueError listing them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")
    return value


def divisible(channels_name, channels, heads_name, heads):
    """Raises ValueError unless `channels` is a multiple of `heads`."""
    if channels % heads:
        raise ValueError(
            f"`{channels_name}` must be divisible by `{heads_name}`. "
            f"Received: {channels_name}={channels}, {heads_name}={heads}"
        )


def index_dims_tuple(name, value):
    """Normalises an int or a sequence of ints to a tuple of positive ints."""
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"`{name}` must be a positive int or a non-empty sequence of them. Received: {name}={value!r}")
    return dims


def tensor_shape(layer, arg, shape, rank, channels=None, length=None):
    """Checks a static shape: its rank, and where known its last axis and its second axis."""
    shape = tuple(shape)
    if len(shape) != rank:
        raise ValueError(
            f"Layer '{layer}' expected `{arg}` of rank {rank}. Received: {arg}.shape={shape}"
        )
    if channels is not None and shape[-1] is not None and shape[-1] != channels:
        raise ValueError(
            f"Layer '{layer}' expected `{arg}` with {channels} channels on its last axis. "
            f"Received: {arg}.shape={shape}"
        )
    if length is not None and shape[1] is not None and shape[1] != length:
        raise ValueError(
            f"Layer '{layer}' expected `{arg}` of length {length} on axis 1. Received: {arg}.shape={shape}"
        )


def mask_shape(layer, arg, mask, reference, reference_name):
    """Checks that a (B, L) mask matches the (B, L, ...) tensor it masks."""
    if mask is None:
        return
    shape, ref = tuple(mask.shape), tuple(reference.shape)
    expected = ref[:2]
    ok = len(shape) == 2 and all(a is None or b is None or a == b for a, b in zip(shape, expected))
    if not ok:
        raise ValueError(
            f"Layer '{layer}' expected `{arg}` of shape {expected} (batch, length of `{reference_name}`). "
            f"Received: {arg}.shape={shape}"
        )


def _initializer_names():
    return sorted(name for name in dir(keras.initializers)
                  if name.islower() and not name.startswith("_") and name not in ("get", "serialize", "deserialize"))


def initializer(name, value, default):
    """`value` as a Keras initializer (a name, a config dict, an instance or a function), `default()` if None.

    Raises ValueError naming `name`, the accepted names and the received value if Keras knows no such
    initializer.
    """
    if value is None:
        return default()
    try:
        resolved = keras.initializers.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras initializer: one of {_initializer_names()}, a config dict or an "
            f"initializer instance. Received: {name}={value!r}"
        ) from error
    if not callable(resolved):
        raise ValueError(f"`{name}` must be a Keras initializer. Received: {name}={value!r}")
    return resolved


def seed(name, value):
    """Returns `value` as an int, or None; anything else (a bool, a float, a string) raises ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an int or None. Received: {name}={value!r}")
    return int(value)


def broadcast_batch(x, shape):
    """`ops.broadcast_to(x, shape)`, written as a reshape when it only adds leading 1s (a static batch of 1).

    With a static batch of 1 the TFLite converter folds a reshape of a constant, but keeps a
    BROADCAST_TO of a large one (e.g. 128 x 128 latents), which Arm's Ethos-U compiler cannot map.
    """
    static = all(isinstance(d, int) for d in shape) and all(isinstance(d, int) for d in x.shape)
    if static and int(np.prod(shape)) == int(np.prod(x.shape)):
        return ops.reshape(x, shape)
    return ops.broadcast_to(x, shape)


def append_channels(x, values):
    """Appends the same trailing channels `values` (1, P) to every position of `x` (B, M, C): (B, M, C + P).

    Written as a zero PAD plus a broadcasting ADD rather than a concatenation with a broadcast
    copy, which TFLite keeps as a BROADCAST_TO (not mappable by Arm's Ethos-U compiler); the two
    are equal in float arithmetic (x + 0 and 0 + v are exact).
    """
    padded = ops.pad(x, [[0, 0], [0, 0], [0, values.shape[-1]]])
    return padded + ops.concatenate([ops.zeros((1, x.shape[-1]), dtype=values.dtype), values], axis=-1)[None]
