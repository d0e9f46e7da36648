"""Hyperparameter search around a preset with KerasTuner, then the best configuration retrained and exported.

A tuning directory holds:
    tuner/          KerasTuner's state (oracle, trials, best-epoch weights): an interrupted search resumes
    results.md      one row per trial: hyperparameters, objective, parameter count, seconds (also .csv, .json)
    best/           the best configuration retrained as a normal run directory (`zoo.training.train`)
    export/         its SavedModel and TFLite files and verification report (`python -m export`)

The search space is centred on the preset's builder arguments (after any overrides): latents,
latent channels, self-attention layers per block and heads (under the names the task's recipe gives
them in `Recipe.architecture`, e.g. Perceiver AR's `num_channels`) at {1/scale, 1, scale} times the preset's,
latent channels rounded to a multiple of every head count they must divide (explicit `qk_channels` /
`v_channels` scale with them); the learning rate log-uniform in [lr/4, 4 lr], the weight decay in
[wd/10, 10 wd] (fixed when the preset has none).
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import keras_tuner
from tensorflow import data as tf_data

from export.arguments import COUNT, NON_NEGATIVE_INT, Number
from zoo import registry, training
from zoo.options import check_options, check_out
from zoo.schedules import make_optimizer

TUNERS = ("bayesian", "hyperband", "random")
ARCHITECTURE = ("num_latents", "num_latent_channels", "num_self_attention_layers_per_block", "num_self_attention_heads")
LEARNING_RATE_FACTOR, WEIGHT_DECAY_FACTOR = 4.0, 10.0
SCALE = Number(float, 1, low_open=True)
"""`scale`: the factor of the architecture's candidates around the centre, above 1."""


def objective(task: str, preset: registry.Preset) -> keras_tuner.Objective:
    """The validation value the search optimises: the task recipe's `objective`, e.g. "val_accuracy" (max)."""
    name, direction = registry.get_recipe(task).objective(preset)
    return keras_tuner.Objective(name, direction)


def builder_config(preset: registry.Preset) -> dict[str, Any]:
    """The preset's builder arguments including the builder's defaults (a paper preset names few)."""
    defaults = {name: p.default for name, p in inspect.signature(preset.builder).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **preset.config}


def _scaled(value: int, scale: float, multiple: int = 1) -> list[int]:
    """Sorted distinct {value / scale, value, value * scale}, rounded to positive multiples of `multiple`."""
    return sorted({max(multiple, round(value * f / multiple) * multiple) for f in (1 / scale, 1.0, scale)})


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Candidate values around a preset: choices of the architecture, log ranges of the optimizer."""

    choices: dict[str, list[int]]
    centre: dict[str, int]
    channel_multiple: int
    learning_rate: tuple[float, float]
    weight_decay: tuple[float, float]


def search_space(config: dict[str, Any], options: dict[str, Any], scale: float = 2.0,
                 architecture: tuple[str | None, str, str, str] = ARCHITECTURE) -> SearchSpace:
    """The space around a builder config and its training options; see the module docstring.

    `architecture` names the builder's arguments for (latents, width, depth, heads): the task recipe's;
    a None is not searched.
    """
    SCALE.check("--scale", scale)
    latents, width, depth, heads_name = architecture
    heads = _scaled(config[heads_name], scale)
    # Latent channels must divide by every head count over them (self-attention, encoder and decoder
    # cross-attention): each candidate is a multiple of their least common multiple.
    multiple = math.lcm(heads[-1], config.get("num_cross_attention_heads", 1), config.get("decoder_num_heads", 1))
    centre = {name: config[name] for name in architecture if name is not None}
    centre[width] = max(multiple, round(config[width] / multiple) * multiple)
    choices = {
        latents: _scaled(config[latents], scale) if latents else None,
        width: _scaled(config[width], scale, multiple),
        depth: _scaled(config[depth], scale),
        heads_name: heads,
    }
    choices.pop(None, None)
    lr, wd = float(options["learning_rate"]), float(options.get("weight_decay") or 0.0)
    return SearchSpace(choices, centre, multiple, (lr / LEARNING_RATE_FACTOR, lr * LEARNING_RATE_FACTOR),
                       (wd / WEIGHT_DECAY_FACTOR, wd * WEIGHT_DECAY_FACTOR) if wd else (0.0, 0.0))


class PresetHyperModel(keras_tuner.HyperModel):
    """A zoo preset whose size and optimizer are searched around the preset's own values.

    `build` compiles the task's training model (its loss, metrics and the preset's optimizer and
    schedule); `fit` trains it on the task's datasets and validates it as `zoo.training.train` does
    (through the task's evaluation model when it has one), adding `parameter_count` and `seconds`.

    Args:
        task: a task of `zoo.registry.TASK_MODULES`.
        preset_name: a preset of that task: the centre of the search.
        model_overrides: builder arguments replacing the preset's before the space is centred.
        options: training options (as `zoo.training.train`'s) over the preset's defaults.
        scale: the factor of the architecture's candidates around the centre.

    Example:
    >>> hypermodel = PresetHyperModel("image_classification", "digits", options={"epochs": 1})
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    """

    def __init__(self, task: str, preset_name: str, model_overrides: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, scale: float = 2.0):
        super().__init__(name=preset_name)
        base = registry.get_preset(preset_name)
        if base.task != task:
            raise ValueError(f"Preset '{preset_name}' belongs to task '{base.task}'. Received: task={task!r}")
        self.task, self.preset_name, self.recipe = task, preset_name, registry.get_recipe(task)
        self.options = training.training_options(base, **(options or {}))
        self.user_overrides = dict(model_overrides or {})
        preset = training.with_overrides(base, self.user_overrides)
        self.recipe.check(preset, self.options)
        self.task_overrides = self.recipe.model_overrides(preset, self.options)
        self.preset = training.with_overrides(preset, self.task_overrides)
        self.config = builder_config(self.preset)
        self.architecture = self.recipe.architecture
        self.space = search_space(self.config, self.options, scale, self.architecture)
        self._data: tuple[Any, Any, int] | None = None

    def declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """Declares the space in `hp`; returns the values it holds (the centre for a fresh `hp`)."""
        values = {name: hp.Choice(name, choices, ordered=True, default=self.space.centre[name])
                  for name, choices in self.space.choices.items()}
        for name, (low, high) in (("learning_rate", self.space.learning_rate), ("weight_decay", self.space.weight_decay)):
            values[name] = hp.Float(name, low, high, sampling="log") if high > 0 else hp.Fixed(name, 0.0)
        return values

    def builder_overrides(self, values: dict[str, Any]) -> dict[str, Any]:
        """The builder arguments of hyperparameter values: the caller's overrides plus the architecture's."""
        overrides = {**self.user_overrides, **{name: values[name] for name in self.architecture if name}}
        width = self.architecture[1]
        ratio = values[width] / self.config[width]
        for name in ("qk_channels", "v_channels"):  # explicit attention widths follow the latent width
            if self.config.get(name):
                m = self.space.channel_multiple
                overrides[name] = max(m, round(self.config[name] * ratio / m) * m)
        return overrides

    def training_overrides(self, values: dict[str, Any]) -> dict[str, Any]:
        return {"learning_rate": float(values["learning_rate"]), "weight_decay": float(values["weight_decay"])}

    def data(self) -> tuple[Any, Any, int]:
        """(train, test, steps per epoch), built once for every trial (the data fit every candidate)."""
        if self._data is None:
            o = self.options
            train, test = self.recipe.datasets(self.preset, o["batch_size"], o["seed"], o)
            test = training.with_known_length(test)
            steps = o.get("steps_per_epoch") or int(train.cardinality())
            if steps in (int(tf_data.INFINITE_CARDINALITY), int(tf_data.UNKNOWN_CARDINALITY)) or steps < 1:
                raise ValueError(f"The training data of preset '{self.preset_name}' has no fixed length or no complete "
                                 f"batch: pass --steps-per-epoch (or a smaller --batch-size). Received: --steps-per-epoch "
                                 f"{o.get('steps_per_epoch')}")
            self._data = (train, test, steps)
        return self._data

    def _steps(self) -> int:
        return self.options.get("steps_per_epoch") or self.data()[2]

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        values = self.declare(hp)
        # KerasTuner clears the Keras session before each build, which resets the seed and the policy.
        keras.utils.set_random_seed(self.options["seed"])
        keras.mixed_precision.set_global_policy(self.options["precision"])
        overrides = {**self.task_overrides, **self.builder_overrides(values)}
        model = registry.create_model(self.preset_name, **overrides)
        steps, o = self._steps(), self.options
        model.compile(
            optimizer=make_optimizer(model, o["optimizer"], values["learning_rate"], values["weight_decay"],
                                     o["schedule"], total_steps=steps * o["epochs"],
                                     warmup_steps=steps * o["warmup_epochs"], ema_momentum=o.get("ema_momentum")),
            **self.recipe.compile_args(training.with_overrides(self.preset, overrides), o),
            jit_compile=o.get("jit_compile", "auto"),
        )
        return model

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, verbose="auto", **kwargs):
        train, test, _ = self.data()
        preset = training.with_overrides(self.preset, self.builder_overrides(hp.values))
        evaluated = training.evaluation_model(self.recipe, model, preset, self.options)
        callbacks, validation = list(callbacks), {"validation_data": test}
        if evaluated is not model:  # before KerasTuner's callbacks, which read the epoch's logs
            callbacks, validation = [training.ValidateWith(evaluated, test), *callbacks], {}
        started = time.time()
        history = model.fit(train, epochs=epochs or self.options["epochs"], initial_epoch=initial_epoch,
                            steps_per_epoch=self.options.get("steps_per_epoch"), callbacks=callbacks,
                            verbose=verbose, shuffle=False, **validation)  # the datasets shuffle themselves
        epochs_run = len(next(iter(history.history.values()), []))
        history.history["parameter_count"] = [model.count_params()] * epochs_run
        history.history["seconds"] = [round(time.time() - started, 1)] * epochs_run
        return history


def check_search(tuner: str, max_trials: int) -> None:
    """Raises a ValueError for a tuner not in `TUNERS` or fewer than one trial."""
    if tuner not in TUNERS:
        raise ValueError(f"--tuner must be one of {', '.join(TUNERS)}. Received: --tuner {tuner!r}")
    COUNT.check("--max-trials", max_trials)


class _DeclaredSpace:
    """Declares the space without KerasTuner's probing build: it has no conditional hyperparameters, and a
    paper-sized model would be built (and its data loaded) just to list them."""

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.hypermodel.declare(hp)
        self.oracle.update_space(hp)


class _RandomSearch(_DeclaredSpace, keras_tuner.RandomSearch):
    pass


class _BayesianOptimization(_DeclaredSpace, keras_tuner.BayesianOptimization):
    pass


class _Hyperband(_DeclaredSpace, keras_tuner.Hyperband):
    pass


def make_tuner(name: str, hypermodel: PresetHyperModel, max_trials: int, directory: str | Path,
               overwrite: bool = False) -> keras_tuner.Tuner:
    """A KerasTuner tuner of `TUNERS` whose state lives in `directory/tuner` (resumed unless `overwrite`)."""
    check_search(name, max_trials)
    common = dict(objective=objective(hypermodel.task, hypermodel.preset), directory=str(directory),
                  project_name="tuner", overwrite=overwrite, seed=hypermodel.options["seed"])
    if name == "random":
        return _RandomSearch(hypermodel, max_trials=max_trials, **common)
    if name == "bayesian":
        return _BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    tuner = _Hyperband(hypermodel, max_epochs=hypermodel.options["epochs"], factor=3, **common)
    tuner.oracle.max_trials = max_trials  # Hyperband sizes its brackets by epochs; cap the trials as well
    return tuner


def results_table(tuner: keras_tuner.Tuner) -> list[dict[str, Any]]:
    """One row per trial, in trial order: id, status, hyperparameters, objective, parameters, seconds."""
    architecture = getattr(tuner.hypermodel, "architecture", ARCHITECTURE)
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        values = trial.hyperparameters.values
        last = {name: float(trial.metrics.get_last_value(name)) if trial.metrics.exists(name) else None
                for name in ("parameter_count", "seconds")}
        row = {"trial": trial_id, "status": str(trial.status),
               **{name: values.get(name) for name in (*architecture, "learning_rate", "weight_decay") if name}}
        if "tuner/epochs" in values:  # Hyperband: the epochs this trial trained
            row["epochs"] = values["tuner/epochs"]
        row.update(objective=None if trial.score is None else float(trial.score),
                   parameter_count=None if last["parameter_count"] is None else int(last["parameter_count"]),
                   seconds=last["seconds"])
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_results(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """results.md (a table under the summary), results.csv and results.json (rows and summary)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    training.write_json(out / "results.json", {**summary, "trials": rows})
    lines = [f"# Tuning {summary['preset']} ({summary['task']}): {summary['tuner']} search, "
             f"{summary['objective']} ({summary['direction']})", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    best = summary.get("best")
    if best:
        lines += ["", f"Best: trial {best['trial']}, {summary['objective']} = {_cell(best['objective'])}; "
                      f"builder overrides {best['model_overrides']}, options {best['options']}"]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def _retrain(task: str, preset_name: str, out: Path, model_overrides: dict[str, Any], options: dict[str, Any],
             overwrite: bool, verbose: int | str) -> dict[str, Any]:
    """Trains the best configuration into `out`; a finished run of the same configuration is kept."""
    run_file = out / "run.json"
    if run_file.exists():
        run = json.loads(run_file.read_text())
        wanted = json.loads(json.dumps({"model_overrides": model_overrides, "options": options}, default=str))
        same = all(run.get(part, {}).get(k) == v for part in wanted for k, v in wanted[part].items())
        if same and run.get("status") == "finished" and not overwrite:
            return run
        if overwrite or not same:  # best/ belongs to this search: a run of another configuration goes
            shutil.rmtree(out)
    return training.train(task, preset_name, out, model_overrides=model_overrides, verbose=verbose, **options)


def _export(run_dir: Path, out: Path, quantize: tuple[str, ...] | None, latency_runs: int) -> dict[str, Any]:
    """`export.export_run` of the retrained run into `out` (replacing an earlier export there); its status."""
    from export import export_run

    report = export_run(run_dir, out, quantizations=quantize, overwrite=True, latency_runs=latency_runs)
    print(report.table())
    return {"dir": str(out), "passed": bool(report.passed), "failures": list(report.failures)}


def tune(task: str, preset_name: str, out: str | Path, *, tuner: str = "random", max_trials: int = 10,
         model_overrides: dict[str, Any] | None = None, scale: float = 2.0, retrain_epochs: int | None = None,
         export: bool = True, quantize: tuple[str, ...] | None = None, latency_runs: int = 20,
         overwrite: bool = False, verbose: int | str = "auto", **option_overrides: Any) -> dict[str, Any]:
    """Searches around a preset, writes the results table, retrains the best configuration and exports it.

    Args:
        task: task name, e.g. "image_classification".
        preset_name: a preset of that task: the centre of the search space.
        out: the tuning directory (see the module docstring); an interrupted search resumes there.
        tuner: one of `TUNERS`.
        max_trials: the number of configurations to try (Hyperband: at most).
        model_overrides: builder arguments replacing the preset's, e.g. a smaller model to search around.
        scale: the factor of the architecture's candidates around the centre.
        retrain_epochs: epochs of the best configuration's run (default: the search's).
        export: export and verify the retrained model into `out/export`.
        quantize: the export's quantizations (default: all of `export.QUANTIZATIONS`).
        latency_runs: the export's timed runs per variant (0 skips the timing).
        overwrite: start the search, the retraining and the export afresh.
        verbose: Keras' and KerasTuner's verbosity.
        **option_overrides: training options of every trial, as `zoo.training.train`'s (epochs,
            batch_size, steps_per_epoch, take, precision, seed, ...).

    Returns:
        The results.json contents: the summary, the trials, the best trial, its run and export.
    """
    check_search(tuner, max_trials)  # before any data or model is built, or anything written
    SCALE.check("--scale", scale)
    NON_NEGATIVE_INT.check("--latency-runs", latency_runs)
    if retrain_epochs is not None:
        COUNT.check("--retrain-epochs", retrain_epochs)
    if export and quantize is not None:
        from export import QUANTIZATIONS

        if not quantize or set(quantize) - set(QUANTIZATIONS):
            raise ValueError(f"--quantize must be a comma-separated subset of {','.join(QUANTIZATIONS)}. "
                             f"Received: --quantize {','.join(quantize)!r}")
    check_options(task, option_overrides)
    out = Path(out)
    check_out(out, "a tuning directory (new or an earlier search's)")
    hypermodel = PresetHyperModel(task, preset_name, model_overrides, option_overrides, scale)
    out.mkdir(parents=True, exist_ok=True)
    search = make_tuner(tuner, hypermodel, max_trials, out, overwrite=overwrite)
    goal = search.oracle.objective
    previous_policy = keras.mixed_precision.global_policy()
    try:
        search.search(epochs=hypermodel.options["epochs"], verbose=verbose)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    rows = results_table(search)
    summary = {"task": task, "preset": preset_name, "tuner": tuner, "max_trials": max_trials,
               "objective": goal.name, "direction": goal.direction, "centre": hypermodel.space.centre,
               "search_space": {**hypermodel.space.choices, "learning_rate": hypermodel.space.learning_rate,
                                "weight_decay": hypermodel.space.weight_decay},
               "options": {k: v for k, v in option_overrides.items() if v is not None}}
    completed = search.oracle.get_best_trials(1)
    if not completed or completed[0].score is None:
        write_results(out, rows, summary)
        failed = [t for t in search.oracle.trials.values() if t.message]
        raise RuntimeError(f"No trial of the search completed; see {out / 'results.md'}."
                           + (f" The first failure:\n{failed[0].message}" if failed else ""))
    best = completed[0]
    values = best.hyperparameters.values
    options = {**summary["options"], **hypermodel.training_overrides(values)}
    if retrain_epochs:
        options["epochs"] = retrain_epochs
    summary["best"] = {"trial": best.trial_id, "objective": float(best.score),
                       "model_overrides": hypermodel.builder_overrides(values), "options": options}
    write_results(out, rows, summary)
    run = _retrain(task, preset_name, out / "best", summary["best"]["model_overrides"], options, overwrite, verbose)
    summary["best"].update(run_dir=str(out / "best"), test_metrics=run["test_metrics"],
                           parameter_count=run["parameter_count"])
    if export:
        summary["export"] = _export(out / "best", out / "export", quantize, latency_runs)
    write_results(out, rows, summary)
    return {**summary, "trials": rows}
