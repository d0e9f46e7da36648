"""Fine-tuning: start a zoo model from another model's weights (`python -m zoo train ... --init-from SOURCE`).

A source is a run directory (its model.keras), a `.keras` file, a transformers `save_pretrained` folder
(config.json + model.safetensors) or a keras-hub preset directory (`zoo.weight_sources`).
Every weight of the new model whose path (e.g. `encoder/latents`) and shape equal a source weight's is
loaded; the others keep their initial values and are listed with the reason. The encoder must match
whole: a source with another latent shape or depth is refused, naming the first mismatching weight.

Example:
    >>> model = zoo.create_model("source_type", num_classes=3)
    >>> report = load_matching_weights(model, "runs/pydoc_mlm")   # the MLM's embeddings and encoder
    >>> print(report.summary())
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from zoo.weight_sources import SourceWeights, read_source

__all__ = ["IncompatibleSourceError", "SourceWeights", "WeightLoadReport", "freeze_backbone", "load_matching_weights",
           "read_source"]

HEAD_PARTS = ("query", "decoder", "postprocessor")
"""The model parts that make a task's output (its head): `--freeze-backbone` leaves them trainable."""


class IncompatibleSourceError(ValueError):
    """A source whose weights do not fit the model: another encoder, or no weight in common."""


@dataclasses.dataclass(frozen=True)
class NotLoaded:
    """A model weight left at its initial value: `reason` is "missing in source" or "shape mismatch"."""

    path: str
    reason: str
    model_shape: tuple[int, ...]
    source_shape: tuple[int, ...] | None = None

    def describe(self) -> str:
        if self.source_shape is None:
            return f"{self.path} {self.model_shape}: {self.reason}"
        return f"{self.path}: {self.reason}: model {self.model_shape}, source {self.source_shape}"


@dataclasses.dataclass(frozen=True)
class WeightLoadReport:
    """What `load_matching_weights` did: loaded weights, those it did not load and why, unused source weights."""

    source: SourceWeights
    loaded: tuple[str, ...]
    loaded_parameters: int
    total_parameters: int
    not_loaded: tuple[NotLoaded, ...]
    unused: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The report as run.json records it."""
        return {
            "source": self.source.source, "kind": self.source.kind, "file": self.source.file,
            "sha256": self.source.sha256, "loaded_weights": len(self.loaded),
            "loaded_parameters": self.loaded_parameters, "total_parameters": self.total_parameters,
            "not_loaded": [{k: v for k, v in dataclasses.asdict(item).items() if v is not None}
                           for item in self.not_loaded],
            "unused_source_weights": list(self.unused), "loaded": list(self.loaded),
        }

    def summary(self) -> str:
        """Console lines: what was loaded, what was not and why, what the source had besides."""
        lines = [f"--init-from {self.source.source} ({self.source.kind}, {self.source.file}): loaded "
                 f"{len(self.loaded)} of {len(self.loaded) + len(self.not_loaded)} weights "
                 f"({self.loaded_parameters:,} of {self.total_parameters:,} parameters)"]
        if self.not_loaded:
            lines.append("not loaded (left as initialised):")
            lines += [f"  {item.describe()}" for item in self.not_loaded]
        if self.unused:
            lines.append(f"source weights not used ({len(self.unused)}): {', '.join(self.unused)}")
        return "\n".join(lines)


def load_matching_weights(model: keras.Model, source: str | os.PathLike | SourceWeights) -> WeightLoadReport:
    """Loads every weight of `source` whose path and shape equal one of `model`'s into `model`.

    Args:
        model: a built model, e.g. fresh from `zoo.create_model`.
        source: a path that `read_source` reads, or its `SourceWeights`.

    Returns:
        The report: loaded paths, the model weights not loaded with the reason ("missing in
        source", or "shape mismatch" with both shapes), and the source weights not used.

    Raises:
        IncompatibleSourceError: no weight matches, or the encoder does not (a weight missing, of
            another shape, or one the model lacks): the error names the source file, the first
            mismatching weight and the expected and received shapes. Nothing is loaded then.
    """
    source = source if isinstance(source, SourceWeights) else read_source(source)
    loaded, not_loaded, assignments = [], [], []
    for variable in model.weights:
        shape, found = tuple(variable.shape), source.weights.get(variable.path)
        if found is None:
            not_loaded.append(NotLoaded(variable.path, "missing in source", shape))
        elif tuple(found.shape) != shape:
            not_loaded.append(NotLoaded(variable.path, "shape mismatch", shape, tuple(found.shape)))
        else:
            loaded.append(variable.path)
            assignments.append((variable, found))
    paths = {variable.path for variable in model.weights}
    if not loaded:
        first = not_loaded[0]
        raise IncompatibleSourceError(
            f"No weight of {source.file} fits model '{model.name}': none of its {len(source.weights)} weights has "
            f"the path and shape of one of the model's {len(paths)}. First: '{first.path}' expected shape "
            f"{first.model_shape}, received {first.source_shape or 'no such weight'}."
        )
    _check_encoder(model, source, {item.path: item for item in not_loaded})
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return WeightLoadReport(
        source, tuple(loaded), sum(int(np.prod(value.shape)) for _, value in assignments),
        sum(int(np.prod(variable.shape)) for variable in model.weights), tuple(not_loaded),
        tuple(sorted(set(source.weights) - paths)),
    )


def _check_encoder(model: keras.Model, source: SourceWeights, not_loaded: dict[str, NotLoaded]) -> None:
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return
    own = [variable.path for variable in encoder.weights]
    for path in own:
        if path in not_loaded:
            item = not_loaded[path]
            raise IncompatibleSourceError(
                f"The encoder of {source.file} does not match model '{model.name}'s: weight '{path}' expected shape "
                f"{item.model_shape}, received {item.source_shape or 'no such weight'}. Build the model with the "
                "source's encoder settings (--set num_latents=..., num_latent_channels=..., ...)."
            )
    prefix = os.path.commonprefix(own).rpartition("/")[0] + "/"
    extra = sorted(path for path in source.weights if path.startswith(prefix) and path not in set(own))
    if extra:
        raise IncompatibleSourceError(
            f"The encoder of {source.file} does not match model '{model.name}'s: the source has weight '{extra[0]}' "
            f"(shape {tuple(source.weights[extra[0]].shape)}), the model none of that name (a deeper or "
            "otherwise different encoder)."
        )


def freeze_backbone(model: keras.Model, loaded: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Freezes every loaded weight outside the head (`HEAD_PARTS`); returns what is frozen, as run.json records it.

    Weights the source did not provide stay trainable wherever they are (e.g. new position
    embeddings), and so does the whole head. A batch normalization layer whose weights are all frozen
    also runs in inference mode (its moving statistics stay the source's), as Keras' fine-tuning guide does.
    """
    head = {variable.path for part in HEAD_PARTS if getattr(model, part, None) is not None
            for variable in getattr(model, part).weights}
    loaded = set(loaded)
    frozen = [variable.path for variable in model.trainable_weights
              if variable.path in loaded and variable.path not in head]
    inference_mode = apply_freeze(model, frozen)
    trainable = model.trainable_weights
    if not trainable:
        raise ValueError(f"--freeze-backbone would leave model '{model.name}' nothing to train: it has no head "
                         f"({', '.join(HEAD_PARTS)}) weights.")
    sizes = {variable.path: int(np.prod(variable.shape)) for variable in model.weights}
    return {
        "rule": "every weight loaded from the source outside the head (" + ", ".join(HEAD_PARTS) + ") is frozen; "
                "the head and every weight not loaded train",
        "weights": frozen, "parameters": sum(sizes[path] for path in frozen),
        "trainable_weights": [variable.path for variable in trainable],
        "trainable_parameters": sum(sizes[variable.path] for variable in trainable),
        "inference_mode_layers": inference_mode,
    }


def apply_freeze(model: keras.Model, frozen: list[str]) -> list[str]:
    """Marks the weights at these paths untrainable; returns the batch normalization layers put in inference mode."""
    frozen = set(frozen)
    for variable in model.weights:
        if variable.path in frozen:
            variable.trainable = False
    inference_mode = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.built and layer.trainable and all(
                variable.path in frozen for variable in (layer.gamma, layer.beta) if variable is not None):
            layer.trainable = False  # a frozen batch normalization layer normalises with its moving statistics
            inference_mode.append(layer.path)
    return inference_mode


def backup_exists(backup_dir: Path) -> bool:
    """Whether `keras.callbacks.BackupAndRestore` left weights there (a killed run resumes from those)."""
    return any((backup_dir / name).exists() for name in ("latest.weights.h5", "latest.weights.h5.bkp"))


def source_for_run(options: dict[str, Any], resumed: dict[str, Any] | None, backup_dir: Path) -> SourceWeights | None:
    """The `--init-from` weights a run must load: None without the option or when a backup holds trained weights.

    A run killed before its first backup restarts at epoch 0 and loads the source again, which must
    be the file it started from (same SHA-256).
    """
    if options.get("freeze_backbone") and not options.get("init_from"):
        raise ValueError("--freeze-backbone needs --init-from: there is no loaded backbone to freeze. "
                         "Received: freeze_backbone=True, init_from=None")
    if not options.get("init_from") or (resumed and "init_from" in resumed and backup_exists(backup_dir)):
        return None
    source = read_source(options["init_from"])
    started_from = (resumed or {}).get("init_from", {}).get("sha256")
    if started_from and started_from != source.sha256:
        raise ValueError(f"{source.file} changed since this run started from it (SHA-256 {started_from[:12]}..., now "
                         f"{source.sha256[:12]}...): pass --overwrite to fine-tune from the new file.")
    return source


def start_run(model: keras.Model, source: SourceWeights | None, options: dict[str, Any],
              resumed: dict[str, Any] | None, verbose: int | str = "auto") -> dict[str, Any] | None:
    """Loads `source` into a run's fresh model and freezes its backbone if asked; returns run.json's "init_from".

    With `source` None in a fine-tuning run resumed from its backup, only the recorded freezing is
    applied again: the backup's trained weights replace the initial ones when `fit` starts.
    """
    if not options.get("init_from"):
        return None
    if source is None:
        record = resumed["init_from"]
        apply_freeze(model, record.get("frozen", {}).get("weights", []))
        message = "resumed from the backup: the source is not loaded again over the trained weights"
    else:
        report = load_matching_weights(model, source)
        record = {**report.as_json(), "freeze_backbone": bool(options.get("freeze_backbone"))}
        if options.get("freeze_backbone"):
            record["frozen"] = freeze_backbone(model, report.loaded)
        message = report.summary()
    if "frozen" in record:
        frozen = record["frozen"]
        message += (f"\n--freeze-backbone: {len(frozen['weights'])} weights frozen ({frozen['parameters']:,} "
                    f"parameters); training {len(frozen['trainable_weights'])} ({frozen['trainable_parameters']:,})")
    if verbose != 0:
        print(message, flush=True)
    return record
