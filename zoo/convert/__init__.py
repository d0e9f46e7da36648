"""Conversion of released Perceiver checkpoints into zoo models."""

from zoo.convert.transformers import from_transformers

__all__ = ["from_transformers"]
