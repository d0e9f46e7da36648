"""What training, evaluation and export need to know about image classification."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from zoo.image_classification import data
from zoo.options import FRACTION, UNIT, Option, labels
from zoo.recipe import Recipe
from zoo.registry import Preset, register_recipe


class ImageClassificationRecipe(Recipe):
    """Datasets, loss and metrics of an image-classification preset (one-hot labels throughout).

    The test split is always evaluated whole (no `eval_take`).
    """

    name = "image_classification"
    options = {
        "label_smoothing": Option("label smoothing of the cross-entropy, in [0, 1)", FRACTION),
        "mixup": Option("MixUp alpha in [0, 1] (0 disables)", UNIT),
        "cutmix": Option("CutMix factor in [0, 1] (0 disables)", UNIT),
        "rand_augment": Option("RandAugment (--no-rand-augment turns off a preset's)", switch=True),
        "augment": Option("random crops and flips (--no-augment turns them off)", switch=True),
        "manual_dir": Option("TFDS manual download directory (ImageNet)"),
        "classes": Option("train and test on these labels only, relabelled 0..K-1 in this order, e.g. 6,7,8,9 with "
                          "--set num_classes=4", labels),
    }

    def check(self, preset: Preset, options: dict[str, Any]) -> None:
        """The model's image_shape must be one the dataset's pipelines give: (S, S, the dataset's channels)."""
        data.check_image_shape(preset.metadata["dataset"], preset.config["image_shape"])
        kept_classes(preset, options)

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, test) tf.data pipelines for the preset's dataset."""
        dataset, size = preset.metadata["dataset"], preset.config["image_shape"][0]
        common = dict(image_size=size, data_dir=options.get("data_dir"), manual_dir=options.get("manual_dir"),
                      one_hot=True, classes=kept_classes(preset, options))
        train = data.make_dataset(
            dataset, "train", batch_size=batch_size, training=True, seed=seed,
            rand_augment=options.get("rand_augment", False), mixup=options.get("mixup", 0.0),
            cutmix=options.get("cutmix", 0.0), take=options.get("take"),
            augment_geometry=options.get("augment", True), **common,
        )
        test = data.make_dataset(dataset, "test", batch_size=batch_size, **common)
        return train, test

    def loss(self, preset: Preset, options: dict[str, Any]) -> keras.losses.Loss:
        return keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=options.get("label_smoothing", 0.0)
        )

    def metrics(self, preset: Preset) -> list:
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "builder": "zoo.image_classification.task:export_arrays",
            "kwargs": {"dataset": preset.metadata["dataset"], "image_size": preset.config["image_shape"][0],
                       "data_dir": options.get("data_dir"), "manual_dir": options.get("manual_dir"),
                       "classes": kept_classes(preset, options)},
        }


def kept_classes(preset: Preset, options: dict[str, Any]) -> list[int] | None:
    """The `classes` option (the labels a run trains and tests on), checked against the model's num_classes."""
    classes = options.get("classes")
    if classes is None:
        return None
    classes = [int(c) for c in (classes.split(",") if isinstance(classes, str) else classes)]
    if len(classes) != preset.config["num_classes"]:
        raise ValueError(f"--classes keeps {len(classes)} labels but the model has num_classes="
                         f"{preset.config['num_classes']}: pass --set num_classes={len(classes)}. Received: "
                         f"classes={classes}")
    return classes


def export_arrays(dataset: str, image_size: int, data_dir: str | None = None, manual_dir: str | None = None,
                  num_calibration: int = 256, num_eval: int | None = None,
                  classes: list[int] | None = None) -> dict[str, Any]:
    """Calibration images from the train split and held-out (images, labels) from the test split."""
    calibration = data.calibration_images(dataset, num_samples=num_calibration, image_size=image_size,
                                          data_dir=data_dir, manual_dir=manual_dir, classes=classes)
    test = data.make_dataset(dataset, "test", batch_size=256, image_size=image_size, data_dir=data_dir,
                             manual_dir=manual_dir, take=num_eval, classes=classes)
    images, labels = zip(*test.as_numpy_iterator())
    return {"calibration": calibration, "eval": (np.concatenate(images), np.concatenate(labels))}


RECIPE = register_recipe(ImageClassificationRecipe())
