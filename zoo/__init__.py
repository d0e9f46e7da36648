"""The perceiver-keras model zoo: `list_models()` and `create_model(name)` are its whole API.

The names are imported on first use, so that `python -m zoo` can start TensorFlow quietly
(`export.console`) before anything else imports it.
"""

import importlib

__all__ = ["Preset", "create_model", "get_preset", "list_models", "register_preset"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("zoo.registry"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
