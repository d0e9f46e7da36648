"""Perceiver IO in keras-hub: a `Backbone`, a `Task` per zoo task, their preprocessors, presets on disk.

Importing this module imports keras_hub and registers the classes, so that keras-hub's own
`from_preset` finds them by their registered names ("perceiver_keras>PerceiverBackbone", ...).
`import perceiver_keras` does it for you as soon as keras_hub is imported (before or after it), so
`keras_hub.models.ImageClassifier.from_preset(dir)` works after `import perceiver_keras, keras_hub`
without keras-hub's import cost for those who never use it.
"""

from perceiver_keras.hub._preset_files import writing as writing_preset
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_classifier import PerceiverImageClassifier
from perceiver_keras.hub.perceiver_image_classifier_preprocessor import PerceiverImageClassifierPreprocessor
from perceiver_keras.hub.perceiver_image_converter import PerceiverImageConverter
from perceiver_keras.hub.perceiver_masked_lm import PerceiverMaskedLM
from perceiver_keras.hub.perceiver_masked_lm_preprocessor import PerceiverMaskedLMPreprocessor
from perceiver_keras.hub.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from perceiver_keras.hub.perceiver_multimodal_autoencoder_preprocessor import PerceiverMultimodalAutoencoderPreprocessor
from perceiver_keras.hub.perceiver_optical_flow import PerceiverOpticalFlow
from perceiver_keras.hub.perceiver_optical_flow_preprocessor import PerceiverOpticalFlowPreprocessor
from perceiver_keras.hub.perceiver_text_classifier import PerceiverTextClassifier
from perceiver_keras.hub.perceiver_text_classifier_preprocessor import PerceiverTextClassifierPreprocessor
from perceiver_keras.hub.perceiver_tokenizer import PerceiverTokenizer
from perceiver_keras.hub.to_task import to_task

__all__ = [
    "PerceiverBackbone",
    "PerceiverImageClassifier",
    "PerceiverImageClassifierPreprocessor",
    "PerceiverImageConverter",
    "PerceiverMaskedLM",
    "PerceiverMaskedLMPreprocessor",
    "PerceiverMultimodalAutoencoder",
    "PerceiverMultimodalAutoencoderPreprocessor",
    "PerceiverOpticalFlow",
    "PerceiverOpticalFlowPreprocessor",
    "PerceiverTextClassifier",
    "PerceiverTextClassifierPreprocessor",
    "PerceiverTokenizer",
    "to_task",
    "writing_preset",
]
