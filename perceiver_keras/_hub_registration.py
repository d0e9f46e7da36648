"""Registers `perceiver_keras.hub`'s classes with keras-hub as soon as keras_hub is imported.

keras-hub's `from_preset` finds a preset's classes by their registered names, so they must be
registered before it reads one; importing keras_hub costs about a second on the TensorFlow backend
and three on JAX (it imports TensorFlow). `import perceiver_keras` therefore registers them at once if
keras_hub is already imported, and otherwise right after keras_hub's own import finishes (a one-shot
import hook), so that `import perceiver_keras, keras_hub` then `keras_hub.models.Backbone.from_preset`
works and nobody who never imports keras_hub pays for it.

A model saved from a keras-hub task (`PerceiverImageClassifier.save("task.keras")`) names those
classes too, and `keras.saving.load_model` looks them up by registered name without importing
keras_hub. So `install` also registers a stand-in under each of their names: its `from_config`
imports `perceiver_keras.hub` (which replaces the stand-ins with the real classes) and hands the
config to the real class. `import perceiver_keras` then `keras.saving.load_model("task.keras")` works.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

_HUB = "keras_hub"
_PACKAGE = "perceiver_keras"
HUB_CLASSES = (
    "ByteTokenizer", "PerceiverBackbone", "PerceiverImageClassifier", "PerceiverImageClassifierPreprocessor",
    "PerceiverImageConverter", "PerceiverMaskedLM", "PerceiverMaskedLMPreprocessor", "PerceiverMultimodalAutoencoder",
    "PerceiverMultimodalAutoencoderPreprocessor", "PerceiverOpticalFlow", "PerceiverOpticalFlowPreprocessor",
    "PerceiverTextClassifier", "PerceiverTextClassifierPreprocessor", "PerceiverTokenizer",
)
"""The classes `perceiver_keras.hub` registers as "perceiver_keras>NAME" (pinned by tests/test_hub_presets.py)."""


def _register():
    try:
        importlib.import_module("perceiver_keras.hub")
    except Exception as error:  # noqa: BLE001 - keras_hub itself imported fine: do not break it
        warnings.warn(f"perceiver_keras could not register its keras-hub classes: {error!r}", stacklevel=3)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds keras_hub with the other finders and registers perceiver_keras.hub once it has executed."""

    def find_spec(self, name, path=None, target=None):
        if name != _HUB:
            return None
        sys.meta_path.remove(self)  # one shot, and the search below must not find this finder again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            execute = spec.loader.exec_module

            def execute_then_register(module):
                execute(module)
                _register()

            spec.loader.exec_module = execute_then_register
        return spec


def _stand_in(name: str) -> type:
    """A registrable class that, when Keras deserialises `name`, imports the real one and builds it."""

    def from_config(cls, config):
        importlib.import_module("perceiver_keras.hub")  # imports keras_hub; the real classes replace the stand-ins
        from keras.saving import get_custom_objects

        real = get_custom_objects().get(f"{_PACKAGE}>{name}")  # the global registry, not a loader's scope
        if real is None or real is cls:
            raise TypeError(f"perceiver_keras.hub did not register {name}, so a saved {name} cannot be loaded.")
        return real.from_config(config)

    return type(name, (), {
        "__doc__": f"Stands in for perceiver_keras.hub.{name} until keras_hub is imported.",
        "__module__": __name__,
        "get_config": lambda self: {},
        "from_config": classmethod(from_config),
    })


def _register_stand_ins() -> None:
    from keras.saving import get_custom_objects, register_keras_serializable

    registered = get_custom_objects()
    for name in HUB_CLASSES:
        if f"{_PACKAGE}>{name}" not in registered:
            register_keras_serializable(package=_PACKAGE, name=name)(_stand_in(name))


def install():
    """Registers now if keras_hub is imported, else when it is (and stand-ins for loading saved hub models)."""
    if _HUB in sys.modules:
        _register()
        return
    _register_stand_ins()
    if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
