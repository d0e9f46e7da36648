"""The training contract of a zoo task: one `Recipe` per task, with defaulted hooks.

A recipe says what training, evaluation, tuning and export need to know about a task (its data,
loss, metrics, tuning objective, options and export data); the model itself is the preset's, and
keras-hub's `Task` classes (`perceiver_keras.hub`) are the models' side. Everything the zoo does
with a task goes through these methods:

    zoo.training.train / evaluate   check, datasets, model_overrides, compile_args, evaluation_model,
                                    baselines, export_data
    zoo.tuning                      the same, and objective() for the search
    python -m zoo train/tune TASK   the flags: the common options and the recipe's `options`
    python -m export RUN            export_data(), as run.json records it

A task subclasses `Recipe`, sets `name`, `options` and (if its first metric is not maximised)
`objective_direction`, implements `datasets`, `loss` and `export_data`, overrides the hooks it
needs, and registers an instance with `zoo.registry.register_recipe`:

    class DigitsRecipe(Recipe):
        name = "image_classification"
        options = {"label_smoothing": LABEL_SMOOTHING}

        def datasets(self, preset, batch_size, seed, options): ...
        def loss(self, preset, options): return keras.losses.CategoricalCrossentropy(from_logits=True)
        def metrics(self, preset): return [keras.metrics.CategoricalAccuracy(name="accuracy")]
        def export_data(self, preset, options): return {"builder": "pkg.module:function", "kwargs": {}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import keras

from zoo.options import COMMON, Option
from zoo.registry import Preset

OBJECTIVE_DIRECTIONS = ("max", "min")


class Recipe:
    """What the zoo needs to train, evaluate, tune and export one task's presets.

    Attributes:
        name: the task's name, e.g. "image_classification" (a key of `zoo.registry.TASK_MODULES`).
        options: the training options the task reads besides `zoo.options.COMMON`: name -> `Option`
            (its flag's help, type or choices). `python -m zoo train TASK` and `tune TASK` offer
            exactly the common flags and these; `zoo.options.check_options` refuses the others.
        objective_direction: "max" or "min" for the tuning objective, the validation value of the
            first weighted metric (else the first metric); None tunes on the validation loss (a
            task whose metrics are keyed by output).
        architecture: the builder arguments the tuner searches: the number of latents, their width,
            the self-attention depth and the heads (Perceiver IO's names by default; a task whose data
            depend on the latents, such as causal language modelling's loss positions, puts None first).
    """

    name: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    objective_direction: ClassVar[str | None] = "max"
    architecture: ClassVar[tuple[str | None, str, str, str]] = (
        "num_latents", "num_latent_channels", "num_self_attention_layers_per_block", "num_self_attention_heads")
    """The builder arguments `zoo.tuning` searches, in this order: latents (None: not searched), width, depth, heads."""

    # The hooks every task implements.

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, test) `tf.data` pipelines of the preset's data, batched by `batch_size`.

        The training pipeline shuffles and augments with `seed`; the test pipeline is deterministic.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement datasets()")

    def loss(self, preset: Preset, options: dict[str, Any]) -> Any:
        """The training loss: a `keras.losses.Loss`, or a dict of them keyed by output."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss()")

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        """How `python -m export` rebuilds calibration and held-out data: {"builder": "module:function", "kwargs"}.

        run.json records it; `builder(**kwargs)` returns {"calibration": x, "eval": (x, y)} and the
        optional export hooks (see `export.cli`).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement export_data()")

    # Defaulted hooks.

    def check(self, preset: Preset, options: dict[str, Any]) -> None:
        """Refuses, naming the flag, a preset and options that cannot train together (before anything is built)."""

    def metrics(self, preset: Preset) -> list | dict:
        """`compile(metrics=...)`: a list, or a dict keyed by output (none by default)."""
        return []

    def weighted_metrics(self, preset: Preset) -> list | None:
        """`compile(weighted_metrics=...)`: the metrics that must see the sample weights (a masked LM's accuracy)."""
        return None

    def loss_weights(self, preset: Preset, options: dict[str, Any]) -> dict[str, float] | None:
        """`compile(loss_weights=...)` for a task whose `loss` is a dict keyed by output."""
        return None

    def model_overrides(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        """Builder arguments the training model needs (e.g. subsampled decoding); the user's `--set` wins."""
        return {}

    def evaluation_model(self, model: keras.Model, preset: Preset, options: dict[str, Any]) -> keras.Model:
        """The model validation and test metrics come from: `model` itself by default.

        Another model must hold `model`'s weights in the same order (e.g. the multimodal autoencoder
        with its label always masked); `zoo.training.evaluation_model` compiles it.
        """
        return model

    def baselines(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """Trivial predictors' metrics on the test data, recorded in run.json beside the model's."""
        return {}

    # Derived from the hooks.

    def option_names(self) -> frozenset[str]:
        """Every training option the task reads: the common ones and its own."""
        return COMMON | frozenset(self.options)

    def compile_args(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        """`compile` arguments besides the optimizer: loss, metrics, weighted metrics and loss weights."""
        args = {"loss": self.loss(preset, options), "metrics": self.metrics(preset),
                "weighted_metrics": self.weighted_metrics(preset)}
        loss_weights = self.loss_weights(preset, options)
        if loss_weights is not None:
            args["loss_weights"] = loss_weights
        return args

    def objective(self, preset: Preset) -> tuple[str, str]:
        """The tuning objective: ("val_<first metric>", direction), or ("val_loss", "min")."""
        if self.objective_direction is None:
            return "val_loss", "min"
        if self.objective_direction not in OBJECTIVE_DIRECTIONS:
            raise ValueError(f"{type(self).__name__}.objective_direction must be one of {OBJECTIVE_DIRECTIONS} or "
                             f"None. Received: {self.objective_direction!r}")
        metrics = self.weighted_metrics(preset) or self.metrics(preset)
        if not isinstance(metrics, list) or not metrics:
            return "val_loss", "min"
        return f"val_{metrics[0].name}", self.objective_direction
