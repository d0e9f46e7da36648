"""The zoo's registry: presets are data (builder arguments plus metadata), registered on import."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import keras

# Task name -> package that registers its presets on import; its `task` module registers the task's
# recipe (`zoo.recipe.Recipe`) with `register_recipe`.
TASK_MODULES = {
    "image_classification": "zoo.image_classification",
    "masked_language_modeling": "zoo.language",
    "text_classification": "zoo.language",
    "causal_language_modeling": "zoo.language",
    "optical_flow": "zoo.optical_flow",
    "multimodal_autoencoding": "zoo.multimodal",
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named configuration of a task's model.

    Attributes:
        name: the preset's name, unique across the zoo.
        task: the task it belongs to (a key of `TASK_MODULES`).
        builder: callable(**config) -> keras.Model.
        config: the builder's arguments (the architecture).
        metadata: everything else: dataset, input spec, normalisation, classes, training
            defaults, the parameter count, the source of pretrained weights.
    """

    name: str
    task: str
    builder: Callable[..., keras.Model]
    config: dict[str, Any]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Adds `preset` to the registry; a name can be registered once."""
    if preset.name in _PRESETS and _PRESETS[preset.name] != preset:
        raise ValueError(f"A preset named '{preset.name}' is already registered.")
    _PRESETS[preset.name] = preset
    return preset


def _load_tasks() -> None:
    for module in sorted(set(TASK_MODULES.values())):
        importlib.import_module(module)


_RECIPES: dict[str, Any] = {}


def register_recipe(recipe: Any) -> Any:
    """Adds a task's `zoo.recipe.Recipe` instance (called by the task's `task` module); returns it.

    Raises:
        ValueError: the recipe's name is not a key of `TASK_MODULES`, or another recipe has that name.
    """
    from zoo.recipe import Recipe

    if not isinstance(recipe, Recipe):
        raise TypeError(f"Expected a zoo.recipe.Recipe instance. Received: {type(recipe).__name__}")
    if recipe.name not in TASK_MODULES:
        raise ValueError(f"A recipe's name must be a task of zoo.registry.TASK_MODULES ({', '.join(sorted(TASK_MODULES))})"
                         f". Received: name={recipe.name!r}")
    if recipe.name in _RECIPES and type(_RECIPES[recipe.name]) is not type(recipe):
        raise ValueError(f"A recipe for task '{recipe.name}' is already registered: {type(_RECIPES[recipe.name]).__name__}")
    _RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str):
    """The `zoo.recipe.Recipe` (data, loss, metrics, objective, options, export data) of the task called `name`."""
    if name not in TASK_MODULES:
        raise ValueError(f"Unknown task '{name}'. Expected one of: {', '.join(sorted(TASK_MODULES))}. Received: task={name!r}")
    importlib.import_module(TASK_MODULES[name] + ".task")
    return _RECIPES[name]


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered presets, sorted; optionally only those of one task."""
    _load_tasks()
    if task is not None and task not in TASK_MODULES:
        raise ValueError(f"Unknown task '{task}'. Expected one of: {', '.join(sorted(TASK_MODULES))}. Received: task={task!r}")
    return sorted(name for name, p in _PRESETS.items() if task is None or p.task == task)


def get_preset(name: str) -> Preset:
    """The preset called `name`; a ValueError lists the valid names otherwise."""
    _load_tasks()
    if name not in _PRESETS:
        raise ValueError(f"Unknown preset '{name}'. Expected one of: {', '.join(sorted(_PRESETS))}. Received: name={name!r}")
    return _PRESETS[name]


def create_model(preset_name: str, /, **overrides: Any) -> keras.Model:
    """Builds the preset's model; keyword arguments override its builder arguments.

    Every builder takes `seed` (an int, or None): the same seed gives the same initial weights, with no
    global random state touched.

    Example:
    >>> model = create_model("perceiver_io_digits", num_blocks=1)
    """
    preset = get_preset(preset_name)
    accepted = set(inspect.signature(preset.builder).parameters)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for preset '{preset_name}'. Expected some of: {sorted(accepted)}"
        )
    config = {**preset.config, **overrides}
    config.setdefault("name", preset_name)
    model = preset.builder(**config)
    # What `model.save_to_preset(dir)` writes beside the weights (the data's normalisation among it).
    from zoo.hub_presets import preset_metadata

    model.preset_metadata = preset_metadata(preset, overrides)
    return model
