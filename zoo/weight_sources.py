"""Where `--init-from` weights come from: run directories, `.keras` files, transformers folders, keras-hub presets.

`read_source(path)` returns every weight of the source by its Keras path (e.g. `encoder/latents`), as
numpy arrays, whatever the kind of source: a transformers folder is converted first
(`zoo.convert.from_transformers`), a keras-hub preset loaded with its own task class. Pickle
checkpoints are refused: reading one can run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import keras
import numpy as np

from export.run_directory import file_sha256, read_finished_run

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""Checkpoint files that unpickle when read, which can run code: refused as sources."""

_EXPECTED = ("Expected a run directory, a .keras file, a transformers save_pretrained folder (config.json + "
             "model.safetensors) or a keras-hub preset directory (config.json + model.weights.h5)")


@dataclasses.dataclass(frozen=True)
class SourceWeights:
    """The weights of a source, by path, as numpy arrays.

    Attributes:
        source: the source as given (absolute path).
        kind: "run directory", "keras file", "transformers folder" or "keras-hub preset".
        file: the file the weights were read from.
        sha256: that file's SHA-256 (a preset folder's: over its files), so that a resumed run can tell
            whether the source changed.
        weights: weight path -> array.
    """

    source: str
    kind: str
    file: str
    sha256: str
    weights: dict[str, np.ndarray]


def read_source(source: str | os.PathLike) -> SourceWeights:
    """Reads the weights of a run directory, `.keras` file, transformers folder or keras-hub preset.

    Raises:
        FileNotFoundError: the source does not exist.
        ValueError: a pickle checkpoint (.bin, .pt, ...), a file or folder of another kind, an
            unfinished run, or a file that cannot be read; the message names the file.
    """
    path = Path(source).expanduser().absolute()
    if not path.exists():
        raise FileNotFoundError(f"--init-from source not found: {path}. {_EXPECTED}.")
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise _pickle_refused(path)
        if path.suffix != ".keras":
            raise ValueError(f"{path} is not a model file that --init-from reads. {_EXPECTED}. "
                             f"Received: a {path.suffix or 'suffix-less'} file")
        return _from_model(path, "keras file", path, _load_keras_file(path))
    if (path / "run.json").is_file():
        read_finished_run(path)  # an unfinished run or a replaced model.keras is refused, naming the file
        return _from_model(path, "run directory", path / "model.keras", _load_keras_file(path / "model.keras"))
    if (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file():
        from zoo.convert import from_transformers

        single = path / "model.safetensors"  # else shards: the folder is hashed file by file
        return _from_model(path, "transformers folder", single if single.is_file() else path, from_transformers(path))
    pickles = sorted(p for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise _pickle_refused(pickles[0])
    if (path / "config.json").is_file() and any((path / f"model.weights.{ext}").is_file() for ext in ("h5", "json")):
        return _from_model(path, "keras-hub preset", path, _load_preset(path))
    held = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
    raise ValueError(f"{path} is not a source --init-from reads. {_EXPECTED}. Received: a folder holding {held}")


def _pickle_refused(path: Path) -> ValueError:
    return ValueError(
        f"{path} is a pickle checkpoint, refused: reading it can run arbitrary code. Save it as safetensors "
        "(transformers: `model.save_pretrained(folder, safe_serialization=True)`) or as a .keras file."
    )


def _load_keras_file(path: Path) -> keras.Model:
    import perceiver_keras  # registers the layers a .keras file names

    try:
        return perceiver_keras.load_model(path, compile=False)
    except Exception as error:  # zip, h5 and deserialization errors alike: the file is not a model we read
        raise ValueError(f"Could not load {path} as a Keras model: {error}") from error


def _load_preset(path: Path) -> keras.Model:
    """A keras-hub preset's model: the task its task.json names (backbone and head), or else its backbone."""
    import keras_hub

    import perceiver_keras  # noqa: F401  (registers the Perceiver backbone and task classes)

    task_file = path / "task.json"
    try:
        if not task_file.is_file():
            return keras_hub.models.Backbone.from_preset(str(path))
        name = json.loads(task_file.read_text()).get("registered_name")
        task_class = keras.saving.get_registered_object(name) if name else None
        if task_class is None or not hasattr(task_class, "from_preset"):
            raise ValueError(f"{task_file} names a task class that is not registered: {name!r}")
        return task_class.from_preset(str(path))
    except Exception as error:  # keras-hub's own errors name its internals; name the preset folder too
        raise ValueError(f"Could not load the keras-hub preset {path}: {error}") from error


def _from_model(source: Path, kind: str, file: Path, model: keras.Model) -> SourceWeights:
    """The weights of `model`, read from `file` (a preset: its folder, hashed file by file)."""
    weights = {variable.path: keras.ops.convert_to_numpy(variable) for variable in model.weights}
    if file.is_dir():
        digest = hashlib.sha256("".join(f"{p.name} {file_sha256(p)}\n" for p in sorted(file.iterdir()) if p.is_file())
                                .encode()).hexdigest()
    else:
        digest = file_sha256(file)
    return SourceWeights(str(source), kind, str(file), digest, weights)
