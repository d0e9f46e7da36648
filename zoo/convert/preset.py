"""`to_preset(folder, out)`: a transformers `save_pretrained` folder -> a keras-hub preset, checked.

`python -m zoo convert HF_FOLDER --out PRESET_DIR` runs it. Only safetensors checkpoints are read: a
pickle file (`pytorch_model.bin`, ...) can run code when loaded and is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zoo.convert import parity
from zoo.convert.transformers import from_transformers, read_config

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFETENSORS_FILE = "model.safetensors"
TOLERANCE = 1e-4
# transformers' PerceiverImageProcessor: pixels / 255, then ImageNet's mean and std.
_IMAGENET = {"rescale_factor": 1 / 255, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


def check_safetensors(folder: Path) -> Path:
    """The folder's model.safetensors; a ValueError naming a pickle checkpoint found instead."""
    weights = folder / SAFETENSORS_FILE
    if weights.is_file():
        return weights
    pickles = sorted(path for path in folder.iterdir() if path.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(f"{pickles[0]} is a pickle checkpoint (torch.save), which can run code when it is loaded: "
                         f"refused. Expected {weights}: re-save the model with transformers' "
                         "`model.save_pretrained(folder)` (safetensors is its default).")
    raise FileNotFoundError(f"{weights} is missing: expected a folder written by transformers' save_pretrained.")


def image_converter(folder: Path, architecture: str) -> dict[str, Any] | None:
    """`PerceiverImageConverter` arguments for raw uint8 inputs, from the folder's preprocessor_config.json."""
    if architecture.startswith("PerceiverForImageClassification"):
        path = folder / "preprocessor_config.json"
        processor = {**_IMAGENET, **(_read_json(path) if path.is_file() else {})}
        scale, mean, std = processor["rescale_factor"], processor["image_mean"], processor["image_std"]
        return {"scale": [scale / s for s in std], "offset": [-m / s for m, s in zip(mean, std)]}
    if architecture == "PerceiverForOpticalFlow":
        return {"scale": 2 / 255, "offset": -1.0}  # DeepMind's frames in [-1, 1]
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def to_preset(folder: str | os.PathLike, out: str | os.PathLike, check_parity: bool = True,
              tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Converts a transformers Perceiver folder into a keras-hub preset at `out`, all or nothing.

    The Keras model is built from the folder's config.json and model.safetensors (`from_transformers`),
    saved as a preset and reloaded from it; the reloaded task must give our model's outputs, and, with
    `check_parity`, our model must give transformers' own model's outputs (built from the same folder with
    torch) on a probe batch, within `tolerance` times their scale (largest magnitude, at least 1). The
    preset is written to a temporary folder beside `out` and renamed only when every check passed.

    Returns:
        The report (also in metadata.json under "perceiver_keras"): architecture, task, the largest
        differences against transformers and between our model and the reloaded preset.

    Raises:
        FileNotFoundError: the folder, its config.json or model.safetensors is missing.
        ValueError: a pickle checkpoint, another architecture, weights that do not fit, or outputs
            outside the tolerance.
    """
    import keras_hub  # noqa: F401 - registers perceiver_keras.hub's classes (via `import perceiver_keras`)

    from perceiver_keras import hub

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Checkpoint folder not found: {folder}")
    config = read_config(folder)  # another architecture is refused before the weights are looked at
    check_safetensors(folder)
    model = from_transformers(folder)
    architecture = next(name for name in config["architectures"] if name.startswith("PerceiverFor"))
    converter = image_converter(folder, architecture)
    task = hub.to_task(model, image_converter=converter)
    probe = parity.probe(architecture, model)
    report: dict[str, Any] = {"source": "transformers", "architecture": architecture,
                              "name_or_path": config.get("_name_or_path") or folder.name, "tolerance": tolerance}
    if check_parity:
        reference = parity.reference_outputs(folder, architecture, probe)
        report["max_abs_diff_vs_transformers"] = parity.max_difference(probe.keras_outputs, reference, "transformers")
        report["output_scale"] = parity.output_scale(reference)
        if report["max_abs_diff_vs_transformers"] > tolerance * report["output_scale"]:
            raise ValueError(f"The converted model differs from transformers' {architecture} loaded from {folder}: "
                             f"max abs difference {report['max_abs_diff_vs_transformers']:.3g} on outputs up to "
                             f"{report['output_scale']:.3g}. Expected at most {tolerance:g} x {report['output_scale']:.3g}.")
    with hub.writing_preset(out) as written:
        task.save_to_preset(written, metadata=dict(report, image_converter=converter))
        reloaded = type(task).from_preset(written, **probe.task_options)
        ours = probe.task_outputs(reloaded(probe.task_inputs))
        report["max_abs_diff_reloaded"] = parity.max_difference(ours, probe.keras_outputs, "the reloaded preset")
        if report["max_abs_diff_reloaded"] > 1e-6:
            raise ValueError(f"The preset reloaded from {written} differs from the converted model: max abs difference "
                             f"{report['max_abs_diff_reloaded']:.3g}. Expected at most 1e-6 (the same weights; only float rounding "
                             "may differ).")
        _record(Path(written), report)
    return report


def _record(preset: Path, report: dict[str, Any]) -> None:
    """Adds the checks' results to the preset's metadata.json, beside what save_to_preset wrote."""
    path = preset / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata.setdefault("perceiver_keras", {}).update(report)
    path.write_text(json.dumps(metadata, indent=4))
