"""Optimizer set-up shared by the zoo's tasks.

`FlatCosineSchedule` lives in `perceiver_keras.schedules`, so that a saved optimizer reloads after
`import perceiver_keras` alone; it is importable from here as before.
"""

from __future__ import annotations

import keras

from perceiver_keras import RMSNorm, TextPreprocessor, TrainablePositionEncoding
from perceiver_keras.schedules import FlatCosineSchedule, InverseSquareRootSchedule


def no_decay_variables(model: keras.Model) -> list:
    """Biases, normalisation parameters, position encodings and queries: excluded from weight decay."""
    excluded = {id(v): v for v in model.trainable_variables if v.name == "bias"}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras.layers.LayerNormalization, keras.layers.BatchNormalization, RMSNorm)):
            excluded.update({id(v): v for v in layer.trainable_variables})
        if isinstance(layer, TrainablePositionEncoding):
            excluded[id(layer.embeddings)] = layer.embeddings
        if isinstance(layer, TextPreprocessor):
            for variable in (layer.position_embeddings, layer.bias):
                if variable is not None:
                    excluded[id(variable)] = variable
    return list(excluded.values())


OPTIMIZERS = ("lamb", "adamw", "adafactor")
SCHEDULES = ("constant", "cosine", "flat_cosine", "rsqrt")


def make_optimizer(model: keras.Model, name: str, learning_rate: float, weight_decay: float, schedule: str,
                   total_steps: int, warmup_steps: int = 0, ema_momentum: float | None = None
                   ) -> keras.optimizers.Optimizer:
    """LAMB, AdamW or Adafactor with a schedule, weight decay skipping the no-decay variables.

    Schedules: "flat_cosine" (warm-up, flat to half-way, cosine to zero: the paper's ImageNet
    schedule), "cosine" (warm-up then cosine decay: the paper's language schedule), "rsqrt"
    (constant through the warm-up, then 1 / sqrt(step): T5X's pre-training schedule), "constant".
    Adafactor is T5X's (second-moment decay 0.8, no momentum).

    With `ema_momentum`, the optimizer keeps an exponential moving average of the weights, which
    `fit` swaps into the model when it ends.
    """
    ema = dict(use_ema=True, ema_momentum=ema_momentum) if ema_momentum else {}
    if schedule in ("flat_cosine", "cosine"):
        lr = FlatCosineSchedule(learning_rate, total_steps, warmup_steps,
                                flat_fraction=0.5 if schedule == "flat_cosine" else 0.0)
    elif schedule == "rsqrt":
        lr = InverseSquareRootSchedule(learning_rate, max(1, warmup_steps))
    elif schedule == "constant":
        lr = learning_rate
    else:
        raise ValueError(f"Unknown schedule. Expected one of {list(SCHEDULES)}. Received: schedule={schedule!r}")
    if name == "lamb":
        optimizer = keras.optimizers.Lamb(learning_rate=lr, weight_decay=weight_decay or None, **ema)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay, **ema)
    elif name == "adafactor":  # t5x's adafactor.Adafactor(decay_rate=0.8): beta_2 = 1 - step^-0.8
        optimizer = keras.optimizers.Adafactor(learning_rate=lr, beta_2_decay=-0.8, weight_decay=weight_decay or None,
                                               **ema)
    else:
        raise ValueError(f"Unknown optimizer. Expected one of {list(OPTIMIZERS)}. Received: optimizer={name!r}")
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    return optimizer
