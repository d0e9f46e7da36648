"""Loading `.keras` files with errors that name the file; former class and argument names still load.

Importing `perceiver_keras` registers everything a zoo model's `.keras` file references: the layers,
the learning-rate schedule (`perceiver_keras.schedules`), the losses and the metrics
(`perceiver_keras.losses`, `perceiver_keras.metrics`). `keras.saving.load_model(path)` then works with
Keras' defaults (`compile=True`: optimizer state, loss and metrics restored); `load_model` here is
the same call, with a clear error for a file that is missing, not a `.keras` file, or damaged.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras


def register_former_names(package: str, *classes: type) -> None:
    """Lets files saved when `classes` were registered under `package` load: "package>ClassName".

    The classes keep saving under their own registered names; the former ones are read only.
    """
    for cls in classes:
        keras.saving.get_custom_objects()[f"{package}>{cls.__name__}"] = cls


def with_current_argument_names(config: dict, **former_names: str) -> dict:
    """A copy of a layer's `config` whose arguments saved under a former name take their current one.

    `former_names` maps former -> current name (`num_channels="input_channels"`); a layer's
    `from_config` calls it, so `.keras` files and presets saved before a rename still load.
    """
    config = dict(config)
    for former, current in former_names.items():
        if former in config:
            if current in config:
                raise ValueError(f"A config holds both `{former}` and its current name `{current}`. "
                                 f"Received: {former}={config[former]!r}, {current}={config[current]!r}")
            config[current] = config.pop(former)
    return config


def load_model(filepath: str | os.PathLike, **kwargs) -> keras.Model:
    """`keras.saving.load_model(filepath, **kwargs)` for a `.keras` file, with errors that name the file.

    Keras reports a truncated archive as "File not found" and a damaged one as a bare zip or JSON
    error; here each says which file and what is wrong with it.

    Args:
        filepath: a `.keras` file written by `model.save`.
        **kwargs: as `keras.saving.load_model` (`compile`, `custom_objects`, `safe_mode`).

    Raises:
        FileNotFoundError: `filepath` does not exist.
        ValueError: it is a directory, not a `.keras` file, or a truncated or damaged archive.

    Example:
    >>> model = load_model("runs/digits/model.keras")   # compiled, as keras.saving.load_model
    """
    path = Path(filepath)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}: expected a .keras file written by model.save.")
    if path.is_dir():
        inside = path / "model.keras"
        hint = f"; it holds {inside}: pass that file" if inside.is_file() else ""
        raise ValueError(f"Expected a .keras file. Received the directory {path}{hint}.")
    if path.suffix != ".keras":
        raise ValueError(f"Expected a .keras file (the zip archive model.save writes). Received: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .keras archive ({path.stat().st_size} bytes): "
                         "it is truncated or damaged. Save the model again.")
    try:
        return keras.saving.load_model(path, **kwargs)
    except (zipfile.BadZipFile, json.JSONDecodeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is a damaged .keras archive ({type(error).__name__}: {error}). "
                         "Save the model again.") from error
