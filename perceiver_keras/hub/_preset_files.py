"""Preset folders on disk: written all or nothing, checked before keras-hub reads them, clear errors.

keras-hub writes a preset file by file into the folder it is given and reports a folder that does not
fit with messages about its own internals; these helpers give the Perceiver classes' `save_to_preset`
and `from_preset` the project's habits: write to a temporary folder beside the target and rename it,
and name the file, the expected and the received value when a preset does not fit.
"""

import contextlib
import contextvars
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import h5py
import keras
import numpy as np

CONFIG_FILE, TASK_FILE, METADATA_FILE = "config.json", "task.json", "metadata.json"
WEIGHTS_FILE, SHARDED_WEIGHTS_FILE = "model.weights.h5", "model.weights.json"
BACKBONE_NAME = "perceiver_keras>PerceiverBackbone"

_WRITING = contextvars.ContextVar("perceiver_preset_writing", default=None)


def as_layer(spec, dtype=None):
    """A layer given as itself or as its serialized config; a config gets `dtype` (a policy) if given.

    `from_preset(..., dtype=...)` reaches the backbone and task configs only: the sub-layers' own configs
    name the policy they were saved with, so it is set there (a built layer keeps its own).
    """
    if not isinstance(spec, dict):
        return spec
    if dtype is not None:
        policy = keras.dtype_policies.serialize(keras.dtype_policies.get(dtype))
        spec = dict(spec, config={**spec["config"], "dtype": policy})
    return keras.saving.deserialize_keras_object(spec)


@contextlib.contextmanager
def writing(preset_dir):
    """Yields a temporary folder beside `preset_dir` that replaces it once the block succeeds.

    Nothing is left half-written: on an error the temporary folder is removed and `preset_dir` is as it
    was. An existing `preset_dir` is replaced only if it is a preset folder (it holds config.json) or
    empty. Inside another `writing` block (a task saving its backbone) it yields `preset_dir` itself.
    """
    if _WRITING.get() is not None:
        yield preset_dir
        return
    target = Path(os.fspath(preset_dir))
    if "://" in str(preset_dir):
        raise ValueError(f"save_to_preset writes a local folder; upload it with keras_hub.upload_preset. "
                         f"Received: preset_dir={str(preset_dir)!r}")
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a preset folder.")
    if target.is_dir() and any(target.iterdir()) and not (target / CONFIG_FILE).is_file():
        raise FileExistsError(f"{target} exists and is not a preset folder (it holds files but no {CONFIG_FILE}): "
                              "choose a new folder, or empty it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    token = _WRITING.set(folder)
    try:
        yield str(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        _WRITING.reset(token)
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)  # mkdtemp makes it 0700 whatever the umask
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(folder, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(folder, target)


class TaskWeightsWithoutOptimizer:
    """`save_task_weights` / `load_task_weights` for the Perceiver tasks: the head's weights, no optimizer state.

    keras-hub's own methods leave out only the backbone, so a compiled and trained task wrote its optimizer
    (AdamW's two moments of every weight, the backbone's included: twice the model's size) into
    task.weights.h5, and `from_preset` then warned that the new task's default optimizer has other
    variables. A preset holds a model, not a training run: the optimizer is left out of both.
    """

    def save_task_weights(self, filepath):
        _check_weights_suffix(filepath)
        if not self.has_task_weights():
            raise ValueError(f"Task {self.name} has no weights outside its backbone: there is nothing to save.")
        keras.saving.save_weights(self, filepath=filepath, objects_to_skip=_outside_task_weights(self))

    def load_task_weights(self, filepath):
        _check_weights_suffix(filepath)
        keras.saving.load_weights(self, filepath, objects_to_skip=_outside_task_weights(self))


def _check_weights_suffix(filepath):
    if not str(filepath).endswith(".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")


def _outside_task_weights(task):
    """The backbone's layers and the optimizer: what task.weights.h5 does not hold."""
    optimizer = getattr(task, "optimizer", None)
    return list(task.backbone._flatten_layers()) + ([optimizer] if optimizer is not None else [])


def add_metadata(preset_dir, task_class, entries=None):
    """Adds the task class and `entries` to metadata.json under "perceiver_keras" (tuples become lists)."""
    path = Path(preset_dir) / METADATA_FILE
    metadata = json.loads(path.read_text()) if path.is_file() else {}
    entries = {"task_class": task_class, **(entries or {})}
    metadata["perceiver_keras"] = json.loads(json.dumps(entries, default=_json_default))
    path.write_text(json.dumps(metadata, indent=4))


def _json_default(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def _is_local(preset):
    return isinstance(preset, (str, os.PathLike)) and "://" not in str(preset) and os.path.exists(preset)


def check_preset(preset, cls, load_weights=True, input_adapter=None, task=None):
    """Raises a clear error unless the local preset folder `preset` holds a Perceiver preset `cls` can load.

    Args:
        preset: the folder (handles such as "hf://..." are left to keras-hub).
        cls: the class `from_preset` was called on, for the messages.
        load_weights: whether the weights file must be there.
        input_adapter: the input adapter class the task needs (e.g. `ImagePreprocessor`), or None.
        task: the task's name for the messages, e.g. "an image classifier".
    """
    if not _is_local(preset):
        if isinstance(preset, (str, os.PathLike)) and "://" not in str(preset) and "/" in str(preset):
            raise FileNotFoundError(f"Preset folder not found: {preset}")
        return
    folder = Path(preset)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; a preset is a folder written by save_to_preset.")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: expected a keras-hub preset folder written by "
                                "save_to_preset (config.json, model.weights.h5, metadata.json).")
    config = read_json(config_path)
    if "model_type" in config and "registered_name" not in config:
        raise ValueError(f"{config_path} is a transformers config (model_type={config['model_type']!r}), not a keras-hub "
                         f"preset: convert the folder first, `python -m zoo convert {folder} --out PRESET_DIR`.")
    received = config.get("registered_name")
    if received != BACKBONE_NAME:
        raise ValueError(f"{config_path} describes another architecture. Expected registered_name="
                         f"{BACKBONE_NAME!r} (a Perceiver preset for {cls.__name__}). Received: registered_name={received!r}")
    if load_weights and not (folder / WEIGHTS_FILE).is_file() and not (folder / SHARDED_WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{folder / WEIGHTS_FILE} is missing: the preset has a config but no weights "
                                "(pass load_weights=False for a freshly initialised model).")
    if input_adapter is not None:
        check_input_adapter(config_path, config, input_adapter, cls, task)


def check_input_adapter(config_path, config, input_adapter, cls, task):
    """Raises a ValueError unless the backbone config's input adapter is an `input_adapter`."""
    adapter = config.get("config", {}).get("input_adapter") or {}
    received = adapter.get("class_name")
    if received != input_adapter.__name__:
        raise ValueError(
            f"{config_path} holds a Perceiver backbone whose input adapter is {received}; {cls.__name__} is "
            f"{task} and needs one with the input adapter {input_adapter.__name__}. "
            f"Expected: input_adapter={input_adapter.__name__}. Received: input_adapter={received}")


def load_weights_checked(model, filepath, load, *args, **kwargs):
    """`load(filepath)`; when it fails, a ValueError naming the file and the first weight that does not fit."""
    path = Path(os.fspath(filepath))
    if not path.is_file():
        raise FileNotFoundError(f"Weights file not found: {path}")
    try:
        load(filepath, *args, **kwargs)
    except Exception as error:  # Keras reports a mismatch per layer, without the file or the shapes.
        raise ValueError(f"{path} does not fit {type(model).__name__} '{model.name}': "
                         f"{_first_mismatch(model, path) or error}") from error


def _first_mismatch(model, path):
    """The first weight whose shape differs between `model` and the weights file, in words (or None)."""
    try:
        received = _h5_shapes(path)
    except OSError as error:
        return f"it is not a readable Keras weights file ({error})"
    with tempfile.TemporaryDirectory() as folder:
        expected_path = Path(folder) / "expected.weights.h5"
        model.save_weights(expected_path)
        expected = _h5_shapes(expected_path)
    for name, shape in expected.items():
        if name not in received:
            return f"it has no weight '{name}' (expected shape {shape}, from the config)"
        if received[name] != shape:
            return f"weight '{name}' has shape {received[name]}; the config ({CONFIG_FILE}) expects {shape}"
    extra = sorted(set(received) - set(expected))
    if extra:
        return f"it holds weights the config does not have, e.g. '{extra[0]}' of shape {received[extra[0]]}"
    return None


def _h5_shapes(path):
    shapes = {}
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: shapes.__setitem__(name, tuple(item.shape))
                        if isinstance(item, h5py.Dataset) else None)
    return shapes
