"""Exporting a training run directory: the public function behind `python -m export RUN`.

    report = export.export_run("runs/digits", "exports/digits", quantizations=("float32", "int8"))
    print(report.table())

A run directory holds `model.keras` and `run.json`; `run.json` names the data builder:
`{"data": {"builder": "package.module:function", "kwargs": {...}}, "imports": ["package"]}`
(`zoo.training.train` writes it from the task recipe's `export_data`). `builder(**kwargs)` returns
`{"calibration": x, "eval": (x, y)}`, optionally with these export hooks:
`"prepare_model"` (a function of the loaded model returning the model to export, e.g. the
full-frame model of one trained with subsampled decoding; the data must fit the model it returns),
`"extra_signatures"` (a function of the model to export returning `{name: export.ExtraSignature}`),
`"quantizations"` (the variants written unless `quantizations` is given),
`"extra_metrics"`, `"regression"`, `"thresholds"` (a dict of `export.Thresholds` fields
replacing the defaults, e.g. for a masked LM; see `export_model`) and `"extra_artifacts"` (a
function of the exported model and the output directory, called after the export, that writes
further files there, e.g. a multimodal encoder and chunked decoder, and returns `{"passed": bool,
"summary": str}`: the summary is printed and a failure fails the run; the files are written before the export
folder is moved into place). The modules in `"imports"` (which register the model's custom layers)
are imported before the model is loaded.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HOOKS = ("prepare_model", "extra_signatures", "extra_metrics", "regression", "thresholds", "extra_artifacts",
         "quantizations")
"""The optional entries of a data builder's result that configure the export (see the module docstring)."""


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike, *, quantizations: Sequence[str] | None = None,
               batch_size: int | None = 1, overwrite: bool = False, latency_runs: int = 20,
               num_eval: int | None = None):
    """Exports a finished run's model.keras with its own data and hooks, verified; returns the `ExportReport`.

    Args:
        run_dir: a run directory written by `python -m zoo train` (or any folder with model.keras and
            a run.json naming its data builder).
        out: the export folder to create; see `export_model`.
        quantizations: the variants (default: the builder's `"quantizations"` hook, else every default).
        batch_size: the .tflite files' static batch; None gives them a dynamic batch.
        overwrite: replace an earlier export in `out` (never the run or a folder holding anything else).
        latency_runs: timed runs per variant (0 skips the timing).
        num_eval: verify on at most this many held-out samples.

    Raises:
        FileNotFoundError: `run_dir` lacks model.keras or run.json.
        ValueError, RunDirectoryError: run.json is unfinished, damaged or names no data builder, or
            model.keras is not the run's model.
        FileExistsError: `out` exists and `overwrite` is False, or it is not an earlier export.
    """
    from export.api import export_model
    from export.outdir import check_out_dir
    from export.report import Thresholds
    from export.tflite import DEFAULT_QUANTIZATIONS

    run_dir, out = Path(run_dir), Path(out)
    check_out_dir(out, overwrite, protected=(run_dir,))  # before the model and data load
    model, data = load_run_for_export(run_dir)
    hooks = {key: data[key] for key in HOOKS if data.get(key)}
    if hooks.get("prepare_model"):
        model = hooks["prepare_model"](model)
    extra_signatures = hooks.get("extra_signatures")
    return export_model(
        model, out, quantizations=tuple(quantizations or hooks.get("quantizations") or DEFAULT_QUANTIZATIONS),
        calibration_data=data.get("calibration"), eval_data=data.get("eval"), batch_size=batch_size,
        overwrite=overwrite, latency_runs=latency_runs, num_eval=num_eval,
        extra_signatures=extra_signatures(model) if extra_signatures else None,
        extra_metrics=hooks.get("extra_metrics"), regression=bool(hooks.get("regression")),
        thresholds=Thresholds(**hooks.get("thresholds", {})), extra_artifacts=hooks.get("extra_artifacts"),
        protected=(run_dir,),
    )


def load_run_for_export(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The run's model (checked to be the run's) and its data builder's result."""
    from export.run_directory import check_model_of_run
    from perceiver_keras import load_model

    run = read_run(run_dir)
    import_all(run.get("imports", []))
    model = load_model(run_dir / "model.keras", compile=False)
    check_model_of_run(model, run, run_dir / "model.keras")
    return model, build_data(run)


def read_run(directory: Path) -> dict:
    """run.json of a finished run whose "data" names a builder."""
    from export.run_directory import read_finished_run

    for name in ("model.keras", "run.json"):
        if (directory / name).is_dir():
            raise IsADirectoryError(f"{directory / name} is a folder; expected the file a finished run wrote.")
        if not (directory / name).is_file():
            raise FileNotFoundError(f"The run directory {directory} has no {name}.")
    run = read_finished_run(directory)
    builder = run.get("data", {}).get("builder", "")
    if ":" not in builder:
        raise ValueError(
            f'{directory / "run.json"} needs "data": {{"builder": "package.module:function", '
            f'"kwargs": {{...}}}}. Received: data={run.get("data")!r}'
        )
    return run


def import_all(modules: Sequence[str]) -> None:
    """Imports the modules that register the model's custom Keras objects."""
    for name in modules:
        importlib.import_module(name)
    try:
        importlib.import_module("perceiver_keras")
    except Exception as error:  # noqa: BLE001 - plain Keras models load without it.
        warnings.warn(f"Could not import perceiver_keras ({error}); loading the model without it.")


def build_data(run: dict) -> dict:
    """The data builder's result: {"calibration": x, "eval": (x, y), and optional hooks}."""
    module_name, function_name = run["data"]["builder"].split(":", 1)
    builder = getattr(importlib.import_module(module_name), function_name)
    data = builder(**run["data"].get("kwargs", {}))
    if not isinstance(data, dict) or "eval" not in data:
        raise ValueError(
            f"The data builder {run['data']['builder']} must return a dict with 'eval' (and "
            f"'calibration' for int8). Received: {type(data).__name__} "
            f"{sorted(data) if isinstance(data, dict) else ''}"
        )
    if isinstance(data["eval"], list):
        data["eval"] = tuple(data["eval"])
    return data
