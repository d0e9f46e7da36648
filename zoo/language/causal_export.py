"""`python -m export` data of a causal language model run: windows of its corpus, as in training."""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.language.export import LANGUAGE_QUANTIZATIONS


def export_arrays(dataset: str, sequence_length: int, num_latents: int, data_dir: str | None = None,
                  files: str | list[str] | None = None, num_calibration: int = 64, num_eval: int | None = 256,
                  seed: int = 0) -> dict[str, Any]:
    """{"calibration": token ids (n, L), "eval": (token ids (n, L), next ids (n, N)), "quantizations"}."""
    from zoo.language import causal_data

    def windows(split: str, take: int | None):
        docs = causal_data.causal_documents(dataset, split, data_dir=data_dir, files=files)
        ds = causal_data.causal_lm_dataset(docs, sequence_length=sequence_length, num_latents=num_latents,
                                           batch_size=64, training=False, seed=seed, take=take)
        x, y = zip(*ds.as_numpy_iterator())
        return np.concatenate(x), np.concatenate(y)

    calibration, _ = windows("train", num_calibration)
    return {"calibration": calibration, "eval": windows("validation", num_eval),
            "quantizations": LANGUAGE_QUANTIZATIONS}
