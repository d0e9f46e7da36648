"""Perceiver IO building blocks as Keras 3 layers (backend-agnostic: TensorFlow, JAX, PyTorch).

Importing it registers everything a zoo model's `.keras` file references (layers, the learning-rate
schedule, losses, metrics), so `keras.saving.load_model(path)` works with Keras' defaults.

Channel names mean one thing in every layer:
- `input_channels`: the width of an input the layer reads (`FlowPreprocessor`, `VideoPreprocessor`).
- `output_channels`: the width of what the layer produces. Every preprocessor, position encoding and
  query reports it as a property (the D of the (B, M, D) it returns); a layer whose output width is
  set directly takes it as an argument (`TextPreprocessor`'s embedding width, the projection of
  `PerceiverAttention` and `PerceiverDecoder`, `MultimodalPostprocessor`'s heads, one per modality).
- `<part>_channels`: the width of one named part inside a layer: `qk_channels`, `v_channels`,
  `conv_channels`, `patch_projection_channels`, `position_channels`, `projection_channels`,
  `encoding_channels` (a position encoding before its optional projection).
Configs saved under former names (`num_channels`, `out_channels`) still load.
"""

from perceiver_keras.attention import PerceiverAttention
from perceiver_keras.blocks import CrossAttentionBlock, SelfAttentionBlock
from perceiver_keras.causal import CausalCrossAttention, CausalSelfAttention
from perceiver_keras.decoder import PerceiverDecoder
from perceiver_keras.encoder import PerceiverEncoder
from perceiver_keras.flow import FlowPostprocessor, FlowPreprocessor
from perceiver_keras.image import ClassificationPostprocessor, ImagePreprocessor
from perceiver_keras.losses import EndPointErrorLoss
from perceiver_keras.media import AudioPreprocessor, FourierQuery, VideoPreprocessor
from perceiver_keras.metrics import (
    BinaryF1,
    BitsPerByte,
    EndPointError,
    MatthewsCorrelation,
    PeakSignalToNoiseRatio,
    PearsonCorrelation,
    SpearmanCorrelation,
)
from perceiver_keras.mlp import PerceiverMLP
from perceiver_keras.model import PerceiverIO
from perceiver_keras.multimodal import (
    MultimodalPostprocessor,
    MultimodalPreprocessor,
    MultimodalQuery,
    OneHotPreprocessor,
)
from perceiver_keras.multimodal_model import MultimodalPerceiverIO
from perceiver_keras.perceiver_ar import CausalEmbedding, PerceiverAR
from perceiver_keras.prenorm_mlp import PrenormMLP
from perceiver_keras.normalization import LayerNorm, RMSNorm, gelu_tanh, integer_friendly
from perceiver_keras.saving import load_model
from perceiver_keras.schedules import FlatCosineSchedule, InverseSquareRootSchedule
from perceiver_keras.text import TextPreprocessor
from perceiver_keras.position_encoding import (
    FourierPositionEncoding,
    InputQuery,
    SinusoidalInitializer,
    TrainablePositionEncoding,
    fourier_features,
    linear_positions,
)

__all__ = [
    "AudioPreprocessor",
    "BinaryF1",
    "BitsPerByte",
    "CausalCrossAttention",
    "CausalEmbedding",
    "CausalSelfAttention",
    "ClassificationPostprocessor",
    "ImagePreprocessor",
    "CrossAttentionBlock",
    "EndPointError",
    "EndPointErrorLoss",
    "FlatCosineSchedule",
    "InverseSquareRootSchedule",
    "FlowPostprocessor",
    "FlowPreprocessor",
    "FourierPositionEncoding",
    "FourierQuery",
    "InputQuery",
    "LayerNorm",
    "RMSNorm",
    "MatthewsCorrelation",
    "MultimodalPerceiverIO",
    "MultimodalPostprocessor",
    "MultimodalPreprocessor",
    "MultimodalQuery",
    "OneHotPreprocessor",
    "PeakSignalToNoiseRatio",
    "PearsonCorrelation",
    "PerceiverAR",
    "PerceiverAttention",
    "PerceiverDecoder",
    "PerceiverEncoder",
    "PerceiverIO",
    "PerceiverMLP",
    "PrenormMLP",
    "SelfAttentionBlock",
    "SinusoidalInitializer",
    "SpearmanCorrelation",
    "TextPreprocessor",
    "TrainablePositionEncoding",
    "VideoPreprocessor",
    "fourier_features",
    "gelu_tanh",
    "integer_friendly",
    "linear_positions",
    "load_model",
]

_BYTE_TOKENIZER_NAMES = frozenset(
    {"ByteTokenizer", "PAD_ID", "BOS_ID", "EOS_ID", "MASK_ID", "CLS_ID", "SEP_ID", "VOCAB_SIZE", "BYTE_OFFSET",
     "SPECIAL_TOKENS"}
)


_HUB_NAMES = frozenset(
    {"PerceiverBackbone", "PerceiverImageClassifier", "PerceiverMaskedLM", "PerceiverMultimodalAutoencoder",
     "PerceiverOpticalFlow", "PerceiverTextClassifier", "PerceiverTokenizer"}
)


def __getattr__(name):
    """Imports the TensorFlow-only `ByteTokenizer` (and its constants) and the keras-hub classes on first access."""
    if name in _BYTE_TOKENIZER_NAMES:
        from perceiver_keras import byte_tokenizer

        return getattr(byte_tokenizer, name)
    if name in _HUB_NAMES:
        from perceiver_keras import hub

        return getattr(hub, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# keras-hub finds presets' classes by registered name: register perceiver_keras.hub once keras_hub is imported.
from perceiver_keras import _hub_registration  # noqa: E402

_hub_registration.install()
