"""Perceiver IO building blocks as Keras 3 layers (backend-agnostic: TensorFlow, JAX, PyTorch)."""

from perceiver_keras.attention import PerceiverAttention
from perceiver_keras.blocks import CrossAttentionBlock, SelfAttentionBlock
from perceiver_keras.decoder import PerceiverDecoder
from perceiver_keras.encoder import PerceiverEncoder
from perceiver_keras.image import ClassificationPostprocessor, ImagePreprocessor
from perceiver_keras.mlp import PerceiverMLP
from perceiver_keras.model import PerceiverIO
from perceiver_keras.position_encoding import (
    FourierPositionEncoding,
    InputQuery,
    TrainablePositionEncoding,
    fourier_features,
    linear_positions,
)

__all__ = [
    "ClassificationPostprocessor",
    "ImagePreprocessor",
    "CrossAttentionBlock",
    "FourierPositionEncoding",
    "InputQuery",
    "PerceiverAttention",
    "PerceiverDecoder",
    "PerceiverEncoder",
    "PerceiverIO",
    "PerceiverMLP",
    "SelfAttentionBlock",
    "TrainablePositionEncoding",
    "fourier_features",
    "linear_positions",
]
