"""Optical flow with Perceiver IO: presets, model builder."""

from zoo.optical_flow import presets  # noqa: F401  (registers the presets)
from zoo.optical_flow.model import build_optical_flow_model

__all__ = ["build_optical_flow_model"]
