"""The configurations benchmarked, and how each side gets the same random weights.

transformers builds the PyTorch model from a `PerceiverConfig` with its own random initialisation
and writes it with `save_pretrained`; our Keras model is `zoo.convert.from_transformers` of that
folder, so both run the same function with the same weights (the benchmark checks their outputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_IMAGENET = dict(
    num_latents=512, d_latents=1024, num_blocks=8, num_self_attends_per_block=6, num_self_attention_heads=8,
    num_cross_attention_heads=1, image_size=224, num_labels=1000,
)
# A quarter-width, 64x64 version of the Fourier model: trains here at batch 8 in seconds per step.
_SMALL = dict(
    num_latents=256, d_latents=512, num_blocks=2, num_self_attends_per_block=4, num_self_attention_heads=8,
    num_cross_attention_heads=1, image_size=64, num_labels=100,
)
_TOY = dict(
    num_latents=16, d_latents=32, num_blocks=1, num_self_attends_per_block=2, num_self_attention_heads=2,
    num_cross_attention_heads=1, image_size=16, num_labels=10,
)


@dataclass(frozen=True)
class BenchModel:
    """A transformers Perceiver head and the `PerceiverConfig` fields it is built with."""

    name: str
    head: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config["image_size"], self.config["image_size"], 3)

    def transformers_config(self):
        import transformers

        return transformers.PerceiverConfig(**self.config)


MODELS = {
    model.name: model
    for model in (
        BenchModel("imagenet_fourier", "PerceiverForImageClassificationFourier", _IMAGENET),
        BenchModel("imagenet_learned", "PerceiverForImageClassificationLearned", _IMAGENET),
        BenchModel("imagenet_conv", "PerceiverForImageClassificationConvProcessing", _IMAGENET),
        BenchModel("small_fourier", "PerceiverForImageClassificationFourier", _SMALL),
        BenchModel("toy_fourier", "PerceiverForImageClassificationFourier", _TOY),
    )
}


def get(name: str) -> BenchModel:
    if name not in MODELS:
        raise ValueError(f"Unknown benchmark model. Expected one of: {', '.join(MODELS)}. Received: {name!r}")
    return MODELS[name]


def images(model: BenchModel, batch_size: int, seed: int = 0) -> np.ndarray:
    """Channels-last float32 images, normalised-looking (zero mean, unit variance)."""
    return np.random.default_rng(seed).standard_normal((batch_size, *model.image_shape)).astype("float32")


def save_reference(model: BenchModel, folder: Path, seed: int = 0) -> Path:
    """Builds transformers' model with random weights (seeded) and writes it with `save_pretrained`."""
    import torch
    import transformers

    torch.manual_seed(seed)
    reference = getattr(transformers, model.head)(model.transformers_config()).eval()
    reference.save_pretrained(folder)
    return folder


def reference_class(model: BenchModel):
    """transformers' class of the model (importing it loads transformers' Perceiver code)."""
    import transformers

    return getattr(transformers, model.head)


def load_reference(model: BenchModel, folder: Path):
    return reference_class(model).from_pretrained(folder).eval()


def reference_flops(model: BenchModel, batch_size: int) -> int:
    """Floating-point operations of one forward pass of transformers' model, counted by torch.

    `torch.utils.flop_counter` counts 2 per multiply-add of every matmul/conv while one batch-1
    forward pass runs (transformers' preprocessing calls `.item()`, so the meta device cannot be
    used); the count is linear in the batch. This is the work the task defines; our attention may do fewer (see
    `PerceiverAttention.fold_projections`), so GFLOP/s figures are reference-equivalent.
    """
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    reference = getattr(transformers, model.head)(model.transformers_config()).eval()
    pixels = torch.zeros(1, 3, *model.image_shape[:2])
    with FlopCounterMode(display=False) as counter:  # (under no_grad its module hooks fail in torch 2.13)
        reference(pixel_values=pixels)
    return int(counter.get_total_flops()) * batch_size
