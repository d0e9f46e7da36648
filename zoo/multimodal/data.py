"""Audio-visual data for multimodal autoencoding: UCF101 (TFDS), folders of clips, trivial baselines.

Every pipeline yields `(x, y)` with y equal to x (autoencoding: the targets are the inputs), the
dict the model takes:
- "image": float32 (B, T, H, W, 3), RGB frames in [0, 1];
- "audio": float32 (B, S, 1), the mono waveform in [-1, 1];
- "label": float32 one-hot (B, K).

| source | function | audio |
|---|---|---|
| TFDS `ucf101` (101 actions) | `ucf101_dataset` | none stored: silence (zeros), `UCF101_HAS_AUDIO` is False |
| `root/<class>/<clip>/` frames + one .wav | `clip_folder`, `folder_dataset` | the clip's .wav |
| offline synthetic shapes and tones | `zoo.multimodal.synthetic.synthetic_av_dataset` | class tones |

Clips become T frames: frames `start + i * frame_stride`, with the window centred in the clip
for evaluation and at a random start when training (a UCF101 clip shorter than the window loops;
a folder's clips must be long enough). Each
frame is centre-cropped to the output's aspect ratio and resized (antialiased) to H x W; training
crops a random window of 75-100% of that side instead and flips half of the clips horizontally.
The audio window starts at the first chosen frame's time (`frames_per_second`) and takes S
consecutive samples at the file's own rate (shifted back where the audio ends first).

The trivial baselines to compare a model with (mean-prediction PSNR, majority-class and chance
accuracy) are in `zoo.multimodal.baselines`.

Example:
    >>> folder = clip_folder("/data/clips/train")
    >>> ds = folder_dataset(folder, num_frames=8, frame_size=(32, 32), num_audio_samples=4096,
    ...                     batch_size=8, training=True, seed=0)
"""

from __future__ import annotations

import collections
import dataclasses
import os
import wave

import numpy as np
import tensorflow as tf

from zoo.decoding import read_image, read_wav

AUTOTUNE = tf.data.AUTOTUNE
UCF101_NUM_CLASSES = 101
UCF101_HAS_AUDIO = False  # TFDS's ucf101 keeps the frames only: its pipeline's audio is zeros.
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ClipFiles = collections.namedtuple("ClipFiles", ["frames", "audio", "label", "num_audio_samples"])


@dataclasses.dataclass(frozen=True)
class ClipFolder:
    """A listed folder of clips: `clips` (frame paths in name order, .wav path, label, audio
    length), `class_names` (label i is class_names[i]) and the common `sample_rate` in Hz."""

    clips: list[ClipFiles]
    class_names: list[str]
    sample_rate: int


def ucf101_dataset(
    split: str,
    *,
    num_frames: int,
    frame_size: tuple[int, int],
    num_audio_samples: int,
    batch_size: int,
    training: bool = False,
    frame_stride: int = 1,
    seed: int | None = None,
    name: str = "ucf101",
    data_dir: str | None = None,
    shuffle_buffer: int = 64,
    take: int | None = None,
    repeat: bool = False,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Batched UCF101 clips from TensorFlow Datasets; the audio is silence (TFDS stores none).

    Only the T chosen frames of a clip are decoded (the video's JPEG frames are read undecoded).
    Preparing the dataset downloads 6.5 GB and needs ffmpeg; `name` picks the config:
    "ucf101" is "ucf101/ucf101_1_256" (frames squashed to 256 x 256, split 1), "ucf101/ucf101_1"
    keeps the 320 x 240 frames; "_2" and "_3" are the other official splits.

    Args:
        split: a TFDS split: "train", "test", or sliced, e.g. "train[:90%]".
        num_frames, frame_size, num_audio_samples: T, (H, W) and S of the outputs.
        batch_size: clips per batch.
        training: shuffle, random temporal window, crop and flip.
        frame_stride: take every `frame_stride`-th frame (UCF101 has 25 frames per second).
        seed: makes the shuffling and augmentation reproducible.
        name: the TFDS name, optionally with a config.
        data_dir: TFDS data directory.
        shuffle_buffer: clips in the shuffle buffer (each holds all its encoded frames).
        take: keep only the first `take` clips (before shuffling).
        repeat: repeat indefinitely.
        drop_remainder: drop the last partial batch; defaults to `training`.

    Raises:
        ValueError: on a name other than ucf101's, or a size or count below 1.
    """
    import tensorflow_datasets as tfds  # Imported here: it is slow to import.

    _check_sizes(num_frames, frame_size, num_audio_samples, batch_size, frame_stride, take)
    if name.split("/")[0].split(":")[0] != "ucf101":
        raise ValueError(f"Expected name 'ucf101' or 'ucf101/<config>'. Received: name={name!r}")
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    ds = builder.as_dataset(split=split, shuffle_files=training and take is None,
                            decoders={"video": tfds.decode.SkipDecoding()},
                            read_config=tfds.ReadConfig(shuffle_seed=seed))
    if take is not None:
        ds = ds.take(take)
    silence = tf.zeros([num_audio_samples, 1])

    def load(example, clip_seed=None):
        frames = example["video"]
        indices, _ = _frame_indices(tf.shape(frames)[0], num_frames, frame_stride, clip_seed)
        image = _decode_frames(tf.gather(frames, indices), frame_size, clip_seed)
        return {"image": image, "audio": silence, "label": tf.one_hot(example["label"], UCF101_NUM_CLASSES)}

    return _finish(ds, load, batch_size, training, seed, shuffle_buffer, repeat, drop_remainder)


def clip_folder(root: str, *, class_names: list[str] | None = None) -> ClipFolder:
    """Lists and checks `root/<class_name>/<clip>/`: frame images (sorted by name) and one .wav.

    Frames are PNG, JPEG, BMP or GIF files, all of one size within a clip; the .wav holds 16-bit
    PCM (mono, or channels averaged), at one sample rate for the whole folder. Every frame's header
    is read (measured: about 0.1 ms a frame on local disk).

    Args:
        root: the folder of class folders (one root per split, e.g. `clips/train`).
        class_names: the labels' order; default the sorted class folders. Pass the training
            folder's `class_names` to a validation folder so that labels agree.

    Raises:
        ValueError: naming the folder or file, on a missing root, a class folder not in
            `class_names`, no clips, a clip without frames or without exactly one .wav, an
            unreadable frame or .wav, frames of different sizes or different sample rates.
    """
    from PIL import Image  # Headers only; Pillow comes with matplotlib.

    if not tf.io.gfile.isdir(root):
        raise ValueError(f"Expected a folder of clips (layout root/<class>/<clip>/ holding frames and one .wav). "
                         f"Received: root={root!r}, not a folder")
    found = sorted(d.rstrip("/") for d in tf.io.gfile.listdir(root) if tf.io.gfile.isdir(os.path.join(root, d)))
    if class_names is not None and not set(found) <= set(class_names):
        raise ValueError(f"Expected class folders among class_names={list(class_names)}. Received: "
                         f"{sorted(set(found) - set(class_names))} in {root}")
    class_names = list(class_names if class_names is not None else found)
    clips, rates = [], {}
    for label, name in enumerate(class_names):
        class_dir = os.path.join(root, name)
        for clip in sorted(tf.io.gfile.listdir(class_dir) if name in found else []):
            clip = os.path.join(class_dir, clip.rstrip("/"))
            if not tf.io.gfile.isdir(clip):
                continue
            files = sorted(tf.io.gfile.listdir(clip))
            frames = [os.path.join(clip, f) for f in files if f.lower().endswith(FRAME_EXTENSIONS)]
            wavs = [os.path.join(clip, f) for f in files if f.lower().endswith(".wav")]
            if not frames:
                raise ValueError(f"Expected frame images ({', '.join(FRAME_EXTENSIONS)}) in {clip}. Received: none")
            if len(wavs) != 1:
                raise ValueError(f"Expected one .wav file in {clip}. Received: {len(wavs)} {wavs[:3]}")
            sizes = {path: _image_size(path, Image) for path in frames}
            if len(set(sizes.values())) > 1:
                odd = next(p for p, s in sizes.items() if s != sizes[frames[0]])
                raise ValueError(f"Expected every frame of a clip to be {sizes[frames[0]]} (width, height), like "
                                 f"{frames[0]}. Received: {sizes[odd]} for {odd}")
            rate, length = _wav_header(wavs[0])
            rates.setdefault(rate, wavs[0])
            clips.append(ClipFiles(tuple(frames), wavs[0], label, length))
    if not clips:
        raise ValueError(f"Expected at least one clip folder in root/<class>/. Received: none in {root}")
    if len(rates) > 1:
        raise ValueError(f"Expected one sample rate for every .wav in {root}. Received: "
                         + ", ".join(f"{rate} Hz ({path})" for rate, path in rates.items()))
    return ClipFolder(clips, class_names, next(iter(rates)))


def folder_dataset(
    folder: ClipFolder | str,
    *,
    num_frames: int,
    frame_size: tuple[int, int],
    num_audio_samples: int,
    batch_size: int,
    training: bool = False,
    frame_stride: int = 1,
    frames_per_second: float = 25.0,
    seed: int | None = None,
    shuffle_buffer: int = 1000,
    take: int | None = None,
    repeat: bool = False,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Batched clips of a `clip_folder` (or its root): labels one-hot over `folder.class_names`.

    Args:
        folder: a `ClipFolder`, or a root to list with `clip_folder`.
        num_frames, frame_size, num_audio_samples: T, (H, W) and S of the outputs.
        batch_size: clips per batch.
        training: shuffle, random temporal window, crop and flip.
        frame_stride: take every `frame_stride`-th frame.
        frames_per_second: the frame rate on disk, which places the audio window.
        seed: makes the shuffling and augmentation reproducible.
        shuffle_buffer: size of the (file-name) shuffle buffer.
        take: keep only the first `take` clips (before shuffling).
        repeat: repeat indefinitely.
        drop_remainder: drop the last partial batch; defaults to `training`.

    Raises:
        ValueError: naming the file, on a clip with fewer than (T - 1) * frame_stride + 1 frames
            or an audio track shorter than S samples.
    """
    folder = clip_folder(folder) if isinstance(folder, str) else folder
    _check_sizes(num_frames, frame_size, num_audio_samples, batch_size, frame_stride, take)
    clips = folder.clips[:take]
    span = (num_frames - 1) * frame_stride + 1
    for clip in clips:
        if len(clip.frames) < span:
            raise ValueError(f"Expected clips of at least {span} frames (num_frames={num_frames}, frame_stride="
                             f"{frame_stride}). Received: {len(clip.frames)} frames in {os.path.dirname(clip.audio)}")
        if clip.num_audio_samples < num_audio_samples:
            raise ValueError(f"Expected at least num_audio_samples={num_audio_samples} audio samples. Received: "
                             f"{clip.num_audio_samples} in {clip.audio}")
    samples_per_frame = folder.sample_rate / frames_per_second
    ds = tf.data.Dataset.from_tensor_slices({
        "frames": tf.ragged.constant([list(clip.frames) for clip in clips]),
        "audio": [clip.audio for clip in clips],
        "label": [clip.label for clip in clips],
    })

    def load(clip, clip_seed=None):
        indices, start = _frame_indices(tf.size(clip["frames"]), num_frames, frame_stride, clip_seed)
        frames = tf.map_fn(read_image, tf.gather(clip["frames"], indices),
                           fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
        waveform = tf.reduce_mean(read_wav(clip["audio"]), axis=1)
        begin = tf.cast(tf.round(tf.cast(start, tf.float32) * samples_per_frame), tf.int32)
        begin = tf.clip_by_value(begin, 0, tf.size(waveform) - num_audio_samples)
        return {"image": _crop_frames(frames, frame_size, clip_seed),
                "audio": tf.ensure_shape(waveform[begin:begin + num_audio_samples, None], [num_audio_samples, 1]),
                "label": tf.one_hot(clip["label"], len(folder.class_names))}

    return _finish(ds, load, batch_size, training, seed, min(shuffle_buffer, len(clips)), repeat, drop_remainder)


def write_clip(folder: str, frames: np.ndarray, audio: np.ndarray, sample_rate: int) -> None:
    """Writes a clip as `folder/frame_0000.png`, ... and `folder/audio.wav` (16-bit PCM).

    Args:
        frames: (T, H, W, 3) uint8, or float in [0, 1].
        audio: (S,) or (S, channels), float in [-1, 1].
    """
    frames, audio = np.asarray(frames), np.asarray(audio, np.float32)
    if frames.dtype != np.uint8:
        frames = np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)
    tf.io.gfile.makedirs(folder)
    for i, frame in enumerate(frames):
        tf.io.write_file(os.path.join(folder, f"frame_{i:04d}.png"), tf.io.encode_png(frame))
    audio = audio[:, None] if audio.ndim == 1 else audio
    tf.io.write_file(os.path.join(folder, "audio.wav"), tf.audio.encode_wav(np.clip(audio, -1, 1), sample_rate))


def _check_sizes(num_frames, frame_size, num_audio_samples, batch_size, frame_stride, take) -> None:
    if len(frame_size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in frame_size):
        raise ValueError(f"Expected frame_size=(height, width), positive ints. Received: frame_size={frame_size!r}")
    for arg, value in (("num_frames", num_frames), ("num_audio_samples", num_audio_samples),
                       ("batch_size", batch_size), ("frame_stride", frame_stride), ("take", take)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value!r}")


def _frame_indices(available, num_frames: int, frame_stride: int, seed=None):
    """The T frame indices (looping past the end of a short clip) and the window's first frame."""
    latest = tf.maximum(available - (num_frames - 1) * frame_stride - 1, 0)
    if seed is None:
        start = latest // 2
    else:
        start = tf.random.stateless_uniform([], seed, 0, latest + 1, tf.int32)
    return (start + frame_stride * tf.range(num_frames)) % available, start


def _decode_frames(encoded, frame_size, seed=None):
    """Encoded frames (T,) -> float32 (T, H, W, 3) in [0, 1]: one crop for the clip, then a resize."""
    frames = tf.map_fn(lambda contents: tf.io.decode_image(contents, channels=3, expand_animations=False),
                       encoded, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    return _crop_frames(frames, frame_size, seed)


def _crop_frames(frames, frame_size, seed=None):
    """uint8 frames (T, h, w, 3) -> float32 (T, H, W, 3) in [0, 1]: one crop for the clip, then a resize."""
    height, width = frame_size
    size = tf.cast(tf.shape(frames)[1:3], tf.float32)
    window = tf.constant([height, width], tf.float32) * tf.reduce_min(size / [height, width])
    if seed is None:
        corner = (size - window) / 2
    else:
        zoom_seed, corner_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        window = window * tf.random.stateless_uniform([], zoom_seed, 0.75, 1.0)
        corner = tf.random.stateless_uniform([2], corner_seed) * (size - window)
    window = tf.maximum(tf.cast(tf.round(window), tf.int32), 1)
    corner = tf.cast(tf.floor(corner), tf.int32)
    frames = frames[:, corner[0]:corner[0] + window[0], corner[1]:corner[1] + window[1]]
    frames = tf.image.resize(tf.cast(frames, tf.float32) / 255.0, [height, width], antialias=True)
    if seed is not None:
        flip = tf.random.stateless_uniform([], flip_seed) < 0.5
        frames = tf.where(flip, tf.reverse(frames, [2]), frames)
    return tf.ensure_shape(tf.clip_by_value(frames, 0.0, 1.0), [None, height, width, 3])


def _finish(ds, load, batch_size, training, seed, shuffle_buffer, repeat, drop_remainder) -> tf.data.Dataset:
    """Shuffles, loads, batches and pairs `(x, x)`: the tail shared by the file-backed pipelines."""
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:  # One stateless seed per clip, new every epoch, reproducible given `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
    ds = ds.map(tf.autograph.experimental.do_not_convert(load), num_parallel_calls=AUTOTUNE)
    drop_remainder = training if drop_remainder is None else drop_remainder
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(lambda x: (x, x)).prefetch(AUTOTUNE)


def _open(path: str):
    """Local files through Python (measured 5-10x faster than tf.io.gfile for headers), others through gfile."""
    return tf.io.gfile.GFile(path, "rb") if "://" in path else open(path, "rb")


def _image_size(path: str, image_module) -> tuple[int, int]:
    try:
        with _open(path) as f, image_module.open(f) as image:
            return image.size
    except Exception as error:  # noqa: BLE001  (Pillow raises several kinds)
        raise ValueError(f"Expected an image file (PNG, JPEG, BMP or GIF). Received: {path} "
                         f"({type(error).__name__}: {error})") from error


def _wav_header(path: str) -> tuple[int, int]:
    """(sample rate, samples per channel) of a 16-bit PCM .wav, the format tf.audio.decode_wav reads."""
    try:
        with _open(path) as f, wave.open(f) as reader:
            width, rate, length = reader.getsampwidth(), reader.getframerate(), reader.getnframes()
    except (wave.Error, EOFError) as error:
        raise ValueError(f"Expected a 16-bit PCM .wav file. Received: {path} ({error})") from error
    if width != 2:
        raise ValueError(f"Expected a 16-bit PCM .wav file. Received: {8 * width}-bit samples in {path}")
    return rate, length
