"""Registers `perceiver_keras.hub`'s classes with keras-hub as soon as keras_hub is imported.

keras-hub's `from_preset` finds a preset's classes by their registered names, so they must be
registered before it reads one; importing keras_hub costs about a second on the TensorFlow backend
and three on JAX (it imports TensorFlow). `import perceiver_keras` therefore registers them at once if
keras_hub is already imported, and otherwise right after keras_hub's own import finishes (a one-shot
import hook), so that `import perceiver_keras, keras_hub` then `keras_hub.models.Backbone.from_preset`
works and nobody who never imports keras_hub pays for it.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

_HUB = "keras_hub"


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


def install():
    """Registers now if keras_hub is imported, else when it is."""
    if _HUB in sys.modules:
        _register()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
