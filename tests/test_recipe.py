"""The training contract: one `zoo.recipe.Recipe` per task, from which the CLI flags and the tuning objective derive."""

from __future__ import annotations

import argparse

import keras
import pytest

from zoo import cli, registry, tuning
from zoo import options as zoo_options
from zoo.recipe import Recipe

TASKS = sorted(registry.TASK_MODULES)


class _Minimal(Recipe):
    name = "image_classification"

    def datasets(self, preset, batch_size, seed, options):
        return None, None

    def loss(self, preset, options):
        return keras.losses.MeanSquaredError()

    def export_data(self, preset, options):
        return {"builder": "m:f", "kwargs": {}}


def _flags(command: str, task: str) -> set[str]:
    """The long flags `python -m zoo COMMAND TASK` accepts."""
    parser = cli._parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    tasks = next(a for a in commands.choices[command]._actions if isinstance(a, argparse._SubParsersAction))
    return {s for action in tasks.choices[task]._actions for s in action.option_strings if s.startswith("--")}


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_one_registered_recipe(task):
    recipe = registry.get_recipe(task)
    assert isinstance(recipe, Recipe) and recipe.name == task
    assert registry.get_recipe(task) is recipe
    assert not set(recipe.options) & set(zoo_options.COMMON), "a task redeclares a common option"


def test_an_option_means_one_thing_in_every_task():
    declared = {}
    for task in TASKS:
        for name, option in registry.get_recipe(task).options.items():
            assert declared.setdefault(name, option) == option, f"{name} is declared differently by {task}"


@pytest.mark.parametrize("command", ["train", "tune"])
@pytest.mark.parametrize("task", TASKS)
def test_the_cli_offers_exactly_the_recipes_options(command, task):
    flags = _flags(command, task)
    wanted = {zoo_options.flag(name) for name in zoo_options.task_options(task)}
    assert wanted <= flags
    for other in TASKS:  # no flag of another task's options unless this task reads it too
        for name in registry.get_recipe(other).options:
            assert (zoo_options.flag(name) in flags) == (name in zoo_options.task_options(task)), (other, name)


def test_switches_parse_both_ways():
    parse = cli._parser().parse_args
    base = ["train", "image_classification", "--preset", "digits", "--out", "x"]
    assert parse(base).rand_augment is None
    assert parse([*base, "--rand-augment"]).rand_augment is True
    assert parse([*base, "--no-augment"]).augment is False
    with pytest.raises(ValueError, match="--augment is a switch: expected True or False. Received: --augment 'no'"):
        zoo_options.check_options("image_classification", {"augment": "no"})


@pytest.mark.parametrize("preset, expected", [
    ("digits", ("val_accuracy", "max")),
    ("pydoc_mlm", ("val_masked_accuracy", "max")),
    ("source_type", ("val_accuracy", "max")),
    ("glue_cola", ("val_matthews_correlation", "max")),
    ("flow_small", ("val_epe", "min")),
    ("multimodal_small", ("val_loss", "min")),  # metrics keyed by output
])
def test_the_tuning_objective_is_the_recipes(preset, expected):
    preset = registry.get_preset(preset)
    objective = tuning.objective(preset.task, preset)
    assert (objective.name, objective.direction) == expected == registry.get_recipe(preset.task).objective(preset)


def test_the_defaulted_hooks():
    recipe, preset = _Minimal(), registry.get_preset("digits")
    model = keras.Sequential([keras.layers.Dense(1)])
    args = recipe.compile_args(preset, {})
    assert isinstance(args["loss"], keras.losses.MeanSquaredError) and args["metrics"] == []
    assert args["weighted_metrics"] is None and "loss_weights" not in args
    assert recipe.evaluation_model(model, preset, {}) is model
    assert recipe.model_overrides(preset, {}) == {} and recipe.baselines(preset, {}) == {}
    assert recipe.objective(preset) == ("val_loss", "min")  # no metric to tune on
    assert recipe.option_names() == zoo_options.COMMON


def test_a_recipe_must_implement_its_data_loss_and_export_data():
    class Empty(Recipe):
        name = "image_classification"

    preset = registry.get_preset("digits")
    for call in (lambda r: r.datasets(preset, 1, 0, {}), lambda r: r.loss(preset, {}),
                 lambda r: r.export_data(preset, {})):
        with pytest.raises(NotImplementedError, match="Empty must implement"):
            call(Empty())


def test_register_recipe_refuses_what_is_not_a_task_recipe():
    with pytest.raises(TypeError, match="Expected a zoo.recipe.Recipe instance. Received: dict"):
        registry.register_recipe({})

    class Unknown(_Minimal):
        name = "speech"

    with pytest.raises(ValueError, match="Received: name='speech'"):
        registry.register_recipe(Unknown())
    with pytest.raises(ValueError, match="A recipe for task 'image_classification' is already registered"):
        registry.register_recipe(_Minimal())
    with pytest.raises(ValueError, match="Unknown task 'speech'"):
        registry.get_recipe("speech")


def test_recipe_checks_refuse_before_anything_is_built_or_written(tmp_path, capsys):
    from zoo import training

    with pytest.raises(ValueError, match=r"--set image_shape=\(8, 8, 3\) does not fit dataset 'digits'"):
        training.train("image_classification", "digits", tmp_path / "a", model_overrides={"image_shape": (8, 8, 3)})
    with pytest.raises(ValueError, match="--text-files is read only with --corpus text_files"):
        training.train("masked_language_modeling", "pydoc_mlm", tmp_path / "b", corpus="pydoc",
                       text_files=__file__)
    with pytest.raises(ValueError, match="--corpus text_files needs --text-files"):
        training.train("masked_language_modeling", "pydoc_mlm", tmp_path / "c", corpus="text_files")
    with pytest.raises(ValueError, match="--text-files: expected a .txt file.*matches none. Received: '/nowhere/"):
        training.train("masked_language_modeling", "pydoc_mlm", tmp_path / "d", text_files="/nowhere/*.txt")
    assert cli.main(["train", "masked_language_modeling", "--preset", "pydoc_mlm", "--out", str(tmp_path / "e"),
                     "--text-files", "/nowhere/*.txt"]) == cli.EXIT_INPUT_ERROR
    assert "argument --text-files: expected a .txt file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_text_files_alone_imply_the_text_files_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("Perceiver IO reads bytes. " * 200)
    recipe, preset = registry.get_recipe("masked_language_modeling"), registry.get_preset("pydoc_mlm")
    options = {"text_files": str(tmp_path / "a.txt")}
    recipe.check(preset, options)
    assert recipe.export_data(preset, options)["kwargs"]["dataset"] == "text_files"
