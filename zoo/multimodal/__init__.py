"""Multimodal (video, audio, label) autoencoding with Perceiver IO: presets, model builder, chunked decoding."""

from zoo.multimodal import presets  # noqa: F401  (registers the presets)
from zoo.multimodal.inference import reconstruct
from zoo.multimodal.model import build_multimodal_autoencoder

__all__ = ["build_multimodal_autoencoder", "reconstruct"]
