"""Optical-flow data: MPI-Sintel and FlyingChairs folders, tf.data pipelines, the zero-flow baseline.

Every pipeline yields `(frames, flow)`: frames float32 (2, H, W, 3), RGB in [0, 1] (DeepMind's
checkpoint wants [-1, 1]: `2 * frames - 1`), and flow float32 (H, W, 2) in pixels, (u, v) =
(right, down), the forward flow from frame 1 to frame 2 (see `zoo.optical_flow.augment`); batched,
(B, 2, H, W, 3) and (B, H, W, 2), the model's layout. `sintel_files` and `flying_chairs_files` list
and check a dataset's folder, `pair_dataset` decodes the pairs in order, `make_flow_dataset`
shuffles, augments and batches them; the offline synthetic dataset is `zoo.optical_flow.synthetic`.
Corrupt or mismatched files raise errors that name the file; the file formats (`read_flo`,
`write_flo`, `decode_flo`, re-exported here) are in `zoo.optical_flow.formats`.

Example:
    >>> files = sintel_files("/data/MPI-Sintel", pass_name="final")
    >>> ds = make_flow_dataset(files, batch_size=8, training=True, crop_size=(368, 496), seed=0)
    >>> print(zero_flow_epe(make_flow_dataset(files, batch_size=8)))  # the baseline to beat
"""

from __future__ import annotations

import collections
import os

import numpy as np
import tensorflow as tf

from zoo.optical_flow import augment
from zoo.decoding import read_image
from zoo.optical_flow.formats import (  # noqa: F401  (read_flo, write_flo, decode_flo: re-exported)
    decode_flo, decode_ppm, header_size, read_flo, read_ppm, write_flo,
)

AUTOTUNE = tf.data.AUTOTUNE
SINTEL_PASSES = ("clean", "final")
FLYING_CHAIRS_SPLITS = {"train": 1, "validation": 2}  # The labels of FlyingChairs_train_val.txt.
FlowFiles = collections.namedtuple("FlowFiles", ["frame1", "frame2", "flow"])


def sintel_files(root: str, *, pass_name: str = "clean", split: str = "training") -> list[FlowFiles]:
    """Lists MPI-Sintel's pairs: frames i and i + 1 of each scene with flow i, scene by scene.

    Layout: `root/training/{clean,final}/<scene>/frame_XXXX.png` and
    `root/training/flow/<scene>/frame_XXXX.flo` (flow XXXX goes from frame XXXX to the next).

    Args:
        root: the folder holding `training/`.
        pass_name: "clean" or "final" (motion blur, defocus, atmospheric effects).
        split: "training", the only split with ground truth (1041 pairs).

    Raises:
        ValueError: on an unknown pass or split, a missing folder, a scene whose flow files do not
            match its frames, or no pairs.
    """
    if pass_name not in SINTEL_PASSES:
        raise ValueError(f"Unknown pass. Expected one of: {', '.join(SINTEL_PASSES)}. "
                         f"Received: pass_name={pass_name!r}")
    if split != "training":
        raise ValueError(f"Expected split='training' (MPI-Sintel's test split has no ground truth). Received: "
                         f"split={split!r}")
    frame_root, flow_root = (os.path.join(root, split, name) for name in (pass_name, "flow"))
    for folder in (frame_root, flow_root):
        _check_folder(folder, "MPI-Sintel", "root/training/{clean,final,flow}/<scene>/", root)
    files = []
    for scene in sorted(tf.io.gfile.listdir(frame_root)):
        scene = scene.rstrip("/")
        frames = sorted(tf.io.gfile.glob(os.path.join(frame_root, scene, "*.png")))
        flows = sorted(tf.io.gfile.glob(os.path.join(flow_root, scene, "*.flo")))
        expected = [os.path.splitext(os.path.basename(p))[0] + ".flo" for p in frames[:-1]]
        if [os.path.basename(p) for p in flows] != expected:
            raise ValueError(f"Expected one flow file per frame but the last in {os.path.join(flow_root, scene)} "
                             f"({len(expected)} for {len(frames)} frames: {expected[:2]}...). Received: "
                             f"{len(flows)} files {[os.path.basename(p) for p in flows[:2]]}...")
        files += [FlowFiles(*triple) for triple in zip(frames[:-1], frames[1:], flows)]
    return _nonempty(files, frame_root)


def flying_chairs_files(root: str, *, split: str = "train", split_file: str | None = None) -> list[FlowFiles]:
    """Lists FlyingChairs' pairs `root/data/XXXXX_img{1,2}.{ppm,png}` with `XXXXX_flow.flo`.

    Args:
        root: the folder holding `data/`.
        split: "train" or "validation" (pairs labelled 1 or 2 in the official split file, 22232 and
            640 pairs), or "all".
        split_file: the official `FlyingChairs_train_val.txt`, one label per pair in order; default
            `root/FlyingChairs_train_val.txt`. Not read for "all".

    Raises:
        ValueError: on an unknown split, a missing folder, image or flow file, a missing or
            mismatched split file, or no pairs.
    """
    if split not in (*FLYING_CHAIRS_SPLITS, "all"):
        raise ValueError(f"Unknown split. Expected one of: train, validation, all. Received: split={split!r}")
    data_dir = os.path.join(root, "data")
    _check_folder(data_dir, "FlyingChairs", "root/data/XXXXX_img1.ppm", root)
    first_frames = sorted(tf.io.gfile.glob(os.path.join(data_dir, "*_img1.ppm"))
                          + tf.io.gfile.glob(os.path.join(data_dir, "*_img1.png")))
    files = []
    for frame1 in first_frames:
        stem, extension = frame1[:-len("_img1.ppm")], os.path.splitext(frame1)[1]
        triple = FlowFiles(frame1, f"{stem}_img2{extension}", f"{stem}_flow.flo")
        for path in triple[1:]:
            if not tf.io.gfile.exists(path):
                raise ValueError(f"Expected the file {path}, the pair of {frame1}. Received: no such file")
        files.append(triple)
    _nonempty(files, data_dir)
    if split == "all":
        return files
    split_file = split_file or os.path.join(root, "FlyingChairs_train_val.txt")
    if not tf.io.gfile.exists(split_file):
        raise ValueError(f"split={split!r} needs FlyingChairs' split file (one label per pair: 1 = train, "
                         f"2 = validation); pass split='all' to read every pair. Received: no file {split_file}")
    with tf.io.gfile.GFile(split_file) as f:
        labels = [line.strip() for line in f if line.strip()]
    if len(labels) != len(files) or not set(labels) <= {"1", "2"}:
        raise ValueError(f"Expected {split_file} to hold one label 1 or 2 per pair ({len(files)} pairs in "
                         f"{data_dir}). Received: {len(labels)} lines, labels {sorted(set(labels))[:5]}")
    return [triple for triple, label in zip(files, labels) if int(label) == FLYING_CHAIRS_SPLITS[split]]


def pair_dataset(files: list[FlowFiles]) -> tf.data.Dataset:
    """Decodes `files` in order -> unbatched `(frames, flow)` with static shapes.

    Every file's header is read first (tens of microseconds a file): all frames and flows must have
    one size, the first pair's.

    Raises:
        ValueError: naming the file, on no files, an unreadable header or a different size.
    """
    height, width = _common_size(_nonempty(list(files), "`files`"))
    return _paths(files).map(_decoder(height, width), num_parallel_calls=AUTOTUNE)


def make_flow_dataset(
    files: list[FlowFiles],
    *,
    batch_size: int,
    training: bool = False,
    crop_size: tuple[int, int] | None = None,
    scale_range: tuple[float, float] = (0.8, 1.25),
    photometric: bool = True,
    seed: int | None = None,
    take: int | None = None,
    shuffle_buffer: int = 10_000,
    repeat: bool = False,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Batched `(frames, flow)` of a folder's pairs, shuffled and augmented when training.

    Training: shuffle the file list, then per pair (stateless, one seed per pair, new every
    epoch): random scale and crop to `crop_size` (when given), flips, and `photometric` jitter.
    Evaluation: the pairs in order, centre-cropped to `crop_size` when given.

    Args:
        files: from `sintel_files` or `flying_chairs_files`.
        batch_size: pairs per batch.
        training: shuffle and augment.
        crop_size: (height, width) of the output frames; None keeps the full frames. Training
            upscales frames smaller than this; evaluation needs frames at least this large.
        scale_range: range of the random resize factor (training with `crop_size`).
        photometric: colour jitter and noise when training.
        seed: makes the shuffling and augmentation reproducible.
        take: keep only the first `take` pairs (before shuffling).
        shuffle_buffer: size of the (file-name) shuffle buffer.
        repeat: repeat indefinitely.
        drop_remainder: drop the last partial batch; defaults to `training`.
    """
    for arg, value in (("batch_size", batch_size), ("take", take)):
        if value is not None and value < 1:
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value}")
    if crop_size is not None and (len(crop_size) != 2 or min(crop_size) < 1):
        raise ValueError(f"Expected crop_size=(height, width) of positive ints. Received: crop_size={crop_size}")
    files = list(files)[:take]
    height, width = _common_size(_nonempty(files, "`files`"))
    if not training and crop_size is not None and (crop_size[0] > height or crop_size[1] > width):
        raise ValueError(f"Expected crop_size within the frames ({height}, {width}) for evaluation. "
                         f"Received: crop_size={crop_size}")
    ds = _paths(files)
    if training:
        ds = ds.shuffle(min(shuffle_buffer, len(files)), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(_decoder(height, width), num_parallel_calls=AUTOTUNE)
    if training:
        @tf.autograph.experimental.do_not_convert  # No tensor-dependent Python control flow.
        def augment_pair(pair, pair_seed):
            (frames, flow), seeds = pair, tf.unstack(tf.random.experimental.stateless_split(pair_seed, 3))
            if crop_size is not None:
                frames, flow = augment.random_scale_crop(frames, flow, seeds[0], crop_size, scale_range)
            frames, flow = augment.random_flip(frames, flow, seeds[1])
            return (augment.photometric_jitter(frames, seeds[2]) if photometric else frames), flow

        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(augment_pair, num_parallel_calls=AUTOTUNE)
    elif crop_size is not None:
        ds = ds.map(lambda frames, flow: augment.center_crop(frames, flow, crop_size), num_parallel_calls=AUTOTUNE)
    drop_remainder = training if drop_remainder is None else drop_remainder
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)


def end_point_error(flow_true, flow_pred) -> float:
    """Mean over pixels of ||flow_pred - flow_true||_2, for arrays (..., 2) of the same shape."""
    difference = np.asarray(flow_pred, np.float64) - np.asarray(flow_true, np.float64)
    return float(np.mean(np.linalg.norm(difference, axis=-1)))


def zero_flow_epe(dataset: tf.data.Dataset) -> float:
    """The end-point error of predicting zero flow everywhere: the mean flow magnitude.

    Args:
        dataset: finite, of `(frames, flow)`, batched or not; every pixel counts once.
    """
    total, count = 0.0, 0
    for _, flow in dataset.as_numpy_iterator():
        magnitude = np.linalg.norm(flow.astype(np.float64), axis=-1)
        total, count = total + magnitude.sum(), count + magnitude.size
    if count == 0:
        raise ValueError("Expected a dataset with at least one flow pixel. Received: an empty dataset")
    return total / count


def _common_size(files: list[FlowFiles]) -> tuple[int, int]:
    expected = header_size(files[0].frame1)
    for triple in files:
        for path in triple:
            size = header_size(path)
            if size != expected:
                raise ValueError(f"Expected every frame and flow of a dataset to be {expected[0]}x{expected[1]} "
                                 f"(height x width, like {files[0].frame1}). Received: {size[0]}x{size[1]} for {path}")
    return expected


def _decoder(height: int, width: int):
    def decode_frame(path):
        ppm = lambda: tf.numpy_function(  # noqa: E731
            lambda c, p: decode_ppm(c, p.decode()), [tf.io.read_file(path), path], tf.uint8, stateful=False)
        image = tf.cond(tf.strings.regex_full_match(path, r".*\.ppm"), ppm, lambda: read_image(path))
        return tf.image.convert_image_dtype(tf.ensure_shape(image, [height, width, 3]), tf.float32)

    @tf.autograph.experimental.do_not_convert
    def decode(frame1, frame2, flow):
        frames = tf.stack([decode_frame(frame1), decode_frame(frame2)])
        return frames, tf.ensure_shape(decode_flo(tf.io.read_file(flow), flow), [height, width, 2])

    return decode


def _paths(files: list[FlowFiles]) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(tuple(list(column) for column in zip(*files)))


def _check_folder(folder: str, dataset: str, layout: str, root: str) -> None:
    if not tf.io.gfile.isdir(folder):
        raise ValueError(f"Expected the {dataset} folder {folder} (layout {layout}). Received: root={root!r}")


def _nonempty(files: list, where: str) -> list:
    if not files:
        raise ValueError(f"Expected at least one frame pair. Received: none in {where}")
    return files
