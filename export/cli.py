"""`python -m export`: export a trained run (or a .keras file) and print the verification table.

    python -m export runs/digits --out exports/digits
    python -m export model.keras --out exports/m --calibration-data calib.npz --eval-data eval.npz \\
        --quantize float32,int8 --batch-size 4 --overwrite

A run directory (model.keras + run.json naming its data builder and export hooks) is exported by
`export.export_run`, whose docstring says what run.json holds; a .keras file needs the data as .npz.

Exit status: 0 when every threshold holds, 1 when one fails (the artefacts and report are still
written), 2 on a usage or export error, or a damaged file in the evaluation data (named by its path;
nothing is written).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export.arguments import COUNT, NON_NEGATIVE_INT, ArgumentParser, UsageError, quantizations
from export.data_errors import data_file_error

EXIT_PASSED, EXIT_THRESHOLD_FAILED, EXIT_ERROR = 0, 1, 2


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
    from export.run_export import export_run
    from export.tflite import DEFAULT_QUANTIZATIONS, UnsupportedOpError

    batch_size = None if args.dynamic_batch else args.batch_size
    source = Path(args.source)
    try:
        if source.is_dir():
            report = export_run(source, args.out, quantizations=args.quantize, batch_size=batch_size,
                                overwrite=args.overwrite, latency_runs=args.latency_runs, num_eval=args.num_eval)
        else:
            check_out_dir(Path(args.out), args.overwrite, protected=(args.source,))  # before the model and data load
            model, calibration, evaluation = _load_keras_file(source, args)
            report = export_model(
                model, args.out, quantizations=args.quantize or DEFAULT_QUANTIZATIONS, calibration_data=calibration,
                eval_data=evaluation, batch_size=batch_size, overwrite=args.overwrite,
                latency_runs=args.latency_runs, num_eval=args.num_eval, protected=(args.source,),
            )
    except (UnsupportedOpError, FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - only a damaged data file is an input error; others re-raise
        message = data_file_error(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
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


def _load_keras_file(source: Path, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The model of a .keras file, with the calibration and evaluation data of the command line's .npz files."""
    from export.run_export import import_all
    from perceiver_keras import load_model

    if source.suffix != ".keras" or not source.is_file():
        raise FileNotFoundError(
            f"Expected a run directory (model.keras + run.json) or a .keras file. Received: {source}"
        )
    if args.eval_data is None and args.calibration_data is None:
        raise ValueError("A .keras source needs --eval-data (and --calibration-data for int8).")
    calibration = _read_npz(args.calibration_data, "--calibration-data")[0] if args.calibration_data else None
    evaluation = _read_npz(args.eval_data, "--eval-data") if args.eval_data else None  # before the slow model load
    import_all([])
    model = load_model(source, compile=False)
    return model, calibration, evaluation


def _read_npz(path: str, flag: str) -> tuple[Any, np.ndarray | None]:
    """`(x, y)` from an .npz holding `x` or `x/<input name>` keys, and optionally `y`; errors name `flag` and `path`."""
    expected = "expected an .npz file (numpy.savez) holding x or x/<input name>, and optionally y"
    if not Path(path).is_file():
        raise FileNotFoundError(f"{flag} {path}: {'a folder' if Path(path).is_dir() else 'no such file'}; {expected}.")
    try:
        npz = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{flag} {path} is not a readable .npz file ({error}); {expected}.") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{flag} {path} holds one {type(npz).__name__}, not named arrays; {expected}.")
    with npz:
        named = {key.split("/", 1)[1]: npz[key] for key in npz.files if key.startswith("x/")}
        if "x" not in npz.files and not named:
            raise ValueError(f"{flag} {path} needs an array 'x' or arrays 'x/<input name>'. Received: {npz.files}")
        x = npz["x"] if "x" in npz.files else named
        return x, (npz["y"] if "y" in npz.files else None)
