"""Chunked decoding: every output of a multimodal autoencoder, a few thousand points at a time."""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np

from perceiver_keras import MultimodalPerceiverIO


def reconstruct(model: MultimodalPerceiverIO, inputs: Mapping[str, np.ndarray], chunk_size: int = 4096
                ) -> dict[str, np.ndarray]:
    """Decodes all the points of every modality in chunks and assembles the full outputs.

    The inputs are encoded once; then each chunk decodes at most `chunk_size` points of each
    multi-point modality (for video autoencoding, pixels and audio patches, both split into the
    same number of contiguous chunks, as the reference's colab does) together with the single-point
    ones (the label), through the model's own query, decoder and postprocessor layers. Queries do not
    interact in the decoder, so the result equals decoding everything at once (up to float rounding),
    in memory that grows with `chunk_size` rather than with the number of outputs (802,816 pixels x
    1,026 channels of queries for the paper's model).

    Args:
        model: a `MultimodalPerceiverIO`, with or without subsampled modalities.
        inputs: dict modality -> array, as the model takes them (index inputs are ignored).
        chunk_size: the most points of one modality decoded per step.

    Returns:
        dict modality -> numpy array, as the model's full outputs (e.g. "image" (B, T, H, W, 3),
        "audio" (B, S, 1), "label" (B, K)).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"`chunk_size` must be a positive integer. Received: chunk_size={chunk_size!r}")
    model.preprocessor.check_inputs(inputs)
    modalities = {key: keras.ops.convert_to_tensor(np.asarray(inputs[key], "float32"))
                  for key in model.preprocessor.modalities}
    preprocessed = model.preprocessor(modalities, training=False)
    latents = model.encoder(preprocessed, training=False)
    batch = int(preprocessed.shape[0])
    points = model.postprocessor.num_positions
    chunked = [key for key in model.query.queries if points[key] > 1]
    num_chunks = max([math.ceil(points[key] / chunk_size) for key in chunked] or [1])
    splits = {key: np.array_split(np.arange(points[key], dtype="int32"), min(num_chunks, points[key]))
              for key in chunked}
    pieces, single = {key: [] for key in chunked}, {}
    for chunk in range(num_chunks):
        # A modality with fewer points than chunks decodes its point 0 again (discarded) once it is done.
        picked = {key: splits[key][chunk] if chunk < len(splits[key]) else None for key in chunked}
        indices = {key: keras.ops.convert_to_tensor(np.tile((np.zeros(1, "int32") if p is None else p)[None],
                                                             (batch, 1)))
                   for key, p in picked.items()}
        queries = model.query(preprocessed, indices=indices or None)
        outputs = model.postprocessor(model.decoder(queries, latents, training=False), indices=indices or None)
        for key in chunked:
            if picked[key] is not None:
                pieces[key].append(keras.ops.convert_to_numpy(outputs[key]))
        if chunk == 0:
            single = {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items() if key not in chunked}
    shapes = model.postprocessor.output_shapes
    return {**single, **{key: np.concatenate(pieces[key], axis=1).reshape(batch, *shapes[key]) for key in chunked}}
