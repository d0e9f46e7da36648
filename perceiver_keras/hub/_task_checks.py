"""Checks the Perceiver tasks and preprocessors share: the backbone's modality, `num_classes`."""

import keras

from perceiver_keras.hub import _preset_files


def check_loader_modality(preprocessor_cls, loader):
    """Refuses a preset whose backbone is of another modality, naming its config.json.

    keras-hub builds a task's preprocessor from the tokenizer or converter files when the preset's
    preprocessor.json belongs to another task (e.g. `TextClassifier.from_preset` on a masked LM preset);
    a preset of another modality would otherwise fail on a missing tokenizer.json.
    """
    config_path = f"{loader.preset}/{_preset_files.CONFIG_FILE}"
    _preset_files.check_input_adapter(config_path, loader.config, preprocessor_cls.input_adapter_cls,
                                      preprocessor_cls, preprocessor_cls.task_description)


def check_backbone(task_cls, backbone):
    """Raises a ValueError unless `backbone`'s input adapter is the one `task_cls` needs."""
    adapter = getattr(backbone, "input_adapter", None)
    if not isinstance(adapter, task_cls.input_adapter_cls):
        raise ValueError(
            f"{task_cls.__name__} is {task_cls.task_description} and needs a PerceiverBackbone whose input adapter is "
            f"{task_cls.input_adapter_cls.__name__}. Received: a {type(backbone).__name__} with input adapter "
            f"{type(adapter).__name__}")


def num_classes(task_cls, value):
    """`value` as a positive int, or a ValueError in the user's terms."""
    if value is None:
        raise ValueError(f"{task_cls.__name__} needs `num_classes` (the preset holds no {task_cls.__name__} head "
                         "to restore: pass num_classes=K for a new one). Received: num_classes=None")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={value!r}")
    return value


def no_classes(task_cls, kwargs):
    """Refuses `num_classes` for a task without classes (keras-hub forwards it to any task's constructor)."""
    if "num_classes" in kwargs:
        raise ValueError(f"{task_cls.__name__} has no classes to set: `num_classes` fits the classifiers "
                         f"(PerceiverImageClassifier, PerceiverTextClassifier). Received: num_classes={kwargs['num_classes']!r}")


def layer(spec, default, dtype, **overrides):
    """A head layer from a layer, its serialized config (with `overrides` and the `dtype` policy) or None.

    None gives `default()`; a config takes the backbone's dtype policy, so that `from_preset(..., dtype=...)`
    reaches the head as it reaches the backbone.
    """
    if spec is None:
        return default()
    if isinstance(spec, dict):
        policy = keras.dtype_policies.serialize(keras.dtype_policies.get(dtype))
        spec = dict(spec, config={**spec["config"], **overrides, "dtype": policy})
        return keras.saving.deserialize_keras_object(spec)
    for name, value in overrides.items():
        if getattr(spec, name) != value:
            raise ValueError(f"The head layer '{spec.name}' has {name}={getattr(spec, name)!r}. Expected: {name}={value!r}")
    return spec
