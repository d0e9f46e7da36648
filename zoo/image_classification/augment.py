"""Image augmentations for the tf.data pipelines in `data.py`.

Geometric augmentations are stateless `tf.image` ops driven by an explicit `seed` (a shape-(2,)
integer tensor), so a seeded pipeline is reproducible and still changes from epoch to epoch: the
pipeline draws a fresh seed per example from `tf.data.Dataset.random`. RandAugment, MixUp and
CutMix are Keras preprocessing layers, which are safe inside `tf.data` on every Keras backend.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Inception-style random resized crop (Szegedy et al., 2015), as in timm and torchvision.
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
# Evaluation resizes the shorter side to image_size / CROP_FRACTION (224 -> 256) and takes the
# central image_size square.
CROP_FRACTION = 0.875


def decode_and_random_resized_crop(
    image_bytes: tf.Tensor,
    seed: tf.Tensor,
    image_size: int,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> tf.Tensor:
    """Decodes a random crop of a JPEG and resizes it to a square.

    Only the cropped window is decoded (`tf.image.decode_and_crop_jpeg`), which is what makes
    ImageNet training input-bound on the model rather than on JPEG decoding.

    Args:
        image_bytes: scalar string tensor, a JPEG-encoded RGB image.
        seed: shape-(2,) integer tensor for the stateless window sampler.
        image_size: side of the square output.
        scale: range of the crop area as a fraction of the image area.
        ratio: range of the crop aspect ratio (width / height).

    Returns:
        float32 tensor (image_size, image_size, 3) with values in [0, 255].
    """
    shape = tf.image.extract_jpeg_shape(image_bytes)
    whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4])
    # min_object_covered=0 because the only "object" is the whole image, so its coverage is
    # the crop area, which area_range already bounds. After 10 failed attempts the whole image
    # is used.
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    image = tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)
    return tf.image.resize(image, [image_size, image_size], antialias=True)


def decode_and_center_crop(
    image_bytes: tf.Tensor, image_size: int, crop_fraction: float = CROP_FRACTION
) -> tf.Tensor:
    """Decodes a JPEG, resizes its shorter side and crops the central square.

    The shorter side becomes `floor(image_size / crop_fraction)` (timm's rule: 224 -> 256).

    Args:
        image_bytes: scalar string tensor, a JPEG-encoded RGB image.
        image_size: side of the square output.
        crop_fraction: fraction of the resized shorter side kept by the crop.

    Returns:
        float32 tensor (image_size, image_size, 3) with values in [0, 255].
    """
    image = tf.image.decode_jpeg(image_bytes, channels=3)
    resize_to = int(image_size / crop_fraction)
    height_width = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = resize_to / tf.reduce_min(height_width)
    # max() guards against rounding the shorter side to one pixel below the crop.
    new_size = tf.maximum(tf.cast(tf.round(height_width * factor), tf.int32), resize_to)
    image = tf.image.resize(image, new_size, antialias=True)
    return tf.image.resize_with_crop_or_pad(image, image_size, image_size)


def random_shift(image: tf.Tensor, seed: tf.Tensor, padding: int) -> tf.Tensor:
    """Zero-pads `padding` pixels on every side and crops back to the input size at random.

    This is the usual CIFAR augmentation (padding=4): a translation by up to `padding` pixels
    with black borders. Pad before normalisation so that the border is black, not the mean.

    Args:
        image: float tensor (H, W, C).
        seed: shape-(2,) integer tensor.
        padding: pixels added on each side.

    Returns:
        Tensor of the same shape and dtype as `image`.
    """
    if padding == 0:
        return image
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed)


def random_flip(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flips an (H, W, C) image left to right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


class BatchMixer:
    """Applies MixUp or CutMix to a batch of images with one-hot labels.

    When both are enabled, each batch gets one of the two, chosen with equal probability (as
    timm does), rather than both in sequence.

    Args:
        mixup: MixUp `alpha` (Beta distribution parameter); 0 disables MixUp.
        cutmix: CutMix `factor`; 0 disables CutMix.
        seed: seed of the Keras layers' random generators.

    Example:
        >>> mixer = BatchMixer(mixup=0.2, cutmix=1.0, seed=0)
        >>> images, labels = mixer(tf.zeros([4, 8, 8, 1]), tf.one_hot([0, 1, 2, 3], 10), [1, 2])
    """

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0, seed: int | None = None):
        # float32 always: the pipeline must not follow a mixed-precision global policy.
        self.mixup = keras.layers.MixUp(alpha=mixup, seed=seed, dtype="float32") if mixup > 0 else None
        self.cutmix = keras.layers.CutMix(factor=cutmix, seed=seed, dtype="float32") if cutmix > 0 else None

    def __call__(
        self, images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Mixes a batch.

        Args:
            images: float32 (B, H, W, C).
            labels: float32 one-hot (B, num_classes).
            seed: shape-(2,) integer tensor choosing between MixUp and CutMix.

        Returns:
            The mixed `(images, labels)`; label rows still sum to 1.
        """
        layers = [layer for layer in (self.mixup, self.cutmix) if layer is not None]
        if len(layers) == 1:
            return self._apply(layers[0], images, labels)
        use_mixup = tf.random.stateless_uniform([], seed=seed) < 0.5
        return tf.cond(
            use_mixup,
            lambda: self._apply(self.mixup, images, labels),
            lambda: self._apply(self.cutmix, images, labels),
        )

    @staticmethod
    def _apply(
        layer: keras.layers.Layer, images: tf.Tensor, labels: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        mixed = layer({"images": images, "labels": labels})
        return tf.cast(mixed["images"], tf.float32), tf.cast(mixed["labels"], tf.float32)
