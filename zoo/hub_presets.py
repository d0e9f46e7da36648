"""What a zoo model's keras-hub preset records beyond its weights: the preset, its data, its normalisation.

`zoo.create_model` gives every model a `preset_metadata` dict; `model.save_to_preset(dir)` writes it into
metadata.json and builds the preset's image converter from its "image_converter" entry, so that
`keras_hub.models.ImageClassifier.from_preset(dir).predict(images)` takes the dataset's raw pixels.
"""

from __future__ import annotations

import json
from typing import Any

from zoo.registry import Preset

# Frames (uint8 0..255) as the flow models' inputs: DeepMind's [-1, 1] (zoo.optical_flow.inference).
_FLOW_CONVERTERS = {"minus_one_to_one": {"scale": 2 / 255, "offset": -1.0}, "zero_to_one": {"scale": 1 / 255}}


def image_converter(preset: Preset) -> dict[str, Any] | None:
    """`PerceiverImageConverter` arguments (scale, offset) taking the preset's raw pixels to its model's input.

    Image classifiers: `(pixels / pixel_max - mean) / std` of the dataset; optical flow: uint8 frames to
    the preset's normalisation; multimodal: uint8 frames to [0, 1]. None for text and unknown datasets.
    """
    if preset.task == "image_classification":
        from zoo.image_classification import data

        if preset.metadata.get("dataset") not in data.NORMALIZATION:
            return None
        pixel_max, mean, std = data.pixel_normalization(preset.metadata["dataset"])
        return {"scale": [1.0 / (pixel_max * s) for s in std], "offset": [-m / s for m, s in zip(mean, std)]}
    if preset.task == "optical_flow":
        return dict(_FLOW_CONVERTERS[preset.metadata.get("normalization", "minus_one_to_one")])
    if preset.task == "multimodal_autoencoding":
        return {"scale": 1 / 255}
    return None


def preset_metadata(preset: Preset, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-safe entries a model of `preset` writes into its keras-hub preset's metadata.json.

    `overrides` are the builder arguments `create_model` changed: recorded under "overrides", and an entry
    of the same name (e.g. "num_classes") takes the model's value, not the preset's.
    """
    metadata = {"preset": preset.name, "task": preset.task,
                **json.loads(json.dumps(preset.metadata, default=str))}
    if overrides:
        metadata["overrides"] = json.loads(json.dumps(overrides, default=str))
        metadata.update({key: value for key, value in metadata["overrides"].items() if key in metadata})
    converter = image_converter(preset)
    if converter is not None:
        metadata["image_converter"] = converter
    return metadata
