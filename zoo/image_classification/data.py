"""tf.data input pipelines for image classification.

Datasets: scikit-learn's `digits` (offline, the project's default), and TensorFlow Datasets'
`mnist`, `cifar10`, `cifar100` and `imagenet2012` (ImageNet needs the ILSVRC2012 tar files in
`manual_dir`; see https://www.tensorflow.org/datasets/catalog/imagenet2012).

Every pipeline yields channels-last float32 images `(B, H, W, C)`, normalised with the dataset's
mean and std (`NORMALIZATION`), and int32 labels `(B,)`, or float32 one-hot labels
`(B, num_classes)` when `one_hot=True` or MixUp/CutMix is on.

Default preprocessing (`training=True` adds the augmentation; evaluation is deterministic):

| dataset | training | evaluation |
|---|---|---|
| digits | shift by up to 1 px (no flip: digits are not mirror-symmetric) | - |
| mnist | shift by up to 2 px (no flip) | - |
| cifar10/100 | pad 4 + random crop, horizontal flip | - |
| imagenet2012 | random resized crop, horizontal flip | shorter side to size / 0.875, centre crop |

The small datasets are resized to `image_size` first when it is not their native size. Options,
training only: `rand_augment` (Keras' RandAugment, on [0, 1] pixels before normalisation),
`mixup` and `cutmix` (on normalised batches).

Example:
    >>> ds = make_dataset("digits", "train", batch_size=32, training=True, seed=0)
    >>> images, labels = next(iter(ds))  # (32, 8, 8, 1) float32, (32,) int32
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from zoo.image_classification import augment


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a pipeline needs to know about a dataset.

    Attributes:
        name: the dataset's name, also its TFDS name (except `digits`, from scikit-learn).
        image_shape: (H, W, C) as stored; H and W are None when images vary in size.
        num_classes: number of labels.
        splits: role ("train", "test", ...) -> split name in the source, e.g. ImageNet's test
            role is its "validation" split.
    """

    name: str
    image_shape: tuple[int | None, int | None, int]
    num_classes: int
    splits: dict[str, str] = dataclasses.field(hash=False)


def _info(name, image_shape, num_classes, **splits) -> DatasetInfo:
    splits = splits or {"train": "train", "test": "test"}
    return DatasetInfo(name, image_shape, num_classes, splits)


DATASETS: dict[str, DatasetInfo] = {
    "digits": _info("digits", (8, 8, 1), 10),
    "mnist": _info("mnist", (28, 28, 1), 10),
    "cifar10": _info("cifar10", (32, 32, 3), 10),
    "cifar100": _info("cifar100", (32, 32, 3), 100),
    "imagenet2012": _info(
        "imagenet2012", (None, None, 3), 1000,
        train="train", test="validation", validation="validation",
    ),
}

# Per-channel (mean, std) of pixel values scaled to [0, 1], computed on the training split.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # x = load_digits_arrays("train")[0] / 16; (x.mean(), x.std()) over all 1437 train images.
    "digits": ((0.3054,), (0.3761,)),
    "mnist": ((0.1307,), (0.3081,)),
    # Per-pixel std over the training set (the often-copied (0.2023, 0.1994, 0.2010) is the
    # mean of per-image stds).
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

# Training-time random shift (pixels) and flip for the small datasets.
_SHIFT_AND_FLIP = {
    "digits": (1, False), "mnist": (2, False), "cifar10": (4, True), "cifar100": (4, True),
}
_PIXEL_MAX = {"digits": 16.0}  # Every other dataset stores uint8 pixels in 0..255.
IMAGENET_IMAGE_SIZE = 224  # image_size=None for a dataset without a native size.
AUTOTUNE = tf.data.AUTOTUNE


def pixel_normalization(name: str) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """(pixel_max, mean, std) of a dataset: its models see `(pixels / pixel_max - mean) / std` per channel."""
    mean, std = NORMALIZATION[name]
    return _PIXEL_MAX.get(name, 255.0), mean, std


def load_digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns scikit-learn's digits with a fixed stratified 80/20 train/test split.

    Args:
        split: "train" (1437 images) or "test" (360 images).

    Returns:
        `(images, labels)`: float32 (N, 8, 8, 1) with raw values in 0..16, and int32 (N,).
    """
    if split not in ("train", "test"):
        raise ValueError(
            f"Unknown digits split. Expected one of: train, test. Received: split={split!r}"
        )
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=0
    )
    return (x_train, y_train) if split == "train" else (x_test, y_test)


def make_dataset(
    name: str,
    split: str,
    *,
    batch_size: int,
    image_size: int | None = None,
    training: bool = False,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    rand_augment: bool = False,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    one_hot: bool = False,
    drop_remainder: bool | None = None,
    repeat: bool = False,
    take: int | None = None,
    augment_geometry: bool = True,
    classes: Sequence[int] | None = None,
) -> tf.data.Dataset:
    """Builds the batched input pipeline of an image-classification dataset.

    Args:
        name: one of `DATASETS`.
        split: a role of `DatasetInfo.splits` ("train", "test"), or a TFDS split string such
            as "train[:90%]" or "train[90%:]+test" (roles are mapped inside it too; digits
            accepts the same syntax).
        batch_size: examples per batch.
        image_size: side of the square output images; None keeps the native size (224 for
            ImageNet).
        training: shuffle and augment. Evaluation is deterministic.
        shuffle_buffer: size of the shuffle buffer when training.
        seed: makes shuffling and the tf.image augmentations reproducible. The Keras layers
            (RandAugment, MixUp, CutMix) are seeded too but run in parallel map calls, so
            their draws are not reproducible.
        data_dir: TFDS data directory.
        manual_dir: TFDS manual download directory (ImageNet's tar files).
        rand_augment: apply `keras.layers.RandAugment` (training only).
        mixup: MixUp alpha in [0, 1]; 0 disables it (training only).
        cutmix: CutMix factor in [0, 1]; 0 disables it (training only). With both on, each
            batch gets one of the two.
        one_hot: return float32 one-hot labels. Forced on when `mixup` or `cutmix` is
            non-zero, for evaluation pipelines too, so that train and eval share a loss.
        drop_remainder: drop the last partial batch; defaults to `training`.
        repeat: repeat indefinitely (pass `steps_per_epoch` to `fit`).
        take: keep only the first `take` examples of the split (before shuffling).
        augment_geometry: with `training`, apply the dataset's default crop/shift/flip; False
            keeps only the shuffling (and the optional RandAugment/MixUp/CutMix).
        classes: keep only the examples of these labels, relabelled 0..K-1 in the order given
            (e.g. (6, 7, 8, 9): a 6 becomes 0); `take` counts kept examples, one-hot labels have K entries.

    Returns:
        A dataset of `(images, labels)`: float32 (B, H, W, C) and int32 (B,) or float32 one-hot
        (B, num_classes).

    Raises:
        ValueError: on an unknown dataset or split, or mixup/cutmix outside [0, 1].
    """
    info = _get_info(name)
    for arg, value in (("mixup", mixup), ("cutmix", cutmix)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"Expected {arg} in [0, 1]. Received: {arg}={value}")
    for arg, value in (("batch_size", batch_size), ("image_size", image_size), ("take", take)):
        if value is not None and value < 1:
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value}")
    image_size = image_size or info.image_shape[0] or IMAGENET_IMAGE_SIZE
    one_hot = one_hot or mixup > 0 or cutmix > 0
    drop_remainder = training if drop_remainder is None else drop_remainder

    # Without file shuffling, `take` keeps the same examples every epoch.
    shuffle_files = training and take is None
    ds = _load(info, split, shuffle_files=shuffle_files, seed=seed, data_dir=data_dir,
               manual_dir=manual_dir)
    num_classes = info.num_classes
    if classes is not None:
        ds, num_classes = _keep_classes(ds, info, classes), len(classes)
    if take is not None:
        ds = ds.take(take)
    if info.image_shape[0] is not None:
        ds = ds.cache()  # Small datasets fit in memory; decoding runs once.
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    preprocess = _make_preprocess(info, image_size, training, rand_augment, seed, augment_geometry)
    if training:
        # One stateless seed per example; a different stream every epoch, reproducible given seed.
        ds = tf.data.Dataset.zip((ds, _seeds(seed)))
        ds = ds.map(lambda example, s: preprocess(*example, s), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE)
    if one_hot:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if training and (mixup > 0 or cutmix > 0):
        mixer = augment.BatchMixer(mixup, cutmix, seed)
        ds = tf.data.Dataset.zip((ds, _seeds(None if seed is None else seed + 1)))
        ds = ds.map(lambda batch, s: mixer(*batch, s), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def calibration_images(
    name: str,
    *,
    num_samples: int = 128,
    image_size: int | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    classes: Sequence[int] | None = None,
) -> np.ndarray:
    """Returns the first `num_samples` training images, evaluation-preprocessed.

    This is the representative dataset for int8 post-training quantization: the train split,
    so that calibration never sees test data, with evaluation preprocessing, which is what the
    deployed model receives.

    Returns:
        float32 (num_samples, H, W, C), normalised; fewer rows if the split is smaller.
    """
    ds = make_dataset(name, "train", batch_size=num_samples, image_size=image_size,
                      data_dir=data_dir, manual_dir=manual_dir, take=num_samples, classes=classes)
    return np.concatenate([images for images, _ in ds.as_numpy_iterator()])


def check_image_shape(dataset: str, image_shape: Sequence[int]) -> None:
    """Refuses a model `image_shape` the pipelines of `dataset` cannot feed, naming `--set image_shape`.

    The pipelines resize images to squares of side `image_shape[0]` and keep the dataset's channels,
    so a model must take (S, S, C) images, C the dataset's.
    """
    channels = _get_info(dataset).image_shape[-1]
    shape = tuple(image_shape) if isinstance(image_shape, (list, tuple)) else (image_shape,)
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] != channels:
        raise ValueError(
            f"--set image_shape={image_shape!r} does not fit dataset {dataset!r}: its pipelines give square images "
            f"with {channels} channel{'s' if channels > 1 else ''}, so the model needs image_shape=(S, S, {channels}). "
            f"Received: image_shape={image_shape!r}")


def _get_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(
            f"Unknown dataset {name!r}. Expected one of: {', '.join(sorted(DATASETS))}. "
            f"Received: name={name!r}"
        )
    return DATASETS[name]


def _keep_classes(ds: tf.data.Dataset, info: DatasetInfo, classes: Sequence[int]) -> tf.data.Dataset:
    """The examples of `classes` only, labelled by their place in it."""
    classes = list(classes)
    wrong = [c for c in classes if not isinstance(c, (int, np.integer)) or not 0 <= c < info.num_classes]
    if not classes or wrong or len(set(classes)) != len(classes):
        raise ValueError(f"--classes must be distinct labels of {info.name} in 0..{info.num_classes - 1}. "
                         f"Received: --classes {','.join(str(c) for c in classes)}")
    new_label = np.full(info.num_classes, -1, np.int32)
    new_label[classes] = np.arange(len(classes), dtype=np.int32)
    table = tf.constant(new_label)

    def relabel(image, label):
        return image, tf.gather(table, label)

    def kept(image, label):
        return label >= 0

    ds = ds.map(relabel).filter(kept)
    if info.image_shape[0] is None:
        return ds  # ImageNet: counting would read every JPEG (training needs --steps-per-epoch then)
    # Counted once, so that an epoch keeps a known number of batches (labels only; small datasets).
    count = int(ds.map(lambda image, label: label).reduce(0, lambda n, _: n + 1))
    return ds.apply(tf.data.experimental.assert_cardinality(count))


def _resolve_split(info: DatasetInfo, split: str) -> str:
    """Maps roles to source split names inside a TFDS split string and checks the names."""
    known = sorted(set(info.splits) | set(info.splits.values()))
    parts = []
    for part in split.split("+"):
        base, bracket, selector = part.strip().partition("[")
        if base not in known:
            raise ValueError(
                f"Unknown split {base!r} for dataset {info.name!r}. Expected one of: "
                f"{', '.join(known)}, optionally sliced like 'train[:90%]'. "
                f"Received: split={split!r}"
            )
        parts.append(info.splits.get(base, base) + bracket + selector)
    return "+".join(parts)


def _load(
    info: DatasetInfo,
    split: str,
    *,
    shuffle_files: bool,
    seed: int | None,
    data_dir: str | None,
    manual_dir: str | None,
) -> tf.data.Dataset:
    """Returns unbatched `(image, int32 label)`; ImageNet images stay JPEG bytes."""
    split = _resolve_split(info, split)
    if info.name == "digits":
        return _load_digits(split)
    import tensorflow_datasets as tfds  # Imported here: it is slow, and digits rarely needs it.

    builder = tfds.builder(info.name, data_dir=data_dir)
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=download_config)
    ds = builder.as_dataset(
        split=split,
        as_supervised=True,
        shuffle_files=shuffle_files,
        # Decoding waits for the crop, so that only the cropped window of a JPEG is decoded.
        decoders={"image": tfds.decode.SkipDecoding()} if info.image_shape[0] is None else None,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    return ds.map(lambda image, label: (image, tf.cast(label, tf.int32)))


def _load_digits(split: str) -> tf.data.Dataset:
    if split in ("train", "test"):
        return tf.data.Dataset.from_tensor_slices(load_digits_arrays(split))
    import tensorflow_datasets as tfds  # Only for its split-slicing rules; no data is read.

    arrays = {role: load_digits_arrays(role) for role in ("train", "test")}
    sizes = {role: types.SimpleNamespace(num_examples=len(y)) for role, (_, y) in arrays.items()}
    images, labels = [], []
    for instruction in tfds.core.ReadInstruction.from_spec(split).to_absolute(sizes):
        x, y = arrays[instruction.splitname]
        images.append(x[instruction.from_:instruction.to])
        labels.append(y[instruction.from_:instruction.to])
    return tf.data.Dataset.from_tensor_slices((np.concatenate(images), np.concatenate(labels)))


def _seeds(seed: int | None) -> tf.data.Dataset:
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def _make_preprocess(
    info: DatasetInfo, image_size: int, training: bool, rand_augment: bool, seed: int | None,
    augment_geometry: bool = True,
) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """Returns `fn(image, label[, example_seed]) -> (normalised float32 image, label)`."""
    mean, std = NORMALIZATION[info.name]
    pixel_max = _PIXEL_MAX.get(info.name, 255.0)
    shift, flip = _SHIFT_AND_FLIP.get(info.name, (0, True)) if augment_geometry else (0, False)
    rand_augment_layer = None
    if training and rand_augment:
        rand_augment_layer = keras.layers.RandAugment(value_range=(0, 1), seed=seed, dtype="float32")

    def preprocess(image, label, example_seed=None):
        if info.image_shape[0] is None:  # ImageNet: JPEG bytes.
            if training:
                crop_seed, example_seed = tf.unstack(
                    tf.random.experimental.stateless_split(example_seed, 2))
                image = augment.decode_and_random_resized_crop(image, crop_seed, image_size)
            else:
                image = augment.decode_and_center_crop(image, image_size)
        else:
            image = tf.cast(image, tf.float32)
            if image_size != info.image_shape[0]:
                image = tf.image.resize(image, [image_size, image_size], antialias=True)
            if training:
                shift_seed, example_seed = tf.unstack(
                    tf.random.experimental.stateless_split(example_seed, 2))
                image = augment.random_shift(image, shift_seed, shift)
        if training and flip:
            image = augment.random_flip(image, example_seed)
        image = image / pixel_max
        if rand_augment_layer is not None:
            image = tf.cast(rand_augment_layer(image), tf.float32)
        return (image - mean) / std, label

    return preprocess
