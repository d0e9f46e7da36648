"""`to_task(model)`: a zoo model (`PerceiverIO`, `MultimodalPerceiverIO`) as the matching keras-hub task."""

from perceiver_keras.flow import FlowPostprocessor, FlowPreprocessor
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_image_classifier import PerceiverImageClassifier
from perceiver_keras.hub.perceiver_image_classifier_preprocessor import PerceiverImageClassifierPreprocessor
from perceiver_keras.hub.perceiver_image_converter import PerceiverImageConverter
from perceiver_keras.hub.perceiver_masked_lm import PerceiverMaskedLM
from perceiver_keras.hub.perceiver_masked_lm_preprocessor import PerceiverMaskedLMPreprocessor
from perceiver_keras.hub.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from perceiver_keras.hub.perceiver_multimodal_autoencoder_preprocessor import (
    PerceiverMultimodalAutoencoderPreprocessor,
)
from perceiver_keras.hub.perceiver_optical_flow import PerceiverOpticalFlow
from perceiver_keras.hub.perceiver_optical_flow_preprocessor import PerceiverOpticalFlowPreprocessor
from perceiver_keras.hub.perceiver_text_classifier import PerceiverTextClassifier
from perceiver_keras.hub.perceiver_text_classifier_preprocessor import PerceiverTextClassifierPreprocessor
from perceiver_keras.hub.perceiver_tokenizer import PerceiverTokenizer
from perceiver_keras.image import ClassificationPostprocessor, ImagePreprocessor
from perceiver_keras.model import PerceiverIO
from perceiver_keras.multimodal_model import MultimodalPerceiverIO
from perceiver_keras.text import TextPreprocessor


def to_task(model, preprocessor=None, image_converter=None):
    """The keras-hub task computing what `model` computes, sharing its layers (and so its weights).

    A zoo model's parts decide the task: an `ImagePreprocessor` with class logits is a
    `PerceiverImageClassifier`, a `TextPreprocessor` with tied embeddings a `PerceiverMaskedLM` (its
    "output_indices" become keras-hub's "mask_positions"; a whole-sequence model decodes the positions
    it is given), with class logits a `PerceiverTextClassifier`, a `FlowPreprocessor` a
    `PerceiverOpticalFlow`, a `MultimodalPerceiverIO` a `PerceiverMultimodalAutoencoder`.

    Args:
        model: a `PerceiverIO` or `MultimodalPerceiverIO` (e.g. from `zoo.create_model`).
        preprocessor: the task's keras-hub preprocessor; default: the task's own, with a
            `PerceiverImageConverter(**image_converter)` for images, frames and videos (images are resized
            to the model's size) and a `PerceiverTokenizer` at the model's sequence length for text.
        image_converter: dict of `PerceiverImageConverter` arguments, e.g. `{"scale": 1 / 255}`.

    Raises:
        ValueError: a model whose parts match no task.

    Example:
    >>> import zoo
    >>> task = to_task(zoo.create_model("digits"), image_converter={"scale": 1 / 16})
    >>> task.save_to_preset("digits_preset")
    """
    converter = dict(image_converter or {})
    if isinstance(model, MultimodalPerceiverIO):
        backbone = PerceiverBackbone(model.preprocessor, model.encoder)
        preprocessor = preprocessor or PerceiverMultimodalAutoencoderPreprocessor(PerceiverImageConverter(**converter))
        return PerceiverMultimodalAutoencoder(backbone, model.query, model.decoder, model.postprocessor, preprocessor,
                                              subsampled_modalities=model.subsampled_modalities, name=model.name)
    if not isinstance(model, PerceiverIO):
        raise ValueError(f"to_task takes a PerceiverIO or MultimodalPerceiverIO. Received: {type(model).__name__}")
    backbone = PerceiverBackbone(model.preprocessor, model.encoder, model.inputs_shape, model.main_input_dtype,
                                 model.input_name, model.use_padding_mask)
    adapter, head = model.preprocessor, model.postprocessor
    classifier = isinstance(head, ClassificationPostprocessor) and not model.use_output_indices
    if isinstance(adapter, ImagePreprocessor) and classifier:
        converter.setdefault("image_size", tuple(model.inputs_shape[:2]))
        preprocessor = preprocessor or PerceiverImageClassifierPreprocessor(PerceiverImageConverter(**converter))
        return PerceiverImageClassifier(backbone, model.decoder.output_channels, preprocessor, model.query,
                                        model.decoder, name=model.name)
    if isinstance(adapter, TextPreprocessor) and model.tie_embeddings and head is None:
        preprocessor = preprocessor or PerceiverMaskedLMPreprocessor(PerceiverTokenizer(), model.inputs_shape[0])
        return PerceiverMaskedLM(backbone, preprocessor, model.query, model.decoder, name=model.name)
    if isinstance(adapter, TextPreprocessor) and classifier:
        preprocessor = preprocessor or PerceiverTextClassifierPreprocessor(PerceiverTokenizer(), model.inputs_shape[0])
        return PerceiverTextClassifier(backbone, model.decoder.output_channels, preprocessor, model.query,
                                       model.decoder, name=model.name)
    if isinstance(adapter, FlowPreprocessor) and isinstance(head, FlowPostprocessor):
        preprocessor = preprocessor or PerceiverOpticalFlowPreprocessor(PerceiverImageConverter(**converter))
        return PerceiverOpticalFlow(backbone, preprocessor, model.decoder, head.rescale_factor,
                                    model.use_output_indices, name=model.name)
    raise ValueError(f"No keras-hub task has the parts of model '{model.name}': input adapter "
                     f"{type(adapter).__name__}, postprocessor {type(head).__name__}, "
                     f"tie_embeddings={model.tie_embeddings}. Expected an image or text classifier, a masked LM, "
                     "an optical-flow model or a multimodal autoencoder.")
