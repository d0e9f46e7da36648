"""Learning-rate schedules and optimizer set-up shared by the zoo's tasks."""

from __future__ import annotations

import math

import keras

from perceiver_keras import TextPreprocessor, TrainablePositionEncoding


@keras.saving.register_keras_serializable(package="zoo")
class FlatCosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, a flat phase, then cosine decay to zero: the paper's ImageNet schedule.

    Args:
        learning_rate: peak learning rate.
        total_steps: steps of the whole run.
        warmup_steps: steps of linear warm-up from 0.
        flat_fraction: fraction of `total_steps` (warm-up included) at the peak before decaying.
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


def no_decay_variables(model: keras.Model) -> list:
    """Biases, normalisation parameters, position encodings and queries: excluded from weight decay."""
    excluded = {id(v): v for v in model.trainable_variables if v.name == "bias"}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras.layers.LayerNormalization, keras.layers.BatchNormalization)):
            excluded.update({id(v): v for v in layer.trainable_variables})
        if isinstance(layer, TrainablePositionEncoding):
            excluded[id(layer.embeddings)] = layer.embeddings
        if isinstance(layer, TextPreprocessor):
            for variable in (layer.position_embeddings, layer.bias):
                if variable is not None:
                    excluded[id(variable)] = variable
    return list(excluded.values())


OPTIMIZERS = ("lamb", "adamw")
SCHEDULES = ("constant", "cosine", "flat_cosine")


def make_optimizer(model: keras.Model, name: str, learning_rate: float, weight_decay: float, schedule: str,
                   total_steps: int, warmup_steps: int = 0, ema_momentum: float | None = None
                   ) -> keras.optimizers.Optimizer:
    """LAMB or AdamW with a schedule, weight decay skipping the no-decay variables.

    Schedules: "flat_cosine" (warm-up, flat to half-way, cosine to zero: the paper's ImageNet
    schedule), "cosine" (warm-up then cosine decay: the paper's language schedule), "constant".

    With `ema_momentum`, the optimizer keeps an exponential moving average of the weights, which
    `fit` swaps into the model when it ends.
    """
    ema = dict(use_ema=True, ema_momentum=ema_momentum) if ema_momentum else {}
    if schedule in ("flat_cosine", "cosine"):
        lr = FlatCosineSchedule(learning_rate, total_steps, warmup_steps,
                                flat_fraction=0.5 if schedule == "flat_cosine" else 0.0)
    elif schedule == "constant":
        lr = learning_rate
    else:
        raise ValueError(f"Unknown schedule. Expected one of {list(SCHEDULES)}. Received: schedule={schedule!r}")
    if name == "lamb":
        optimizer = keras.optimizers.Lamb(learning_rate=lr, weight_decay=weight_decay or None, **ema)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay, **ema)
    else:
        raise ValueError(f"Unknown optimizer. Expected one of {list(OPTIMIZERS)}. Received: optimizer={name!r}")
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    return optimizer
