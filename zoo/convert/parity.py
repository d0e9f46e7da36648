"""Parity of a converted model with transformers' PyTorch model built from the same folder, and probes.

A probe is one small batch of random inputs for an architecture, run three ways: through transformers'
model (`from_pretrained(folder)`: the folder's own config and weights, nothing else), through our
converted Keras model, and through the keras-hub task reloaded from the written preset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from perceiver_keras import MultimodalPerceiverIO

IMAGE_POINTS, AUDIO_PATCHES = 64, 4  # the multimodal probe decodes these points only (not 802,816 pixels)


@dataclasses.dataclass
class Probe:
    """One batch of random inputs of an architecture and how each model takes it.

    Attributes:
        keras_outputs: our converted model's outputs on the batch, name -> array.
        task_inputs: the batch as the keras-hub task takes it.
        task_options: `from_preset` arguments the task needs for the batch (e.g. subsampled decoding).
        task_outputs: the task's output -> name -> array, comparable with `keras_outputs`.
        reference_outputs: transformers' model -> name -> array, comparable with `keras_outputs`.
    """

    keras_outputs: dict[str, np.ndarray]
    task_inputs: Any
    task_options: dict[str, Any]
    task_outputs: Callable[[Any], dict[str, np.ndarray]]
    reference_outputs: Callable[[Any], dict[str, np.ndarray]]


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def _logits(outputs) -> dict[str, np.ndarray]:
    return {"logits": _numpy(outputs)}


def _torch():
    import torch

    return torch


def _image_probe(model, rng) -> Probe:
    images = rng.normal(size=(2, *model.inputs_shape)).astype("float32")
    nchw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return Probe(_logits(model(images)), images, {}, _logits,
                 lambda reference: {"logits": reference(inputs=_torch().from_numpy(nchw)).logits.numpy()})


def _text_probe(model, rng, masked_lm: bool) -> Probe:
    length = model.inputs_shape[0]
    ids = rng.integers(6, 262, size=(2, length)).astype("int32")
    mask = np.ones((2, length), "int32")
    mask[1, length - length // 4:] = 0  # the second sequence is padded
    inputs = {"token_ids": ids, "padding_mask": mask}
    task_inputs = dict(inputs, mask_positions=np.tile(np.arange(length, dtype="int32"), (2, 1))) if masked_lm else inputs

    def reference_outputs(reference):
        torch = _torch()
        return {"logits": reference(inputs=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask)).logits.numpy()}

    return Probe(_logits(model(inputs)), task_inputs, {}, _logits, reference_outputs)


def deepmind_patches(frames: np.ndarray) -> np.ndarray:
    """DeepMind's `patches_for_flow`: frames (B, T, H, W, C) -> transformers' flow input (B, T, 9 C, H, W).

    The 3x3 patch around every pixel (zero padding), in `tf.image.extract_patches`' order (patch row,
    patch column, channel), as the released checkpoint was trained on.
    """
    batch, time, height, width, channels = frames.shape
    padded = np.pad(frames, [(0, 0), (0, 0), (1, 1), (1, 1), (0, 0)])
    windows = np.stack([np.stack([padded[:, :, dy:dy + height, dx:dx + width] for dx in range(3)], axis=-2)
                        for dy in range(3)], axis=-3)
    patches = windows.reshape(batch, time, height, width, 9 * channels)
    return np.ascontiguousarray(patches.transpose(0, 1, 4, 2, 3))


def _flow_probe(model, rng) -> Probe:
    frames = rng.uniform(-1, 1, size=(1, *model.inputs_shape)).astype("float32")

    def flow(outputs):
        return {"flow": _numpy(outputs)}

    return Probe(flow(model(frames)), frames, {}, flow, lambda reference: {
        "flow": reference(inputs=_torch().from_numpy(deepmind_patches(frames))).logits.numpy()})


def _multimodal_probe(model, rng) -> Probe:
    shapes = {key: layer.expected_shape for key, layer in model.preprocessor.modalities.items()}
    inputs = {"image": rng.uniform(-1, 1, size=(1, *shapes["image"])).astype("float32"),
              "audio": rng.uniform(-1, 1, size=(1, *shapes["audio"])).astype("float32"),
              "label": np.eye(shapes["label"][0], dtype="float32")[:1]}
    points = {"image": np.arange(min(IMAGE_POINTS, int(np.prod(shapes["image"][:3])))),
              "audio": np.arange(min(AUDIO_PATCHES, model.query.num_positions["audio"]))}
    indices = {f"{key}_indices": value[None].astype("int32") for key, value in points.items()}
    # The same layers, decoding the probe's points only (all 802,816 pixels of the paper's model at once
    # do not fit in memory).
    subsampled = MultimodalPerceiverIO(model.preprocessor, model.encoder, model.query, model.decoder,
                                       model.postprocessor, subsampled_modalities=("audio", "image"))

    def flat(outputs):
        return {"image": _numpy(outputs["image"]), "audio": _numpy(outputs["audio"]).reshape(1, -1),
                "label": _numpy(outputs["label"])}

    def reference_outputs(reference):
        torch = _torch()
        feed = {"image": torch.from_numpy(np.ascontiguousarray(inputs["image"].transpose(0, 1, 4, 2, 3))),
                "audio": torch.from_numpy(inputs["audio"]), "label": torch.from_numpy(inputs["label"])}
        logits = reference(inputs=feed, subsampled_output_points={
            "image": torch.as_tensor(points["image"]), "audio": torch.as_tensor(points["audio"]), "label": None}).logits
        return {key: value.numpy() for key, value in logits.items()}

    task_inputs = {**inputs, **indices}
    return Probe(flat(subsampled(task_inputs)), task_inputs, {"subsampled_modalities": ["audio", "image"]}, flat,
                 reference_outputs)


def probe(architecture: str, model: keras.Model, seed: int = 0) -> Probe:
    """A probe of transformers' `architecture` (config.json "architectures") for our converted `model`."""
    rng = np.random.default_rng(seed)
    if architecture.startswith("PerceiverForImageClassification"):
        return _image_probe(model, rng)
    if architecture in ("PerceiverForMaskedLM", "PerceiverForSequenceClassification"):
        return _text_probe(model, rng, masked_lm=architecture == "PerceiverForMaskedLM")
    if architecture == "PerceiverForOpticalFlow":
        return _flow_probe(model, rng)
    if architecture == "PerceiverForMultimodalAutoencoding":
        return _multimodal_probe(model, rng)
    raise ValueError(f"No parity probe for architecture {architecture!r}.")


def reference_outputs(folder: Path, architecture: str, probe_: Probe) -> dict[str, np.ndarray]:
    """transformers' `architecture` loaded from `folder` alone (its config.json and model.safetensors) on the probe."""
    try:
        import torch
        import transformers
    except ImportError as error:
        raise ImportError("The parity check runs transformers' PyTorch model and needs torch and transformers "
                          "(requirements-dev.txt); pass --no-parity to convert without it.") from error
    reference = getattr(transformers, architecture).from_pretrained(folder, local_files_only=True, use_safetensors=True)
    reference.eval()
    with torch.no_grad():
        return probe_.reference_outputs(reference)


def max_difference(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], what: str) -> float:
    """The largest absolute difference over every output; a ValueError if the outputs' shapes differ."""
    for key in theirs:
        if key not in ours or ours[key].shape != theirs[key].shape:
            raise ValueError(f"{what}: output '{key}' has shape {None if key not in ours else ours[key].shape}. "
                             f"Expected: {theirs[key].shape}")
    return max(float(np.abs(ours[key] - theirs[key]).max()) for key in theirs)


def output_scale(outputs: dict[str, np.ndarray]) -> float:
    """The largest absolute output, at least 1: the tolerance is relative to it (logits of order 10 round so)."""
    return max(1.0, *(float(np.abs(value).max()) for value in outputs.values()))
