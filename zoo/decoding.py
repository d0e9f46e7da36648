"""Decoding files inside tf.data pipelines with errors that name the file.

TensorFlow's decoders, run in a dataset's graph, report a damaged file as "Invalid PNG data, size
182" with no path, after a header check up front has already passed (a truncated file keeps its
header). These wrappers run the same decoders eagerly, one file at a time, and re-raise their
errors with the file's path; the decoded values are TensorFlow's own.
"""

from __future__ import annotations

import re

import tensorflow as tf

_GRAPH_NOISE = re.compile(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]( name:)?")


def _named(kind: str, decoder):
    def decode(path):
        try:
            return decoder(tf.io.read_file(path))
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            reason = _GRAPH_NOISE.sub("", error.message).strip()
            raise ValueError(f"Cannot decode the {kind} file {path.numpy().decode()}: {reason}") from None
    return decode


def read_image(path: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """The image file at `path` (PNG, JPEG, BMP or GIF's first frame) -> uint8 (H, W, channels)."""
    decode = _named("image", lambda contents: tf.io.decode_image(contents, channels=channels,
                                                                 expand_animations=False))
    image = tf.py_function(decode, [path], tf.uint8)
    image.set_shape([None, None, channels])
    return image


def read_wav(path: tf.Tensor) -> tf.Tensor:
    """The 16-bit PCM .wav file at `path` -> float32 (samples, channels) in [-1, 1), as tf.audio.decode_wav."""
    audio = tf.py_function(_named(".wav", lambda contents: tf.audio.decode_wav(contents).audio), [path], tf.float32)
    audio.set_shape([None, None])
    return audio
