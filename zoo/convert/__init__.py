"""Conversion of released Perceiver checkpoints into zoo models and keras-hub presets."""

from zoo.convert.flaxformer import from_flaxformer
from zoo.convert.preset import to_preset
from zoo.convert.transformers import from_transformers

__all__ = ["from_flaxformer", "from_transformers", "to_preset"]
