"""The learning-rate schedule the zoo trains with, registered so that a saved optimizer reloads."""

from __future__ import annotations

import math

import keras

from perceiver_keras.saving import register_former_names


@keras.saving.register_keras_serializable(package="perceiver_keras")
class FlatCosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, a flat phase, then cosine decay to zero: the paper's ImageNet schedule.

    With `flat_fraction=0` it is warm-up then cosine decay, the paper's language schedule.

    Args:
        learning_rate: peak learning rate.
        total_steps: steps of the whole run.
        warmup_steps: steps of linear warm-up from 0.
        flat_fraction: fraction of `total_steps` (warm-up included) at the peak before decaying.

    Example:
    >>> schedule = FlatCosineSchedule(1e-3, total_steps=100, warmup_steps=10)
    >>> optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    """

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0, flat_fraction: float = 0.5):
        if total_steps < 1 or not 0 <= flat_fraction <= 1 or warmup_steps < 0:
            raise ValueError(
                "Expected total_steps >= 1, warmup_steps >= 0 and 0 <= flat_fraction <= 1. Received: "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}, flat_fraction={flat_fraction}"
            )
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.flat_fraction = float(flat_fraction)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        flat_end = max(float(self.warmup_steps), self.flat_fraction * self.total_steps)
        warmup = keras.ops.minimum(1.0, (step + 1.0) / max(1.0, float(self.warmup_steps)))
        progress = keras.ops.clip((step - flat_end) / max(1.0, self.total_steps - flat_end), 0.0, 1.0)
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        return self.learning_rate * warmup * cosine

    def get_config(self):
        return dict(learning_rate=self.learning_rate, total_steps=self.total_steps,
                    warmup_steps=self.warmup_steps, flat_fraction=self.flat_fraction)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class InverseSquareRootSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Constant through the warm-up, then decaying as 1 / sqrt(step): T5's and T5X's pre-training schedule.

    `learning_rate * sqrt(warmup_steps / max(step, warmup_steps))`; with `learning_rate` =
    1 / sqrt(warmup_steps) it is t5x's `constant * rsqrt_decay` (base 1.0), 0.01 for 10,000 steps.

    Args:
        learning_rate: the rate of the first `warmup_steps` steps.
        warmup_steps: steps before the decay starts (at least 1).

    Example:
    >>> schedule = InverseSquareRootSchedule(0.01, warmup_steps=10_000)
    >>> optimizer = keras.optimizers.Adafactor(learning_rate=schedule)
    """

    def __init__(self, learning_rate: float, warmup_steps: int = 10_000):
        if warmup_steps < 1:
            raise ValueError(f"Expected warmup_steps >= 1. Received: warmup_steps={warmup_steps}")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.maximum(keras.ops.cast(step, "float32") + 1.0, float(self.warmup_steps))
        return self.learning_rate * keras.ops.sqrt(float(self.warmup_steps) / step)

    def get_config(self):
        return dict(learning_rate=self.learning_rate, warmup_steps=self.warmup_steps)


register_former_names("zoo", FlatCosineSchedule)
