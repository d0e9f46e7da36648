"""Language with Perceiver IO and Perceiver AR: byte masked and causal language models, text classifiers, tf.data pipelines."""

from zoo.language import causal_presets, presets  # noqa: F401  (registers the presets)
from zoo.language.causal_presets import build_causal_language_model
from zoo.language.generation import generate
from zoo.language.model import build_masked_language_model, build_text_classifier

__all__ = ["generate", "build_causal_language_model", "build_masked_language_model", "build_text_classifier"]
