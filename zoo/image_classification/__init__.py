"""Image classification with Perceiver IO: presets, model builder, data pipelines."""

from zoo.image_classification import presets  # noqa: F401  (registers the presets)
from zoo.image_classification.model import build_image_classifier

__all__ = ["build_image_classifier"]
