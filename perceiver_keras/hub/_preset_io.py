"""`PresetTask`: what every Perceiver task adds to its keras-hub base class (presets, task weights, config)."""

import json
from pathlib import Path

import keras
from keras_hub.models import Task
from keras_hub.src.utils.preset_utils import list_subclasses

from perceiver_keras.hub import _preset_files


class PresetTask(_preset_files.TaskWeightsWithoutOptimizer):
    """The preset methods and the config every Perceiver task shares; it comes before keras-hub's class in the bases.

    `save_to_preset` writes all or nothing and records the task class in metadata.json, `from_preset` checks
    a local preset folder before keras-hub reads it, `get_config` returns keras-hub `Task`'s entries and the
    head layers, and the task weights leave the optimizer out (`TaskWeightsWithoutOptimizer`).

    A task declares:
        input_adapter_cls: the input adapter class its backbone must have (e.g. `ImagePreprocessor`).
        task_description: what it is, for error messages (e.g. "an image classifier").
        head_layer_args: the constructor arguments that are head layers, serialized by `get_config` from
            the attributes of the same names; the task's `get_config` adds its other arguments.
    """

    input_adapter_cls = None
    task_description = None
    head_layer_args = ()

    def save_to_preset(self, preset_dir, max_shard_size=10, metadata=None):
        """Writes the preset (task, backbone, preprocessor with its tokenizer or image converter, metadata) to
        `preset_dir`, all or nothing.

        `metadata`: JSON-able entries added to metadata.json under "perceiver_keras".
        """
        with _preset_files.writing(preset_dir) as folder:
            super().save_to_preset(folder, max_shard_size=max_shard_size)
            name_keras_hub_tasks(folder, type(self.backbone))
            _preset_files.add_metadata(folder, type(self).__name__, metadata)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        _preset_files.check_preset(preset, cls, load_weights, cls.input_adapter_cls, cls.task_description)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def get_config(self):
        # `Task`'s own, not the base class's: `ImageClassifier.get_config` adds pooling and dropout, which a
        # Perceiver head does not take.
        config = Task.get_config(self)
        config.update({arg: keras.saving.serialize_keras_object(getattr(self, arg)) for arg in self.head_layer_args})
        return config


def name_keras_hub_tasks(preset_dir, backbone_cls):
    """Sets metadata.json's "tasks" to the keras-hub classes the tasks of `backbone_cls` extend.

    keras-hub names each task by its first base class (`__base__`), which for a Perceiver task is the
    mixin before the keras-hub class; the preset lists "ImageClassifier", "MaskedLM", "Task", ... instead.
    """
    path = Path(preset_dir) / _preset_files.METADATA_FILE
    metadata = json.loads(path.read_text())
    tasks = [task for task in list_subclasses(Task) if task.backbone_cls is backbone_cls]
    metadata["tasks"] = sorted({next(base for base in task.__bases__ if issubclass(base, Task)).__name__
                                for task in tasks})
    path.write_text(json.dumps(metadata, indent=4))
