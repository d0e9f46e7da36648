"""Language with Perceiver IO: byte masked language model, text classifiers, tf.data pipelines."""

from zoo.language import presets  # noqa: F401  (registers the presets)
from zoo.language.model import build_masked_language_model, build_text_classifier

__all__ = ["build_masked_language_model", "build_text_classifier"]
