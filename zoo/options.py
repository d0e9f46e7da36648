"""The training options of `python -m zoo train` and `tune`: their flags, valid values and the tasks that read them.

One table serves the command line (each option's argparse `type` or `choices` refuses a bad value
as it is parsed, naming the flag) and the Python API (`check_options`, which `zoo.training.train`
and `zoo.tuning.tune` call before anything is built or written). Every count is at least 1: 0 never
silently means "the default". An option that a task does not read is refused, naming the task and
the options it takes, rather than ignored (`--eval-take` for image classification, which always
tests on the whole test split).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.arguments import COUNT, NON_NEGATIVE_INT, Number

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("lamb", "adamw")  # zoo.schedules' (pinned by tests/test_cli_errors.py)
SCHEDULES = ("constant", "cosine", "flat_cosine")
CORPORA = ("c4", "wikipedia", "text_files", "pydoc")  # zoo.language.data.SOURCES
FLOW_DATASETS = ("synthetic_flow", "sintel", "flying_chairs")  # zoo.optical_flow.task.DATASETS
SINTEL_PASSES = ("clean", "final")  # zoo.optical_flow.data.SINTEL_PASSES
MULTIMODAL_DATASETS = ("synthetic_audiovisual", "ucf101", "clip_folder")  # zoo.multimodal.task.DATASETS
SEED = Number(int, 0, 2**32 - 1)  # NumPy's seed range
POSITIVE = Number(float, 0, low_open=True)
NON_NEGATIVE = Number(float, 0)
UNIT = Number(float, 0, 1)  # [0, 1]
FRACTION = Number(float, 0, 1, high_open=True)  # [0, 1)
OPEN_FRACTION = Number(float, 0, 1, low_open=True, high_open=True)  # (0, 1)


def labels(text: str) -> list[int]:
    """`--classes 6,7,8,9`: distinct non-negative integer labels."""
    try:
        values = [int(label) for label in text.split(",")]
    except ValueError:
        values = None
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated labels >= 0, e.g. 6,7,8,9. "
                                         f"Received: {text!r}")
    return values


@dataclasses.dataclass(frozen=True)
class Option:
    """A training option: its help text, its argparse `type` (a `Number` is also checked in Python) or choices."""

    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None

    def check(self, name: str, value: Any) -> None:
        """Raises a ValueError naming the flag when `value` (given in Python) is not valid."""
        if isinstance(self.type, Number):
            self.type.check(flag(name), value)
        elif self.choices is not None and value not in self.choices:
            raise ValueError(f"{flag(name)} must be one of {', '.join(self.choices)}. Received: {flag(name)} {value!r}")


TRAINING_OPTIONS = {
    "epochs": Option("epochs to train", COUNT),
    "batch_size": Option("global batch size", COUNT),
    "optimizer": Option("lamb or adamw", choices=OPTIMIZERS),
    "learning_rate": Option("peak learning rate", POSITIVE),
    "weight_decay": Option("decoupled weight decay (skips biases, norms, position encodings)", NON_NEGATIVE),
    "schedule": Option("flat_cosine, cosine or constant", choices=SCHEDULES),
    "warmup_epochs": Option("linear warm-up epochs (0: none; at most --epochs)", NON_NEGATIVE_INT),
    "label_smoothing": Option("label smoothing of the cross-entropy, in [0, 1)", FRACTION),
    "ema_momentum": Option("keep an exponential moving average of the weights (e.g. 0.99)", OPEN_FRACTION),
    "precision": Option("float32, mixed_bfloat16 or mixed_float16", choices=PRECISIONS),
    "seed": Option("random seed", SEED),
    "steps_per_epoch": Option("cap on steps per epoch", COUNT),
    "mixup": Option("MixUp alpha in [0, 1] (0 disables)", UNIT),
    "cutmix": Option("CutMix factor in [0, 1] (0 disables)", UNIT),
    "data_dir": Option("TensorFlow Datasets data directory; optical flow: the Sintel or FlyingChairs folder"),
    "manual_dir": Option("TFDS manual download directory (ImageNet)"),
    "take": Option("train on the first N examples only", COUNT),
    "eval_take": Option("evaluate on the first N examples only", COUNT),
    "classes": Option("image classification: train and test on these labels only, relabelled 0..K-1 in this "
                      "order, e.g. 6,7,8,9 with --set num_classes=4", labels),
    "corpus": Option("masked LM corpus (default: the preset's)", choices=CORPORA),
    "text_files": Option("masked LM corpus files: a .txt file, a folder or a glob"),
    "mask_probability": Option("masked LM: fraction of words masked (0.15)", OPEN_FRACTION),
    "flow_dataset": Option("optical flow dataset (default: the preset's)", choices=FLOW_DATASETS),
    "sintel_pass": Option("optical flow: Sintel's clean or final pass (clean)", choices=SINTEL_PASSES),
    "decoded_pixels": Option("optical flow, multimodal: pixels decoded per example in a training step (subsampled "
                             "decoding)", COUNT),
    "max_flow": Option("optical flow, synthetic pairs: the largest flow in pixels", POSITIVE),
    "window_candidates": Option("optical flow, synthetic pairs: keep the most textured of K random windows", COUNT),
    "multimodal_dataset": Option("multimodal dataset (default: the preset's)", choices=MULTIMODAL_DATASETS),
    "decoded_audio_patches": Option("multimodal: audio patches decoded per clip in a training step", COUNT),
    "image_loss_weight": Option("multimodal: weight of the video L1 (paper 0.03)", NON_NEGATIVE),
    "audio_loss_weight": Option("multimodal: weight of the audio L1 (paper 1)", NON_NEGATIVE),
    "label_loss_weight": Option("multimodal: weight of the label cross-entropy (paper 0.0001)", NON_NEGATIVE),
    "tone_period": Option("multimodal, synthetic clips: samples per whole number of tone cycles", COUNT),
    "frame_stride": Option("multimodal, ucf101 and clip_folder: keep every n-th frame", COUNT),
    "frames_per_second": Option("multimodal, clip_folder: frame rate of the clips (25)", POSITIVE),
}
"""The options `python -m zoo train` and `tune` take as `--name-with-dashes VALUE`."""

SWITCHES = ("rand_augment", "jit_compile")
"""Options given as flags without a value (`--rand-augment`, `--jit` / `--no-jit`)."""
API_OPTIONS = ("augment", "tensorboard", "init_from", "freeze_backbone")
"""Options of `zoo.training.train` with no flag of this name (`--init-from` and `--freeze-backbone` are `train`'s own)."""

COMMON = frozenset({"epochs", "batch_size", "optimizer", "learning_rate", "weight_decay", "schedule", "warmup_epochs",
                    "ema_momentum", "precision", "seed", "steps_per_epoch", "take", "data_dir", "jit_compile",
                    "tensorboard", "init_from", "freeze_backbone"})
"""The options every task reads; a task's `options` attribute names those it reads besides."""

_FLAGS = {"jit_compile": "--jit"}


def flag(name: str) -> str:
    """The CLI flag of an option: "batch_size" -> "--batch-size", "jit_compile" -> "--jit"."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def task_options(task: str) -> frozenset[str]:
    """The options `task` reads: the common ones and its task object's own (`options`)."""
    from zoo import registry

    return COMMON | frozenset(registry.get_task(task).options)


def check_options(task: str, options: dict[str, Any]) -> None:
    """Raises a ValueError, naming the flag, for an option given (not None) that is unknown, invalid or unused.

    Args:
        task: the task the options train, e.g. "image_classification".
        options: training options as `zoo.training.train` takes them (None: not given).
    """
    given = {name: value for name, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(TRAINING_OPTIONS) - set(SWITCHES) - set(API_OPTIONS))
    if unknown:
        raise ValueError(f"Unknown training option(s) {unknown}. Expected some of: "
                         f"{sorted({*TRAINING_OPTIONS, *SWITCHES, *API_OPTIONS})}")
    for name, value in given.items():
        if name in TRAINING_OPTIONS:
            TRAINING_OPTIONS[name].check(name, value)
    for name in ("data_dir", "manual_dir"):  # TFDS may create a missing one; a file is never a folder
        if given.get(name) and Path(given[name]).expanduser().is_file():
            raise NotADirectoryError(f"{flag(name)} {given[name]} is a file; expected a folder.")
    takes = task_options(task)
    unused = sorted(flag(name) for name, value in given.items() if name not in takes and value is not False)
    if unused:
        own = sorted(flag(name) for name in takes - COMMON - set(API_OPTIONS))
        common = sorted(flag(name) for name in COMMON - set(API_OPTIONS))
        raise ValueError(
            f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by task {task}, so "
            f"{'it is' if len(unused) == 1 else 'they are'} refused rather than ignored. Task {task} takes "
            f"{', '.join(own) or 'no options of its own'}, besides the common {', '.join(common)}."
        )


def check_warmup(options: dict[str, Any]) -> None:
    """Warm-up no longer than the run (after the preset's defaults are merged in)."""
    if options.get("warmup_epochs", 0) > options.get("epochs", 1):
        raise ValueError(f"--warmup-epochs must be at most --epochs. Received: --warmup-epochs "
                         f"{options['warmup_epochs']}, --epochs {options['epochs']}")


def check_out(out: str | os.PathLike, what: str = "a run directory (new or an earlier run's)",
              flag_name: str = "--out") -> None:
    """Raises unless `out` is a folder, or one can be made there: a file, a file on the way or no write access is named.

    Raises:
        NotADirectoryError: `out`, or a folder on its way, is a file.
        PermissionError: the folder (or the nearest existing one above it) is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{flag_name} {out} is a file; expected {what}")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{flag_name} {out}: {existing} is a file, so no folder can be made there; "
                                 f"expected {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag_name} {out}: {existing} is not writable, so nothing can be "
                              f"{'written in it' if existing == out else 'created there'}; expected {what}")
