"""Tests of the image-classification tf.data pipelines (offline: TFDS datasets are mocked)."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from zoo.image_classification import augment, data

pytestmark = pytest.mark.tensorflow_only


@pytest.fixture
def mock_tfds(tmp_path):
    """Ten random examples per split; returns the kwargs that keep TFDS inside tmp_path."""
    with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
        yield {"data_dir": str(tmp_path), "manual_dir": str(tmp_path)}


def epoch(ds):
    """All batches of one pass, as numpy arrays."""
    return list(ds.as_numpy_iterator())


def assert_normalised(images, name):
    """Checks that every pixel lies in the normalised image of [0, 1]."""
    mean, std = (np.array(v, np.float32) for v in data.NORMALIZATION[name])
    assert images.dtype == np.float32
    assert np.all(images >= (0 - mean) / std - 1e-4)
    assert np.all(images <= (1 - mean) / std + 1e-4)


def test_registry_is_consistent():
    assert set(data.NORMALIZATION) == set(data.DATASETS)
    for name, info in data.DATASETS.items():
        mean, std = data.NORMALIZATION[name]
        assert info.name == name and len(mean) == len(std) == info.image_shape[-1]
    assert data.DATASETS["imagenet2012"].splits["test"] == "validation"


def test_digits_split_is_fixed_and_stratified():
    x_train, y_train = data.load_digits_arrays("train")
    x_test, y_test = data.load_digits_arrays("test")
    again_x, again_y = data.load_digits_arrays("train")
    np.testing.assert_array_equal(x_train, again_x)
    np.testing.assert_array_equal(y_train, again_y)
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.dtype == np.float32 and x_train.min() == 0 and x_train.max() == 16
    per_class = np.bincount(load_digits().target)
    np.testing.assert_array_equal(np.bincount(y_train) + np.bincount(y_test), per_class)
    assert np.all(np.abs(np.bincount(y_test) - 0.2 * per_class) <= 1)


def test_digits_pipeline():
    evaluation = data.make_dataset("digits", "train", batch_size=64)
    first, second = epoch(evaluation), epoch(evaluation)
    assert [len(y) for _, y in first] == [64] * 22 + [29]
    images = np.concatenate([x for x, _ in first])
    np.testing.assert_array_equal(images, np.concatenate([x for x, _ in second]))
    assert abs(images.mean()) < 0.01 and abs(images.std() - 1) < 0.01  # Train-split constants.
    labels = np.concatenate([y for _, y in first])
    assert labels.dtype == np.int32 and set(labels) == set(range(10))

    training = data.make_dataset("digits", "train", batch_size=64, training=True, seed=0)
    first, second = epoch(training), epoch(training)
    assert [len(y) for _, y in first] == [64] * 22
    assert not np.allclose(first[0][0], second[0][0])
    reseeded = epoch(data.make_dataset("digits", "train", batch_size=64, training=True, seed=0))
    np.testing.assert_array_equal(first[0][0], reseeded[0][0])

    held_out = data.make_dataset("digits", "train[90%:]", batch_size=1000)
    assert len(epoch(held_out)[0][1]) == 144


@pytest.mark.parametrize(
    "name, image_size, image_shape",
    [
        ("mnist", None, (28, 28, 1)),
        ("cifar10", None, (32, 32, 3)),
        ("cifar100", 40, (40, 40, 3)),
        ("imagenet2012", 32, (32, 32, 3)),
    ],
)
def test_tfds_pipelines(mock_tfds, name, image_size, image_shape):
    num_classes = data.DATASETS[name].num_classes
    evaluation = data.make_dataset(name, "test", batch_size=4, image_size=image_size, **mock_tfds)
    first, second = epoch(evaluation), epoch(evaluation)
    assert [x.shape for x, _ in first] == [(4, *image_shape)] * 2 + [(2, *image_shape)]
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        assert_normalised(x1, name)
        assert y1.dtype == np.int32 and np.all((0 <= y1) & (y1 < num_classes))

    training = data.make_dataset(
        name, "train[:100%]", batch_size=4, image_size=image_size, training=True, seed=0,
        **mock_tfds,
    )
    first, second = epoch(training), epoch(training)
    assert [x.shape for x, _ in first] == [(4, *image_shape)] * 2  # Remainder dropped.
    assert not np.allclose(first[0][0], second[0][0])
    for x, _ in first:
        assert_normalised(x, name)


@pytest.mark.parametrize(
    "rand_augment, mixup, cutmix",
    [(False, 0.2, 0.0), (False, 0.0, 1.0), (True, 0.2, 1.0)],  # RandAugment traces slowly.
)
def test_augmentation_options_give_one_hot_labels(rand_augment, mixup, cutmix):
    training = data.make_dataset(
        "digits", "train", batch_size=16, training=True, seed=0, one_hot=rand_augment,
        rand_augment=rand_augment, mixup=mixup, cutmix=cutmix, take=64,
    )
    batches = epoch(training)
    for images, labels in batches:
        assert images.shape == (16, 8, 8, 1) and np.all(np.isfinite(images))
        assert labels.shape == (16, 10) and labels.dtype == np.float32
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
        assert labels.min() >= 0
    if mixup or cutmix:
        assert any(np.any(labels.max(axis=1) < 0.999) for _, labels in batches)  # Some mixing.

    # Evaluation ignores the augmentations but keeps one-hot labels, so one loss fits both.
    evaluation = data.make_dataset("digits", "test", batch_size=360, mixup=mixup, cutmix=cutmix,
                                   one_hot=rand_augment)
    (_, labels), = epoch(evaluation)
    np.testing.assert_array_equal(labels, np.eye(10)[data.load_digits_arrays("test")[1]])


def test_rand_augment_on_rgb(mock_tfds):
    training = data.make_dataset("cifar10", "train", batch_size=5, training=True, seed=0,
                                 rand_augment=True, cutmix=1.0, **mock_tfds)
    for images, labels in epoch(training):
        assert images.shape == (5, 32, 32, 3) and np.all(np.isfinite(images))
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)


def test_calibration_images(mock_tfds):
    images = data.calibration_images("digits", num_samples=100)
    expected = epoch(data.make_dataset("digits", "train", batch_size=100))[0][0]
    np.testing.assert_array_equal(images, expected)
    images = data.calibration_images("imagenet2012", num_samples=8, image_size=32, **mock_tfds)
    assert images.shape == (8, 32, 32, 3)
    assert_normalised(images, "imagenet2012")


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"name": "foo"}, "name='foo'"),
        ({"split": "valid"}, "split='valid'"),
        ({"split": "train[:10%]+dev"}, "split='train[:10%]+dev'"),
        ({"mixup": 1.5}, "mixup=1.5"),
        ({"cutmix": -0.1}, "cutmix=-0.1"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_arguments_raise(kwargs, received):
    kwargs = {"name": "digits", "split": "train", "batch_size": 8, **kwargs}
    with pytest.raises(ValueError, match=re.escape("Received: " + received)) as error:
        data.make_dataset(**kwargs)
    if "name" in received:
        assert "cifar10, cifar100, digits, imagenet2012, mnist" in str(error.value)


def test_unknown_digits_split_raises():
    with pytest.raises(ValueError, match="split='validation'"):
        data.load_digits_arrays("validation")


def test_center_crop_keeps_aspect_ratio():
    # A 64x128 image whose left and right quarters-ish are red: 28/0.875 = 32, so the shorter side
    # goes 64 -> 32 and the central 28 of the 64 resized columns are original columns 36..92.
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, :, 1] = 255
    image[:, :30] = image[:, 98:] = (255, 0, 0)
    jpeg = tf.io.encode_jpeg(image, quality=100)
    cropped = augment.decode_and_center_crop(jpeg, 28).numpy()
    assert cropped.shape == (28, 28, 3)
    assert cropped[..., 0].max() < 40 and cropped[..., 1].min() > 215
