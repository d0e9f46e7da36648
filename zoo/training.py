"""Training and evaluation of zoo presets with `model.fit`, into a resumable run directory.

A run directory holds:
    run.json        what was trained (task, preset, overrides, options), how to rebuild its
                    export data, its status and final metrics
    model.keras     the final model (written atomically at the end)
    checkpoints/    last.keras, saved every epoch
    backup/         BackupAndRestore state: a killed run resumes here at the epoch it stopped
    logs/           TensorBoard logs; history.csv, the per-epoch metrics (appended on resume)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
from tensorflow import data as tf_data

from export.arguments import COUNT
from export.report import strict_json
from export.run_directory import RunDirectoryError, check_model_of_run, file_sha256, read_finished_run, read_run_json
from perceiver_keras import load_model
from zoo import distribute, finetune, registry
from zoo.resume import SeededBackupAndRestore, continued_stream, resumable_history
from zoo.finetune import load_matching_weights  # noqa: F401  (the fine-tuning API, also as zoo.training's)
from zoo.options import PRECISIONS, check_options, check_out, check_warmup
from zoo.recipe import Recipe
from zoo.schedules import make_optimizer


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Writes strict JSON (NaN as null) atomically: a temporary file in the same folder, then a rename."""
    text = json.dumps(strict_json(_as_json(payload)), indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600 whatever the umask
    os.replace(tmp, path)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def save_model_atomically(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


def with_known_length(dataset: tf_data.Dataset) -> tf_data.Dataset:
    """`dataset` with its number of batches stated, counted by one pass when tf.data cannot tell it.

    Keras warns "Your input ran out of data; interrupting training" at the end of every first pass
    over a dataset of unknown length (a corpus cut into windows): counted, evaluation ends quietly
    and the warning keeps its meaning for training data that really runs out.
    """
    if int(dataset.cardinality()) != int(tf_data.UNKNOWN_CARDINALITY):
        return dataset
    count = int(dataset.reduce(0, lambda count, _: count + 1))
    return dataset.apply(tf_data.experimental.assert_cardinality(count))


def training_options(preset: registry.Preset, **overrides: Any) -> dict[str, Any]:
    """The preset's training defaults with the given (non-None) overrides."""
    options = dict(preset.metadata.get("training", {}))
    options.update({k: v for k, v in overrides.items() if v is not None})
    options.setdefault("precision", "float32")
    options.setdefault("seed", 0)
    options.setdefault("warmup_epochs", 0)
    if options["precision"] not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}. Received: --precision "
                         f"{options['precision']!r}")
    check_warmup(options)
    return options


def with_overrides(preset: registry.Preset, model_overrides: dict[str, Any]) -> registry.Preset:
    """The preset with its builder arguments overridden, e.g. another sequence length or image size."""
    return dataclasses.replace(preset, config={**preset.config, **model_overrides})


def evaluation_model(recipe: Recipe, model: keras.Model, preset: registry.Preset, options: dict[str, Any]
                     ) -> keras.Model:
    """The model the validation and test metrics come from (`recipe.evaluation_model`), compiled.

    `model` itself, or another model holding its weights in the same order (the multimodal
    autoencoder rebuilt with its label always masked), compiled with the recipe's loss and metrics.
    """
    evaluated = recipe.evaluation_model(model, preset, options)
    if evaluated is not model:
        evaluated.compile(**recipe.compile_args(preset, options), jit_compile=options.get("jit_compile", "auto"))
    return evaluated


class ValidateWith(keras.callbacks.Callback):
    """Per-epoch validation through another model given the trained weights: `val_*` in the epoch's logs.

    It must come before the callbacks that read the logs (CSVLogger, TensorBoard).
    """

    def __init__(self, evaluated: keras.Model, data: Any):
        super().__init__()
        self.evaluated, self.data = evaluated, data

    def on_epoch_end(self, epoch, logs=None):
        self.evaluated.set_weights(self.model.get_weights())
        results = self.evaluated.evaluate(self.data, return_dict=True, verbose=0)
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in results.items()})


_RUN_FILES = ("model.keras", "history.csv", "checkpoints", "backup", "logs")
"""What a run writes besides run.json: `--overwrite` removes these (and nothing else) before training."""


def _previous_run(out: Path, overwrite: bool) -> dict[str, Any] | None:
    """The run.json of an unfinished run to resume, or None for a fresh run (or one `--overwrite` replaces).

    Nothing is changed here: `_clear_previous` removes what `--overwrite` replaces once the new run
    has been set up, so that a command refused before training leaves the old run as it was.
    """
    run_file = out / "run.json"
    if not run_file.exists():
        return None
    previous = read_run_json(run_file)
    if overwrite:
        return None
    if previous.get("status") == "finished":
        raise FileExistsError(f"{out} already holds a finished run; pass --overwrite to train again there.")
    return previous if previous.get("status") == "running" else None


def _clear_previous(out: Path) -> None:
    """`--overwrite`: marks the earlier run.json as being retrained, then removes that run's model and state.

    So an interrupted retraining never leaves the old model.keras to be evaluated or exported as if
    it were the new one.
    """
    run_file = out / "run.json"
    if not run_file.exists():
        return
    write_json(run_file, {**read_run_json(run_file), "status": "retraining"})
    for name in _RUN_FILES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _differences(resumed: dict[str, Any], task: str, preset_name: str, model_overrides: dict[str, Any],
                 option_overrides: dict[str, Any]) -> list[str]:
    """What the command asks for that differs from the interrupted run's run.json, in CLI terms.

    Options the command does not give are taken from the run; those it gives must equal the run's.
    """
    found = []
    for name, wanted, had in (("task", task, resumed.get("task")), ("--preset", preset_name, resumed.get("preset"))):
        if wanted != had:
            found.append(f"{name}: the run has {had!r}, the command {wanted!r}")
    for key, value in sorted(model_overrides.items()):
        had = resumed.get("model_overrides", {}).get(key, "(the preset's)")
        if _as_json(value) != _as_json(had):
            found.append(f"--set {key}: the run has {had!r}, the command {value!r}")
    for key, value in sorted(option_overrides.items()):
        had = resumed.get("options", {}).get(key, "(the preset's)")
        if value is not None and _as_json(value) != _as_json(had):
            found.append(f"--{key.replace('_', '-')}: the run has {had!r}, the command {value!r}")
    return found


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def train(task: str, preset_name: str, out: str | os.PathLike, *, model_overrides: dict[str, Any] | None = None,
          overwrite: bool = False, verbose: int | str = "auto", strategy: str | None = None,
          worker_timeout: float = 300.0, init_from: str | os.PathLike | None = None, freeze_backbone: bool = False,
          **option_overrides: Any) -> dict[str, Any]:
    """Fits a preset with `model.fit` and writes a run directory; resumes an interrupted one.

    Args:
        task: task name, e.g. "image_classification".
        preset_name: a preset of that task.
        out: the run directory.
        model_overrides: builder arguments replacing the preset's (and the task's `model_overrides`).
        overwrite: allow training into a directory that holds a finished run.
        verbose: Keras' verbosity (the progress bar by default).
        strategy: one of `zoo.distribute.STRATEGIES`, e.g. "mirrored"; `batch_size` stays the global batch.
        worker_timeout: "multi_worker": seconds to wait for the workers of TF_CONFIG before raising.
        init_from: start from the weights of a run directory, `.keras` file, transformers folder or
            keras-hub preset: every weight whose path and shape match (`zoo.finetune`); run.json's
            "init_from" lists what was not loaded and why. A resumed run keeps its trained weights.
        freeze_backbone: with `init_from`, train the head alone (run.json's "init_from"."frozen").
        **option_overrides: training options (epochs, batch_size, optimizer, learning_rate,
            weight_decay, schedule, warmup_epochs, ema_momentum, label_smoothing, precision,
            jit_compile, seed, steps_per_epoch, augment, rand_augment, mixup, cutmix, data_dir,
            manual_dir, take, tensorboard, and the tasks' own, e.g. decoded_pixels).

    Returns:
        The final run.json contents.
    """
    preset = registry.get_preset(preset_name)
    if preset.task != task:
        raise ValueError(f"Preset '{preset_name}' belongs to task '{preset.task}'. Received: task={task!r}")
    recipe = registry.get_recipe(task)
    check_options(task, option_overrides)  # before anything is read, built or written
    model_overrides_given = dict(model_overrides or {})
    out = Path(out)
    check_out(out)
    resumed = _previous_run(out, overwrite)
    option_overrides = {**option_overrides, "freeze_backbone": True if freeze_backbone else None,
                        "init_from": None if init_from is None else str(Path(init_from).expanduser().absolute())}
    if resumed:  # A resumed run keeps its own settings: the backup state was made with them.
        differences = _differences(resumed, task, preset_name, dict(model_overrides or {}), option_overrides)
        if differences:
            raise ValueError(
                f"{out} holds an interrupted run with other settings, so it cannot be resumed with these: "
                + "; ".join(differences) + ". Resume it with its own settings (leave these options out), "
                "or pass --overwrite to start afresh there."
            )
        model_overrides, option_overrides = resumed["model_overrides"], resumed["options"]
    options = training_options(preset, **option_overrides)
    preset = with_overrides(preset, dict(model_overrides or {}))
    recipe.check(preset, options)  # before the model, its weights or the data are built
    model_overrides = {**recipe.model_overrides(preset, options), **(model_overrides or {})}
    preset = with_overrides(preset, model_overrides)  # the data must fit the model actually built
    dist = distribute.make_strategy(strategy, worker_timeout)
    source = finetune.source_for_run(options, resumed, out / "backup")  # before the seed: reading builds a model
    # The run directory, or a non-chief worker's temporary folder: made only once the model, its
    # --init-from weights and the data are ready, so that a refused command leaves nothing behind.
    written = distribute.write_dir(out, dist)

    keras.utils.set_random_seed(options["seed"])
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(options["precision"])
    scope = contextlib.ExitStack()
    try:
        scope.enter_context(distribute.scope(dist))  # model, optimizer and metrics get distributed variables
        model = _create_model(preset_name, model_overrides, given=model_overrides_given)
        init_record = finetune.start_run(model, source, options, resumed, verbose)  # before compile: it may freeze
        train_ds, test_ds = recipe.datasets(preset, options["batch_size"], options["seed"], options)
        train_ds, test_ds = distribute.shard_by_data(train_ds), distribute.shard_by_data(with_known_length(test_ds))
        steps = options.get("steps_per_epoch") or int(train_ds.cardinality())
        if steps in (int(tf_data.INFINITE_CARDINALITY), int(tf_data.UNKNOWN_CARDINALITY)):
            raise ValueError(f"The training data of preset '{preset_name}' has no fixed length (e.g. a repeated "
                             "corpus): pass --steps-per-epoch.")
        if resumed:
            train_ds = continued_stream(train_ds, out / "backup", steps)
        if steps < 1:
            taken = f" of --take {options['take']} examples" if options.get("take") else ""
            raise ValueError(f"The training data{taken} of preset '{preset_name}' has no complete batch of "
                             f"--batch-size {options['batch_size']}: pass a smaller --batch-size.")
        model.compile(
            optimizer=make_optimizer(model, options["optimizer"], options["learning_rate"],
                                     options.get("weight_decay", 0.0), options["schedule"],
                                     total_steps=steps * options["epochs"],
                                     warmup_steps=steps * options["warmup_epochs"],
                                     ema_momentum=options.get("ema_momentum")),
            **recipe.compile_args(preset, options), jit_compile=options.get("jit_compile", "auto"),
        )
        evaluated = evaluation_model(recipe, model, preset, options)
        if dist is not None and not isinstance(dist, keras.distribution.DataParallel):
            distribute.build_for_fit(model, train_ds)
            if evaluated is not model:
                distribute.build_for_fit(evaluated, test_ds)
        run = {
            "task": task, "preset": preset_name, "model_overrides": model_overrides, "options": options,
            "parameter_count": model.count_params(), "status": "running",
            "data": recipe.export_data(preset, options), "imports": ["perceiver_keras", "zoo.schedules"],
            "started": resumed["started"] if resumed else time.strftime("%Y-%m-%dT%H:%M:%S"),
            "distribution": {"strategy": strategy or "default", "replicas": distribute.num_replicas(dist)},
        }
        if init_record:
            run["init_from"] = init_record
        if overwrite and written == out:
            _clear_previous(out)
        written.mkdir(parents=True, exist_ok=True)
        write_json(written / "run.json", run)
        (written / "checkpoints").mkdir(exist_ok=True)
        # The backup outlives fit() until the run is marked finished: a run killed while it evaluates or
        # saves then resumes at its last epoch instead of training again from the first.
        backup = (SeededBackupAndRestore(str(out / "backup"), delete_checkpoint=False) if written == out else
                  distribute.WorkerBackupAndRestore(str(out / "backup"), str(written / "backup")))
        if resumed and written == out:
            resumable_history(out / "history.csv", out / "backup")
        callbacks = [
            keras.callbacks.ModelCheckpoint(str(written / "checkpoints" / "last.keras")),
            keras.callbacks.CSVLogger(str(written / "history.csv"), append=bool(resumed)),
        ]
        if options.get("tensorboard", True):
            callbacks.append(keras.callbacks.TensorBoard(str(written / "logs")))
        callbacks.append(backup)  # last: an epoch counts as done once its history row is written too
        validation = {"validation_data": test_ds}
        if evaluated is not model:  # validated through the evaluation model, before the loggers read the logs
            callbacks, validation = [ValidateWith(evaluated, test_ds), *callbacks], {}
        started = time.time()
        model.fit(train_ds, epochs=options["epochs"], steps_per_epoch=options.get("steps_per_epoch"),
                  callbacks=callbacks, verbose=verbose, shuffle=False, **validation)  # the datasets shuffle
        if evaluated is not model:
            evaluated.set_weights(model.get_weights())
        results = evaluated.evaluate(test_ds, return_dict=True, verbose=0)
        save_model_atomically(model, written / "model.keras")
    finally:
        scope.close()
        keras.mixed_precision.set_global_policy(previous_policy)
    run.update(status="finished", train_seconds=round(time.time() - started, 1),
               test_metrics={k: float(v) for k, v in results.items()},
               model_sha256=file_sha256(written / "model.keras"))
    baselines = recipe.baselines(preset, options)  # trivial predictors on the same test data, to compare against
    if baselines:
        run["baselines"] = baselines
    write_json(written / "run.json", run)
    if written != out:
        shutil.rmtree(written, ignore_errors=True)
    else:
        shutil.rmtree(out / "backup", ignore_errors=True)
    return run


def _create_model(preset_name: str, overrides: dict[str, Any], given: dict[str, Any]) -> keras.Model:
    """The preset's model; an argument error names the caller's overrides as `--set KEY=VALUE`."""
    try:
        return registry.create_model(preset_name, **overrides)
    except (TypeError, ValueError) as error:
        if not given:
            raise
        sets = ", ".join(f"--set {key}={value!r}" for key, value in given.items())
        raise ValueError(f"Preset '{preset_name}' cannot be built with {sets}: {error}") from error


def load_run(run_dir: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """The trained model and run.json of a finished run directory."""
    run_dir = Path(run_dir)
    run = read_finished_run(run_dir)
    model = load_model(run_dir / "model.keras", compile=False)
    check_model_of_run(model, run, run_dir / "model.keras")
    return model, run


def evaluate(run_dir: str | os.PathLike, batch_size: int | None = None) -> dict[str, float]:
    """Metrics of a run's final model on its test split, in batches of `batch_size` (default: the run's)."""
    if batch_size is not None:
        COUNT.check("--batch-size", batch_size)
    model, run = load_run(run_dir)
    missing = [key for key in ("task", "preset", "options") if not isinstance(run.get(key), (str, dict))]
    if missing:
        raise RunDirectoryError(f"{Path(run_dir) / 'run.json'} has no {', '.join(missing)}: evaluate needs a run "
                                "written by `python -m zoo train` (export a run.json written by hand with "
                                "`python -m export`).")
    preset = with_overrides(registry.get_preset(run["preset"]), run.get("model_overrides", {}))
    recipe = registry.get_recipe(run["task"])
    options = dict(run["options"], batch_size=batch_size or run["options"]["batch_size"])
    _, test_ds = recipe.datasets(preset, options["batch_size"], options["seed"], options)
    test_ds = with_known_length(test_ds)
    model.compile(**recipe.compile_args(preset, options))
    results = evaluation_model(recipe, model, preset, options).evaluate(test_ds, return_dict=True, verbose=0)
    return {k: float(v) for k, v in results.items() if not math.isnan(float(v))}
