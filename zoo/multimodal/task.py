"""What training, evaluation and export need to know about multimodal (video, audio, label) autoencoding.

Subsampled decoding, as the paper (which decodes 512 pixels, 512 audio samples and the label of
each training clip; an audio query decodes a patch, so 512 samples are 32 patches of 16): training builds the model with `use_output_indices=True` (`model_overrides`)
and each training batch decodes, per clip, `decoded_pixels` random pixels (t, y, x) and
`decoded_audio_patches` random audio patches (of `samples_per_patch` samples), both drawn without
replacement and new every step, plus the label. Its targets are those points' values: "image"
(B, O_i, 3), "audio" (B, O_a, samples_per_patch), "label" (B, K). Evaluation feeds the same model
every index in one call (0..T*H*W-1 and 0..S/P-1), with the whole clip as targets in that layout,
so the test PSNRs count every value once. Its decoder memory grows with T*H*W (batch x points x
latents attention weights): fine for `multimodal_small` (8,192 pixels a clip); evaluate bigger
models with a small `batch_size` and `eval_take`, or decode them in chunks with
`zoo.multimodal.reconstruct` (what the export's full-reconstruction check does). A model trained
without indices (`--set use_output_indices=False`) gets the dense (x, x) pairs.

The label: with a mask probability p < 1 (the paper and `multimodal_small`: 0.5) the label input is
replaced by the mask token in p of the training clips, so the model both autoencodes the label and
learns to classify. Outside training only p = 1 masks it, so a model of p < 1 would just copy the
label at evaluation: the test metrics (and the per-epoch validation) come from the same weights in
the model rebuilt with p = 1 (`evaluation_model`), so "label_accuracy" is classification from video
and audio alone, and the PSNRs are reconstructions without the label.

Loss: `metrics.losses()` with `loss_weights` (`metrics.PAPER_LOSS_WEIGHTS`, replaced by the options
`image_loss_weight`, `audio_loss_weight`, `label_loss_weight`).

Datasets (option `multimodal_dataset`, default the preset's): "synthetic_audiovisual" (offline,
`zoo.multimodal.synthetic`: training clips new every epoch, `take` clips an epoch; `eval_take`
validation clips, 256 by default; option `tone_period`, the tones' whole-cycle period in samples), "ucf101" (TFDS, `data_dir`; its "train" and "test" splits; no
audio: silence; the model needs `num_classes=101`) and "clip_folder" (`data_dir` holding `train/`
and `validation/` (or `test/`) clip folders, see `zoo.multimodal.data.clip_folder`; the model needs
`num_classes` = the training folder's classes; option `frames_per_second`, 25 by default). Option
`frame_stride` applies to both file-backed sources.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export.arguments import COUNT
from zoo.multimodal import baselines, data, metrics, synthetic
from zoo.options import DECODED_PIXELS, EVAL_TAKE, NON_NEGATIVE, POSITIVE, Option
from zoo.recipe import Recipe
from zoo.registry import Preset, register_recipe

DATASETS = ("synthetic_audiovisual", "ucf101", "clip_folder")
DEFAULT_DECODED_PIXELS = 512
DEFAULT_DECODED_AUDIO_PATCHES = 32  # 512 audio samples of 16-sample patches.
SYNTHETIC_TRAIN_CLIPS = 1024
SYNTHETIC_EVAL_CLIPS = 256
UCF101_CLASSES = 101


def sizes(preset: Preset) -> dict[str, Any]:
    """The model's T, (H, W), S, K and audio patch size P, from its builder arguments."""
    config = preset.config
    return {"num_frames": int(config.get("num_frames", 16)),
            "frame_size": tuple(int(s) for s in config.get("frame_size", (224, 224))),
            "num_audio_samples": int(config.get("num_audio_samples", 30_720)),
            "num_classes": int(config.get("num_classes", 700)),
            "samples_per_patch": int(config.get("samples_per_patch", 16))}


def decoded_points(preset: Preset, options: dict[str, Any]) -> tuple[int, int]:
    """(pixels, audio patches) decoded per clip in a training step: the options, or min(default, all)."""
    size = sizes(preset)
    pixels = size["num_frames"] * size["frame_size"][0] * size["frame_size"][1]
    patches = size["num_audio_samples"] // size["samples_per_patch"]
    counts = []
    for option, default, total, what in (("decoded_pixels", DEFAULT_DECODED_PIXELS, pixels, "pixels of a clip"),
                                         ("decoded_audio_patches", DEFAULT_DECODED_AUDIO_PATCHES, patches,
                                          "audio patches of a clip")):
        count = options.get(option)
        if count is None:
            count = min(default, total)
        elif isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= total:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} must be from 1 to {total} (the {what}). Received: {flag} {count!r}")
        counts.append(count)
    return counts[0], counts[1]


def dataset_name(preset: Preset, options: dict[str, Any]) -> str:
    name = options.get("multimodal_dataset") or preset.metadata["dataset"]
    if name not in DATASETS:
        raise ValueError(f"Unknown multimodal dataset. Expected one of: {', '.join(DATASETS)}. "
                         f"Received: --multimodal-dataset {name!r}")
    return name


def clip_datasets(preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
    """(train, test) batches of (x, x) clips at the model's sizes, before any subsampling."""
    name, size = dataset_name(preset, options), sizes(preset)
    common = {key: size[key] for key in ("num_frames", "frame_size", "num_audio_samples")}
    repeat = bool(options.get("steps_per_epoch"))
    if name == "synthetic_audiovisual":
        make = functools.partial(synthetic.synthetic_av_dataset, num_classes=size["num_classes"],
                                 batch_size=batch_size, tone_period=options.get("tone_period"), **common)
        return (make("train", training=True, seed=seed, num_clips=options.get("take") or SYNTHETIC_TRAIN_CLIPS,
                     repeat=repeat),
                make("validation", num_clips=options.get("eval_take") or SYNTHETIC_EVAL_CLIPS))
    stride = options.get("frame_stride") or 1
    if name == "ucf101":
        _check_classes(size["num_classes"], UCF101_CLASSES, "ucf101")
        make = functools.partial(data.ucf101_dataset, batch_size=batch_size, frame_stride=stride,
                                 data_dir=options.get("data_dir"), **common)
        return (make("train", training=True, seed=seed, take=options.get("take"), repeat=repeat),
                make("test", take=options.get("eval_take")))
    train_dir, test_dir = clip_folder_splits(options.get("data_dir"))
    train_folder = data.clip_folder(train_dir)
    _check_classes(size["num_classes"], len(train_folder.class_names), f"the clip folder {train_dir}")
    test_folder = data.clip_folder(test_dir, class_names=train_folder.class_names)
    make = functools.partial(data.folder_dataset, batch_size=batch_size, frame_stride=stride,
                             frames_per_second=float(options.get("frames_per_second") or 25.0), **common)
    return (make(train_folder, training=True, seed=seed, take=options.get("take"), repeat=repeat),
            make(test_folder, take=options.get("eval_take")))


def clip_folder_splits(root: str | None) -> tuple[str, str]:
    """`root/train` and `root/validation` (or `root/test`): the clip folders of the two splits."""
    if not root:
        raise ValueError("The clip_folder dataset needs its folder: pass --data-dir, holding train/ and "
                         "validation/. Received: no --data-dir")
    for test in ("validation", "test"):
        if tf.io.gfile.isdir(os.path.join(root, "train")) and tf.io.gfile.isdir(os.path.join(root, test)):
            return os.path.join(root, "train"), os.path.join(root, test)
    raise ValueError(f"Expected {root} to hold train/ and validation/ (or test/) clip folders. Received: "
                     f"{sorted(tf.io.gfile.listdir(root)) if tf.io.gfile.isdir(root) else 'no such folder'}")


def _check_classes(model_classes: int, data_classes: int, source: str) -> None:
    if model_classes != data_classes:
        raise ValueError(f"{source} has {data_classes} classes: build the model with num_classes={data_classes} "
                         f"(--set num_classes={data_classes}). Received: num_classes={model_classes}")


def with_indices(train: tf.data.Dataset, test: tf.data.Dataset, preset: Preset, seed: int,
                 options: dict[str, Any]) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Adds "image_indices" and "audio_indices": random per clip in training, all of them for testing."""
    size = sizes(preset)
    pixels = size["num_frames"] * size["frame_size"][0] * size["frame_size"][1]
    patch = size["samples_per_patch"]
    patches = size["num_audio_samples"] // patch
    num_pixels, num_patches = decoded_points(preset, options)

    def points(x, image_indices, audio_indices):
        targets = {"image": tf.gather(tf.reshape(x["image"], [-1, pixels, 3]), image_indices, batch_dims=1),
                   "audio": tf.gather(tf.reshape(x["audio"], [-1, patches, patch]), audio_indices, batch_dims=1),
                   "label": x["label"]}
        return {**x, "image_indices": image_indices, "audio_indices": audio_indices}, targets

    def sample(batch, batch_seed):
        x, batch_size = batch[0], tf.shape(batch[0]["label"])[0]
        image_seed, audio_seed = tf.unstack(tf.random.experimental.stateless_split(batch_seed, 2))
        # The top k of uniform scores: a random subset without replacement, per clip.
        image_indices = tf.math.top_k(tf.random.stateless_uniform([batch_size, pixels], image_seed),
                                      k=num_pixels, sorted=False).indices
        audio_indices = tf.math.top_k(tf.random.stateless_uniform([batch_size, patches], audio_seed),
                                      k=num_patches, sorted=False).indices
        return points(x, image_indices, audio_indices)

    def every_point(x, _):
        batch_size = tf.shape(x["label"])[0]
        return points(x, tf.broadcast_to(tf.range(pixels, dtype=tf.int32), [batch_size, pixels]),
                      tf.broadcast_to(tf.range(patches, dtype=tf.int32), [batch_size, patches]))

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    train = tf.data.Dataset.zip((train, seeds)).map(sample, num_parallel_calls=tf.data.AUTOTUNE)
    test = test.map(every_point, num_parallel_calls=tf.data.AUTOTUNE)
    return train.prefetch(tf.data.AUTOTUNE), test.prefetch(tf.data.AUTOTUNE)


def time_average_image_psnr(dataset: tf.data.Dataset) -> float:
    """PSNR of predicting every frame of a clip by the clip's mean frame: a baseline that sees the input."""
    squared_error, count = 0.0, 0
    for x, _ in dataset.as_numpy_iterator():
        frames = np.asarray(x["image"], np.float64)
        squared_error += float(np.sum((frames - frames.mean(axis=1, keepdims=True)) ** 2))
        count += frames.size
    mse = squared_error / count
    return float("inf") if mse == 0 else float(10 * np.log10(baselines.PSNR_MAX_VALUE["image"] ** 2 / mse))


class MultimodalAutoencodingRecipe(Recipe):
    """Weighted L1 + cross-entropy, PSNRs and label accuracy, subsampled decoding, the trivial baselines.

    The metrics are keyed by output, so tuning minimises the validation loss.
    """

    name = "multimodal_autoencoding"
    options = {
        "multimodal_dataset": Option("dataset (default: the preset's)", choices=DATASETS),
        "decoded_pixels": DECODED_PIXELS,
        "decoded_audio_patches": Option("audio patches decoded per clip in a training step", COUNT),
        "image_loss_weight": Option("weight of the video L1 (paper 0.03)", NON_NEGATIVE),
        "audio_loss_weight": Option("weight of the audio L1 (paper 1)", NON_NEGATIVE),
        "label_loss_weight": Option("weight of the label cross-entropy (paper 0.0001)", NON_NEGATIVE),
        "tone_period": Option("synthetic clips: samples per whole number of tone cycles", COUNT),
        "frame_stride": Option("ucf101 and clip_folder: keep every n-th frame", COUNT),
        "frames_per_second": Option("clip_folder: frame rate of the clips (25)", POSITIVE),
        "eval_take": EVAL_TAKE,
    }
    objective_direction = None

    def model_overrides(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        """Builder arguments of the training model: subsampled decoding."""
        decoded_points(preset, options)  # refuse a bad count before building anything
        return {"use_output_indices": True}

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, test) pipelines of (inputs with indices, targets at those points); dense without indices."""
        train, test = clip_datasets(preset, batch_size, seed, options)
        if not preset.config.get("use_output_indices", False):
            return train, test
        return with_indices(train, test, preset, seed, options)

    def loss(self, preset: Preset, options: dict[str, Any]) -> dict[str, keras.losses.Loss]:
        return metrics.losses()

    def loss_weights(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """The paper's weights (video 0.03, audio 1, label 0.0001) unless the options replace them."""
        return metrics.loss_weights(options.get("image_loss_weight"), options.get("audio_loss_weight"),
                                    options.get("label_loss_weight"))

    def metrics(self, preset: Preset) -> dict[str, list]:
        return metrics.metrics()

    def evaluation_model(self, model: keras.Model, preset: Preset, options: dict[str, Any]) -> keras.Model:
        """The model of the test metrics: `model`'s weights with the label always masked.

        A model trained with 0 < p < 1 is rebuilt with p = 1 (the weight list does not depend on
        p); with p = 1 it already classifies, and with p = 0 the mask token was never trained, so
        `model` itself is evaluated (its label accuracy is then the copied label's).
        """
        if preset.config.get("label_mask_probability", 1.0) in (0.0, 1.0):
            return model
        masked = preset.builder(**{**preset.config, "label_mask_probability": 1.0})
        masked.set_weights(model.get_weights())
        return masked

    def baselines(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """Trivial predictors on the test clips: mean clip, each clip's mean frame, majority class, chance."""
        _, test = clip_datasets(preset, options["batch_size"], options.get("seed", 0), options)
        found = baselines.trivial_baselines(test)
        found["time_average_image_psnr"] = time_average_image_psnr(test)
        return found

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        """How `python -m export` rebuilds calibration and held-out data for this run."""
        size = sizes(preset)
        kwargs = {"dataset": dataset_name(preset, options), "num_frames": size["num_frames"],
                  "frame_size": list(size["frame_size"]), "num_audio_samples": size["num_audio_samples"],
                  "num_classes": size["num_classes"], "data_dir": options.get("data_dir")}
        if kwargs["dataset"] == "synthetic_audiovisual":
            kwargs.update(tone_period=options.get("tone_period"))
        else:
            kwargs.update(frame_stride=options.get("frame_stride"), frames_per_second=options.get("frames_per_second"))
        return {"builder": "zoo.multimodal.export:export_arrays", "kwargs": kwargs}


RECIPE = register_recipe(MultimodalAutoencodingRecipe())
