"""Reading a training run directory (run.json + model.keras) and checking that the two belong together.

A run directory written by training is finished only when run.json says `"status": "finished"` (one
written by hand, without a status, is taken as it is); its `"model_sha256"`
is the SHA-256 of the model.keras that run wrote, so a model.keras from another run (or an
interrupted retraining) is recognised instead of being evaluated or exported under this run's name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


class RunDirectoryError(ValueError):
    """A run directory is unfinished, inconsistent or unreadable; the message names the file."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_run_json(path: str | os.PathLike) -> dict[str, Any]:
    """run.json as a dict; a missing, truncated or non-object file is an error naming it."""
    path = Path(path)
    try:
        run = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{path} is missing: {path.parent} is not a run directory.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunDirectoryError(f"{path} is not valid JSON ({error}); the run's record is damaged.") from None
    if not isinstance(run, dict):
        raise RunDirectoryError(f"{path} must hold a JSON object. Received: {type(run).__name__}")
    return run


def read_finished_run(directory: str | os.PathLike) -> dict[str, Any]:
    """run.json of a finished run whose model.keras is the one that run wrote.

    Raises:
        NotADirectoryError: `directory` is a file.
        FileNotFoundError: run.json or model.keras is missing.
        IsADirectoryError: model.keras is a folder.
        RunDirectoryError: run.json is damaged, the run is not finished (still training, killed, or
            being retrained with --overwrite), or model.keras is not the file the run wrote.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file; expected a run directory (model.keras + run.json).")
    run = read_run_json(directory / "run.json")
    status = run.get("status")
    if status is not None and status != "finished":  # a run.json written by hand has no status
        raise RunDirectoryError(
            f"{directory} holds an unfinished run ({directory / 'run.json'} says status={status!r}): it is still "
            "training or was interrupted. Resume it with the same `python -m zoo train` command, then try again."
        )
    model_file = directory / "model.keras"
    if model_file.is_dir():
        raise IsADirectoryError(f"{model_file} is a folder; expected the .keras file the finished run wrote.")
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file} is missing: the finished run's model was moved or deleted.")
    expected = run.get("model_sha256")
    if expected is not None and file_sha256(model_file) != expected:
        raise RunDirectoryError(
            f"{model_file} is not the model this run wrote (its SHA-256 differs from run.json's model_sha256): "
            f"it was replaced after training of task {run.get('task')!r}, preset {run.get('preset')!r}. "
            "Retrain the run or export the .keras file directly."
        )
    return run


def check_model_of_run(model: Any, run: dict[str, Any], model_file: str | os.PathLike) -> None:
    """Raises unless `model` (loaded from `model_file`) is a model of run.json's task and preset.

    A zoo model is named after its preset (or run.json's `--set name=...`); a run.json written by hand
    (without a status or a preset) is not checked. This catches a model.keras copied in from another
    run whose SHA-256 was written into run.json as well, before its inputs fail in an unrelated way.

    Raises:
        RunDirectoryError: the model's name is not the one the run's preset gives its model.
    """
    preset = run.get("preset")
    if not preset or run.get("status") is None:
        return
    expected = run.get("model_overrides", {}).get("name", preset)
    if model.name != expected:
        raise RunDirectoryError(
            f"{model_file} holds the model '{model.name}', but run.json records a run of task {run.get('task')!r}, "
            f"preset {preset!r}, whose model is named '{expected}': model.keras and run.json are not of the same run "
            "(the model was copied in from another run or task, or run.json was edited). Retrain the run, or export "
            "that model's own run or .keras file."
        )
