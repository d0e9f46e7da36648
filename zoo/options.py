"""The training options of `python -m zoo train` and `tune`: their flags, valid values and the tasks that read them.

The common options are declared here (`COMMON_OPTIONS`); each task's own are its recipe's
(`zoo.recipe.Recipe.options`), so the command line of a task (`python -m zoo train TASK --help`)
offers exactly the flags that task reads. One declaration serves the command line (each option's
argparse `type` or `choices` refuses a bad value as it is parsed, naming the flag) and the Python
API (`check_options`, which `zoo.training.train` and `zoo.tuning.tune` call before anything is
built or written). Every count is at least 1: 0 never silently means "the default". An option that
a task does not read is refused, naming the task and the options it takes, rather than ignored
(`--eval-take` for image classification, which always tests on the whole test split).
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
OPTIMIZERS = ("lamb", "adamw", "adafactor")  # zoo.schedules' (pinned by tests/test_cli_errors.py)
SCHEDULES = ("constant", "cosine", "flat_cosine", "rsqrt")
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
    """A training option: its help text, its argparse `type` (a `Number` is also checked in Python) or choices.

    A `switch` is a flag without a value (`--rand-augment`): True when given.
    """

    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    switch: bool = False

    def check(self, name: str, value: Any) -> None:
        """Raises a ValueError naming the flag when `value` (given in Python) is not valid."""
        if isinstance(self.type, Number):
            self.type.check(flag(name), value)
        elif self.choices is not None and value not in self.choices:
            raise ValueError(f"{flag(name)} must be one of {', '.join(self.choices)}. Received: {flag(name)} {value!r}")
        elif self.switch and not isinstance(value, bool):
            raise ValueError(f"{flag(name)} is a switch: expected True or False. Received: {flag(name)} {value!r}")
        elif self.type is not str and callable(self.type) and isinstance(value, str):
            try:
                self.type(value)  # e.g. --text-files: a pattern that matches no file
            except argparse.ArgumentTypeError as error:
                raise ValueError(f"{flag(name)}: {error}") from None


COMMON_OPTIONS = {
    "epochs": Option("epochs to train", COUNT),
    "batch_size": Option("global batch size", COUNT),
    "optimizer": Option("lamb, adamw or adafactor", choices=OPTIMIZERS),
    "learning_rate": Option("peak learning rate", POSITIVE),
    "weight_decay": Option("decoupled weight decay (skips biases, norms, position encodings)", NON_NEGATIVE),
    "schedule": Option("flat_cosine, cosine, rsqrt or constant", choices=SCHEDULES),
    "warmup_epochs": Option("linear warm-up epochs (0: none; at most --epochs)", NON_NEGATIVE_INT),
    "ema_momentum": Option("keep an exponential moving average of the weights (e.g. 0.99)", OPEN_FRACTION),
    "precision": Option("float32, mixed_bfloat16 or mixed_float16", choices=PRECISIONS),
    "seed": Option("random seed", SEED),
    "steps_per_epoch": Option("cap on steps per epoch", COUNT),
    "data_dir": Option("TensorFlow Datasets data directory (a task may read its own files there)"),
    "take": Option("train on the first N examples only", COUNT),
}
"""The options of every task, with a value: `python -m zoo train TASK` and `tune TASK` take them as
`--name-with-dashes VALUE`; a task's `zoo.recipe.Recipe.options` adds its own."""

EVAL_TAKE = Option("evaluate on the first N examples only", COUNT)
DECODED_PIXELS = Option("pixels decoded per example in a training step (subsampled decoding)", COUNT)
"""Options that several tasks read, declared once (each recipe lists them under its `options`)."""

API_OPTIONS = ("jit_compile", "tensorboard", "init_from", "freeze_backbone")
"""Options of every task that have no flag of this name: `--jit` / `--no-jit` sets jit_compile;
tensorboard is the Python API's; `--init-from` and `--freeze-backbone` are `train`'s own."""

COMMON = frozenset({*COMMON_OPTIONS, *API_OPTIONS})
"""The options every task reads; a recipe's `options` names those it reads besides."""

_FLAGS = {"jit_compile": "--jit"}


def flag(name: str) -> str:
    """The CLI flag of an option: "batch_size" -> "--batch-size", "jit_compile" -> "--jit"."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def task_options(task: str) -> dict[str, Option]:
    """The options `task` reads with a value or as a switch: the common ones and its recipe's own."""
    from zoo import registry

    return {**COMMON_OPTIONS, **registry.get_recipe(task).options}


def all_options() -> dict[str, Option]:
    """Every task's options: what `check_options` knows (one name means one thing in every task)."""
    from zoo import registry

    found = dict(COMMON_OPTIONS)
    for task in sorted(registry.TASK_MODULES):
        found.update(registry.get_recipe(task).options)
    return found


def check_options(task: str, options: dict[str, Any]) -> None:
    """Raises a ValueError, naming the flag, for an option given (not None) that is unknown, invalid or unused.

    Args:
        task: the task the options train, e.g. "image_classification".
        options: training options as `zoo.training.train` takes them (None: not given).
    """
    given = {name: value for name, value in options.items() if value is not None}
    known = all_options()
    unknown = sorted(set(given) - set(known) - set(API_OPTIONS))
    if unknown:
        raise ValueError(f"Unknown training option(s) {unknown}. Expected some of: {sorted({*known, *API_OPTIONS})}")
    for name, value in given.items():
        if name in known:
            known[name].check(name, value)
    for name in ("data_dir", "manual_dir"):  # TFDS may create a missing one; a file is never a folder
        if given.get(name) and Path(given[name]).expanduser().is_file():
            raise NotADirectoryError(f"{flag(name)} {given[name]} is a file; expected a folder.")
    takes = {*task_options(task), *API_OPTIONS}
    unused = sorted(flag(name) for name, value in given.items() if name not in takes and value is not False)
    if unused:
        raise ValueError(unused_message(task, unused))


def unused_message(task: str, unused: list[str]) -> str:
    """Why flags of other tasks are refused for `task`, and the flags it takes."""
    from zoo import registry

    own = sorted(flag(name) for name in registry.get_recipe(task).options)
    common = sorted(flag(name) for name in COMMON_OPTIONS)
    one = len(unused) == 1
    return (f"{', '.join(unused)} {'is' if one else 'are'} not used by task {task}, so {'it is' if one else 'they are'} "
            f"refused rather than ignored. Task {task} takes {', '.join(own) or 'no options of its own'}, besides the "
            f"common {', '.join(common)}.")


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
        ValueError: `out` is empty (it would be the current folder).
    """
    if not str(out).strip():
        raise ValueError(f"{flag_name} {str(out)!r} is empty; expected {what}")
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
