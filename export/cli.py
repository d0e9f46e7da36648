"""`python -m export`: export a trained run (or a .keras file) and print the verification table.

    python -m export runs/digits --out exports/digits
    python -m export model.keras --out exports/m --calibration-data calib.npz --eval-data eval.npz \\
        --quantize float32,int8 --batch-size 4 --overwrite

A run directory holds `model.keras` and `run.json`; `run.json` names the data builder:
`{"data": {"builder": "package.module:function", "kwargs": {...}}, "imports": ["package"]}`.
`builder(**kwargs)` returns `{"calibration": x, "eval": (x, y)}`, optionally with
`"prepare_model"` (a function of the loaded model returning the model to export, e.g. the
full-frame model of one trained with subsampled decoding; the data must fit the model it returns),
`"extra_signatures"` (a function of the model to export returning `{name: export.ExtraSignature}`),
`"quantizations"` (the variants written unless `--quantize` is given),
`"extra_metrics"`, `"regression"`, `"thresholds"` (a dict of `export.Thresholds` fields
replacing the defaults, e.g. for a masked LM; see `export_model`) and `"extra_artifacts"` (a
function of the exported model and the output directory, called after the export, that writes
further files there, e.g. a multimodal encoder and chunked decoder, and returns `{"passed": bool,
"summary": str}`: the summary is printed and a failure fails the run; the files are written before the export
folder is moved into place). The modules in `"imports"` (which
register the model's custom layers) are imported before the model is loaded.

Exit status: 0 when every threshold holds, 1 when one fails (the artefacts and report are still
written), 2 on a usage or export error (nothing is written).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export.arguments import COUNT, NON_NEGATIVE_INT, ArgumentParser, UsageError, quantizations

EXIT_PASSED, EXIT_THRESHOLD_FAILED, EXIT_ERROR = 0, 1, 2
_HOOKS = ("prepare_model", "extra_signatures", "extra_metrics", "regression", "thresholds", "extra_artifacts",
          "quantizations")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status instead of exiting."""
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_ERROR
    # TensorFlow is imported only after argument parsing, so `--help` and usage errors are quick.
    from export.api import export_model
    from export.outdir import check_out_dir
    from export.report import Thresholds
    from export.tflite import DEFAULT_QUANTIZATIONS, UnsupportedOpError

    try:
        check_out_dir(Path(args.out), args.overwrite, protected=(args.source,))  # before the model and data load
        model, calibration, evaluation, hooks = _load_source(Path(args.source), args)
        if hooks.get("prepare_model"):
            model = hooks["prepare_model"](model)
        extra_signatures = hooks.get("extra_signatures")
        report = export_model(
            model, args.out, quantizations=args.quantize or hooks.get("quantizations") or DEFAULT_QUANTIZATIONS,
            calibration_data=calibration,
            eval_data=evaluation, batch_size=None if args.dynamic_batch else args.batch_size, overwrite=args.overwrite,
            latency_runs=args.latency_runs, num_eval=args.num_eval,
            extra_signatures=extra_signatures(model) if extra_signatures else None,
            extra_metrics=hooks.get("extra_metrics"), regression=bool(hooks.get("regression")),
            thresholds=Thresholds(**hooks.get("thresholds", {})),
            extra_artifacts=hooks.get("extra_artifacts"), protected=(args.source,),
        )
    except (UnsupportedOpError, FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(report.table())
    return EXIT_PASSED if report.passed else EXIT_THRESHOLD_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m export",
        description="Export a Keras model to SavedModel + TFLite and verify it against Keras.",
    )
    parser.add_argument("source", help="a run directory (model.keras + run.json) or a .keras file")
    parser.add_argument("--out", required=True, help="the directory to create")
    parser.add_argument(
        "--quantize", type=quantizations, default=None,
        help="comma-separated subset of float32,float16,dynamic,int8,int16x8 (default: all)",
    )
    parser.add_argument("--batch-size", type=COUNT, default=1,
                        help="the .tflite files' static batch (default 1: every shape static, as NPUs, "
                             "microcontrollers and GPU delegates want)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="give the .tflite files a dynamic batch instead (servers); edge toolchains reject it")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in --out (never a run, a source or a folder of yours)")
    parser.add_argument("--num-eval", type=COUNT, default=None, help="verify on at most N samples")
    parser.add_argument("--latency-runs", type=NON_NEGATIVE_INT, default=20, help="timed runs per variant (0: skip)")
    parser.add_argument("--calibration-data", help=".npz with x (or x/<input name>) for a .keras source")
    parser.add_argument("--eval-data", help=".npz with x (or x/<input name>) and optional y")
    return parser


def _load_source(source: Path, args: argparse.Namespace) -> tuple[Any, Any, Any, dict]:
    """The model, calibration data, evaluation data and export hooks named by the command line."""
    from export.run_directory import check_model_of_run
    from perceiver_keras import load_model

    if source.is_dir():
        run = _read_run(source)
        _import_all(run.get("imports", []))
        model = load_model(source / "model.keras", compile=False)
        check_model_of_run(model, run, source / "model.keras")
        data = _build_data(run)
        hooks = {key: data[key] for key in _HOOKS if data.get(key)}
        return model, data.get("calibration"), data.get("eval"), hooks
    if source.suffix != ".keras" or not source.is_file():
        raise FileNotFoundError(
            f"Expected a run directory (model.keras + run.json) or a .keras file. Received: {source}"
        )
    if args.eval_data is None and args.calibration_data is None:
        raise ValueError("A .keras source needs --eval-data (and --calibration-data for int8).")
    _import_all([])
    model = load_model(source, compile=False)
    calibration = _read_npz(args.calibration_data)[0] if args.calibration_data else None
    evaluation = _read_npz(args.eval_data) if args.eval_data else None
    return model, calibration, evaluation, {}


def _read_run(directory: Path) -> dict:
    from export.run_directory import read_finished_run

    for name in ("model.keras", "run.json"):
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


def _import_all(modules: Sequence[str]) -> None:
    """Imports the modules that register the model's custom Keras objects."""
    for name in modules:
        importlib.import_module(name)
    try:
        importlib.import_module("perceiver_keras")
    except Exception as error:  # noqa: BLE001 - plain Keras models load without it.
        warnings.warn(f"Could not import perceiver_keras ({error}); loading the model without it.")


def _build_data(run: dict) -> dict:
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


def _read_npz(path: str) -> tuple[Any, np.ndarray | None]:
    """`(x, y)` from an .npz holding `x` or `x/<input name>` keys, and optionally `y`."""
    with np.load(path) as npz:
        named = {key.split("/", 1)[1]: npz[key] for key in npz.files if key.startswith("x/")}
        if "x" not in npz.files and not named:
            raise ValueError(f"{path} needs an array 'x' or arrays 'x/<input name>'. Received: {npz.files}")
        x = npz["x"] if "x" in npz.files else named
        return x, (npz["y"] if "y" in npz.files else None)
