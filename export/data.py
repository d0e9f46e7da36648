"""Turning the data a user passes (arrays, dicts, tuples, tf.data) into named NumPy arrays."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from export.signature import ServingSignature


def to_feed_and_labels(
    data: Any, signature: ServingSignature, *, what: str, limit: int | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Collects model inputs (and labels, when present) from the usual Keras data formats.

    Args:
        data: one of: an array or a dict of arrays (inputs only); a tuple `(x, y)` or
            `(x, y, sample_weight)` of those; a `tf.data.Dataset` or other iterable whose elements
            are `x` or `(x, y[, w])`, batched or not.
        signature: the model's signature; gives input names, dtypes and ranks.
        what: the argument's name, used in error messages (`"eval_data"`).
        limit: keep at most this many samples.

    Returns:
        `(feed, labels)`: named input arrays of the signature's dtypes, and the labels or `None`.
    """
    if isinstance(data, (np.ndarray, Mapping)) or tf.is_tensor(data):
        x, y = data, None
    elif isinstance(data, tuple):
        x, y = _split_element(data)
    elif isinstance(data, (tf.data.Dataset, Iterable)) and not isinstance(data, (str, bytes)):
        x, y = _collect(data, signature, what, limit)
    else:
        raise TypeError(
            f"{what} must be an array, a dict of arrays, a tuple (x, y) or a tf.data.Dataset. "
            f"Received: {type(data).__name__}"
        )
    feed = signature.to_feed(_to_numpy(x))
    for name, value in feed.items():
        spec = signature.specs[name]
        if not spec.shape.is_compatible_with(value.shape):
            raise ValueError(
                f"{what}[{name!r}] does not fit the model input. Expected shape "
                f"{tuple(spec.shape.as_list())}. Received: {value.shape}"
            )
    sizes = {name: len(value) for name, value in feed.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"All inputs in {what} need the same number of samples. Received: {sizes}")
    if limit is not None:
        feed = {name: value[:limit] for name, value in feed.items()}
    labels = None if y is None else np.asarray(_to_numpy(y))[: len(next(iter(feed.values())))]
    return feed, labels


def _split_element(element: tuple) -> tuple[Any, Any]:
    if len(element) not in (1, 2, 3):
        raise ValueError(
            f"Expected a data element x, (x, y) or (x, y, sample_weight). Received a tuple of {len(element)}"
        )
    return element[0], element[1] if len(element) > 1 else None


def _collect(data: Iterable, signature: ServingSignature, what: str, limit: int | None) -> tuple[Any, Any]:
    """Concatenates batched elements, or stacks unbatched ones, until `limit` samples."""
    xs, ys, count = [], [], 0
    iterator = data.as_numpy_iterator() if isinstance(data, tf.data.Dataset) else iter(data)
    for element in iterator:
        x, y = _split_element(element) if isinstance(element, tuple) else (element, None)
        x = signature.to_feed(_to_numpy(x))
        batched = all(
            value.ndim == signature.specs[name].shape.rank for name, value in x.items()
        )
        if not batched:
            x = {name: value[None] for name, value in x.items()}
            y = None if y is None else np.asarray(y)[None]
        xs.append(x)
        ys.append(y)
        count += len(next(iter(x.values())))
        if limit is not None and count >= limit:
            break
    if not xs:
        raise ValueError(f"{what} is empty.")
    feed = {name: np.concatenate([x[name] for x in xs]) for name in signature.names}
    labels = None if any(y is None for y in ys) else np.concatenate([np.asarray(y) for y in ys])
    return feed, labels


def _to_numpy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {name: _to_numpy(v) for name, v in value.items()}
    return value.numpy() if tf.is_tensor(value) else np.asarray(value)


def slice_feed(feed: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    """The samples `start:stop` of every named input."""
    return {name: value[start:stop] for name, value in feed.items()}


def num_samples(feed: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(feed.values())))


def nonfinite_samples(arrays: Mapping[str, np.ndarray]) -> dict[str, list[int]]:
    """For each float array holding NaN or infinity, the indices of the samples that do."""
    found = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.complexfloating):
            bad = ~np.isfinite(value.reshape(len(value), -1)).all(axis=1) if value.ndim else ~np.isfinite(value)[None]
            if bad.any():
                found[name] = [int(i) for i in np.flatnonzero(bad)]
    return found
