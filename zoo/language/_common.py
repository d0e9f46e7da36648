"""Helpers shared by the language input pipelines (`data`, `classification_data`, `source_type`).

The held-out rule of the offline corpora (every `HELD_OUT_EVERY`-th item of a sorted listing is
the evaluation split), the check of count arguments, and the marker that keeps AutoGraph out of
tf.data map functions. Private to `zoo.language`: import the public pipelines instead.
"""

from __future__ import annotations

import tensorflow as tf

HELD_OUT_EVERY = 4  # text_files, pydoc, source_type: every 4th document of a sorted listing is held out.


def held_out_split(items: list, split: str) -> list:
    """The items of `split`: every `HELD_OUT_EVERY`-th one for a split other than "train", else the rest."""
    held_out = split != "train"
    return [item for i, item in enumerate(items) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out]


def plain(fn):
    """Marks a tf.data map function as free of tensor-dependent Python control flow.

    AutoGraph would otherwise rewrite it and every function it calls, tokenizer and tf_text
    included, which takes seconds per pipeline and changes nothing.
    """
    return tf.autograph.experimental.do_not_convert(fn)


def check_positive(**values) -> None:
    """Raises ValueError unless every value that is not None is an int >= 1 (bool excluded)."""
    for arg, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value!r}")
