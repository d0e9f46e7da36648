"""What training, evaluation and export need to know about optical flow.

Subsampled decoding: training builds the model with `use_output_indices=True` (`model_overrides`)
and each training batch decodes `decoded_pixels` random pixels per pair, drawn without replacement
and new every step; its targets are those pixels' flow (B, O, 2). So a step's decoder cost and
memory stay flat however large the frames are. Evaluation feeds the same model every pixel,
`output_indices` 0..H*W-1 in one call, with the whole flow (B, H*W, 2) as targets: the test EPE
counts each pixel once. Its decoder memory grows with H*W (batch size x H*W x latents attention
weights), so evaluate large frames with a small `batch_size` (`python -m zoo evaluate --batch-size`).
A model trained without indices (`--set use_output_indices=False`) gets dense (frames, flow) pairs.

Datasets (option `flow_dataset`, default the preset's): "synthetic_flow" (offline, exact: the
photos' left halves train, `eval_take` pairs (default 128) of the right halves test; the options
`max_flow` and `window_candidates` shape the pairs), "sintel"
(`data_dir` holding `training/`, pass `sintel_pass`; every fifth scene in name order is held out,
the last one when there are fewer than five) and "flying_chairs" (`data_dir` holding `data/` and
the official split file). Frames are random crops at the model's frame size in training and centre
crops in evaluation, scaled to the preset's normalisation ([-1, 1]). With `steps_per_epoch` the
training pairs repeat endlessly (synthetic ones are new on every pass).
"""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf

from export.arguments import COUNT
from zoo.optical_flow import data, synthetic
from zoo.optical_flow.metrics import EndPointError, EndPointErrorLoss
from zoo.options import DECODED_PIXELS, EVAL_TAKE, POSITIVE, Option
from zoo.recipe import Recipe
from zoo.registry import Preset, register_recipe

DATASETS = ("synthetic_flow", "sintel", "flying_chairs")
DEFAULT_DECODED_PIXELS = 512
SYNTHETIC_EVAL_PAIRS = 128
SINTEL_HELD_OUT_EVERY = 5  # Sintel's training scenes, sorted by name: every fifth is held out.


def frame_size(preset: Preset) -> tuple[int, int]:
    return tuple(int(s) for s in preset.config.get("frame_size", (368, 496)))


def decoded_pixels(preset: Preset, options: dict[str, Any]) -> int:
    """Pixels decoded per pair in a training step: the option, or min(512, H*W); at most H*W."""
    height, width = frame_size(preset)
    count = options.get("decoded_pixels")
    if count is None:
        return min(DEFAULT_DECODED_PIXELS, height * width)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= height * width:
        raise ValueError(f"--decoded-pixels must be from 1 to {height * width} (the {height}x{width} pixels of a "
                         f"frame). Received: --decoded-pixels {count!r}")
    return count


def normalize(frames: tf.Tensor, normalization: str) -> tf.Tensor:
    """Frames in [0, 1] -> the model's input range."""
    if normalization == "minus_one_to_one":
        return 2.0 * frames - 1.0
    if normalization == "zero_to_one":
        return frames
    raise ValueError("Unknown normalization. Expected one of: minus_one_to_one, zero_to_one. Received: "
                     f"normalization={normalization!r}")


def _dataset_name(preset: Preset, options: dict[str, Any]) -> str:
    name = options.get("flow_dataset") or preset.metadata["dataset"]
    if name not in DATASETS:
        raise ValueError(f"Unknown optical-flow dataset. Expected one of: {', '.join(DATASETS)}. "
                         f"Received: --flow-dataset {name!r}")
    return name


def _folder_files(name: str, options: dict[str, Any]) -> tuple[list, list]:
    """(train, test) file triples of a dataset folder."""
    root = options.get("data_dir")
    if not root:
        raise ValueError(f"The {name} dataset needs its folder: pass --data-dir. Received: no --data-dir")
    if name == "flying_chairs":
        return data.flying_chairs_files(root, split="train"), data.flying_chairs_files(root, split="validation")
    files = data.sintel_files(root, pass_name=options.get("sintel_pass") or "clean")
    scenes = sorted({os.path.basename(os.path.dirname(triple.frame1)) for triple in files})
    held_out = set(scenes[SINTEL_HELD_OUT_EVERY - 1::SINTEL_HELD_OUT_EVERY] or scenes[-1:])
    split = [os.path.basename(os.path.dirname(triple.frame1)) in held_out for triple in files]
    return [t for t, test in zip(files, split) if not test], [t for t, test in zip(files, split) if test]


def synthetic_options(options: dict[str, Any]) -> dict[str, Any]:
    """The synthetic pairs' options a preset or run may set: `max_flow`, `window_candidates`."""
    return {key: options[key] for key in ("max_flow", "window_candidates") if options.get(key) is not None}


def flow_datasets(preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
    """(train, test) batches of (frames in [0, 1], flow in pixels), before normalisation and indices."""
    name, size = _dataset_name(preset, options), frame_size(preset)
    steps = options.get("steps_per_epoch")
    if name == "synthetic_flow":
        # Training pairs are new on every pass; `take` only sets the epoch length without steps_per_epoch.
        pairs = synthetic_options(options)
        train = synthetic.synthetic_flow_dataset("train", size=size, batch_size=batch_size, training=True, seed=seed,
                                                 num_pairs=options.get("take") or 1024, repeat=bool(steps), **pairs)
        test = synthetic.synthetic_flow_dataset("validation", size=size, batch_size=batch_size,
                                                num_pairs=options.get("eval_take") or SYNTHETIC_EVAL_PAIRS, **pairs)
        return train, test
    train_files, test_files = _folder_files(name, options)
    train = data.make_flow_dataset(train_files, batch_size=batch_size, training=True, crop_size=size, seed=seed,
                                   take=options.get("take"), repeat=bool(steps))
    test = data.make_flow_dataset(test_files, batch_size=batch_size, crop_size=size, take=options.get("eval_take"))
    return train, test


class OpticalFlowRecipe(Recipe):
    """End-point error loss and metric (the tuning objective, minimised), subsampled decoding in training,
    the zero-flow baseline."""

    name = "optical_flow"
    options = {
        "flow_dataset": Option("dataset (default: the preset's)", choices=DATASETS),
        "sintel_pass": Option("Sintel's clean or final pass (clean)", choices=data.SINTEL_PASSES),
        "decoded_pixels": DECODED_PIXELS,
        "max_flow": Option("synthetic pairs: the largest flow in pixels", POSITIVE),
        "window_candidates": Option("synthetic pairs: keep the most textured of K random windows", COUNT),
        "eval_take": EVAL_TAKE,
    }
    objective_direction = "min"

    def check(self, preset: Preset, options: dict[str, Any]) -> None:
        decoded_pixels(preset, options)  # at most the frame's pixels

    def model_overrides(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        """Builder arguments of the training model: subsampled decoding."""
        return {"use_output_indices": True}

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, test) pipelines of ({"frames", "output_indices"}, flow of those pixels)."""
        train, test = flow_datasets(preset, batch_size, seed, options)
        normalization = preset.metadata.get("normalization", "minus_one_to_one")

        def normalize_pair(frames, flow):
            return normalize(frames, normalization), flow

        train, test = (ds.map(normalize_pair, num_parallel_calls=tf.data.AUTOTUNE) for ds in (train, test))
        if not preset.config.get("use_output_indices", False):
            return train, test
        height, width = frame_size(preset)
        count = decoded_pixels(preset, options)

        def sample_pixels(batch, batch_seed):
            (frames, flow), pixels = batch, height * width
            # The top `count` of uniform scores: a random subset without replacement, per pair.
            scores = tf.random.stateless_uniform([tf.shape(flow)[0], pixels], batch_seed)
            indices = tf.math.top_k(scores, k=count, sorted=False).indices
            targets = tf.gather(tf.reshape(flow, [-1, pixels, 2]), indices, batch_dims=1)
            return {"frames": frames, "output_indices": indices}, targets

        def all_pixels(frames, flow):
            indices = tf.broadcast_to(tf.range(height * width, dtype=tf.int32), [tf.shape(flow)[0], height * width])
            return {"frames": frames, "output_indices": indices}, tf.reshape(flow, [-1, height * width, 2])

        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        train = tf.data.Dataset.zip((train, seeds)).map(sample_pixels, num_parallel_calls=tf.data.AUTOTUNE)
        test = test.map(all_pixels, num_parallel_calls=tf.data.AUTOTUNE)
        return train.prefetch(tf.data.AUTOTUNE), test.prefetch(tf.data.AUTOTUNE)

    def loss(self, preset: Preset, options: dict[str, Any]) -> keras.losses.Loss:
        return EndPointErrorLoss(flow_scale_factor=preset.metadata.get("flow_scale_factor", 1.0))

    def metrics(self, preset: Preset) -> list:
        return [EndPointError(flow_scale_factor=preset.metadata.get("flow_scale_factor", 1.0))]

    def baselines(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """The EPE (pixels) of predicting zero flow on the test pairs: their mean flow magnitude."""
        _, test = flow_datasets(preset, options["batch_size"], options.get("seed", 0), options)
        return {"zero_flow_epe": float(data.zero_flow_epe(test))}

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        dataset = _dataset_name(preset, options)
        kwargs = {"dataset": dataset, "frame_size": list(frame_size(preset)), "data_dir": options.get("data_dir")}
        if dataset == "synthetic_flow":
            kwargs.update(synthetic_options(options))
        if dataset == "sintel":
            kwargs["pass_name"] = options.get("sintel_pass") or "clean"
        return {"builder": "zoo.optical_flow.export:export_arrays", "kwargs": kwargs}


RECIPE = register_recipe(OpticalFlowRecipe())
