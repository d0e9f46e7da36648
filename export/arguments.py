"""Command-line arguments refused as they are parsed, named by their flag (shared by `python -m export` and `-m zoo`).

`Number` is a numeric option's valid range: `Number(int, 1)` is a count (0 never stands for a default),
`Number(float, 0, 1, high_open=True)` a fraction. As an argparse `type` it refuses a value outside the
range, a non-finite number or a non-number with "argument --epochs: expected an integer from 1 to
2147483647. Received: '0'"; `Number.check` says the same of a value given in Python.

`ArgumentParser` reports a usage error by raising `UsageError` (its message is argparse's, with the
usage line), so a CLI's `main()` returns status 2 instead of exiting.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import sys
from typing import Any

INT32_MAX = 2**31 - 1
"""The largest count TensorFlow's int32 step and batch counters hold: larger counts are refused."""

EXIT_USAGE = 2
"""The exit status of a usage error, as argparse's."""


@dataclasses.dataclass(frozen=True)
class Number:
    """A numeric option's type and valid range; bounds are closed unless `low_open` / `high_open`.

    Integers are at most `INT32_MAX` unless `high` says otherwise; floats must be finite.
    """

    kind: type = int
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def _high(self) -> float | None:
        return INT32_MAX if self.high is None and self.kind is int else self.high

    def describe(self) -> str:
        """E.g. "an integer from 1 to 2147483647", "a number > 0", "a number in [0, 1)"."""
        low, high = self.low, self._high
        if self.kind is int and low is not None and high is not None:
            return f"an integer from {low} to {high}"
        noun = "an integer" if self.kind is int else "a finite number"
        if low is not None and high is not None:
            return f"{noun} in {'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}"
        if low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {low:g}"
        if high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {high:g}"
        return noun

    def fits(self, value: Any) -> bool:
        """Whether `value` (already a Python number) is of this kind and in range."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real if self.kind is float else numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        low, high = self.low, self._high
        if low is not None and (value <= low if self.low_open else value < low):
            return False
        return high is None or (value < high if self.high_open else value <= high)

    def check(self, flag: str, value: Any) -> Any:
        """`value`, or a ValueError naming `flag` (e.g. "--epochs") and the value received."""
        if not self.fits(value):
            raise ValueError(f"{flag} must be {self.describe()}. Received: {flag} {value!r}")
        return value

    def __call__(self, text: str) -> Any:
        """The argparse `type`: the parsed value, or an error argparse reports under the flag."""
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not self.fits(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}. Received: {text!r}")
        return value

    def __repr__(self) -> str:  # argparse names the type in some messages
        return self.describe()


COUNT = Number(int, 1)
"""1, 2, ...: a number of epochs, steps, examples or runs (0 never means "the default")."""
NON_NEGATIVE_INT = Number(int, 0)


def quantizations(text: str) -> tuple[str, ...]:
    """`--quantize float32,int8`: a non-empty comma-separated subset of `export.QUANTIZATIONS`."""
    from export.tflite import QUANTIZATIONS

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in QUANTIZATIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown quantization {', '.join(unknown) or '(none)'}; expected a comma-separated "
            f"subset of {','.join(QUANTIZATIONS)}. Received: {text!r}"
        )
    return names


class UsageError(Exception):
    """A command line argparse refused; the message is argparse's, after the usage line."""


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors raise `UsageError` instead of exiting.

    The usage line is printed to stderr at once, as argparse does; `main()` prints the error and
    returns `EXIT_USAGE`. Sub-command parsers made by `add_subparsers` are of the same class.
    """

    def error(self, message: str):
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: error: {message}")
