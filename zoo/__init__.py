"""The perceiver-keras model zoo: `list_models()` and `create_model(name)` are its whole API."""

from zoo.registry import Preset, create_model, get_preset, list_models, register_preset

__all__ = ["Preset", "create_model", "get_preset", "list_models", "register_preset"]
