"""`export_model`: a Keras model -> SavedModel + .tflite variants + a verification report."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ai_edge_litert
import keras
import numpy as np
import tensorflow as tf

from export import outdir
from export.accelerators import VELA_CONFIGS, accelerator_reports
from export.data import nonfinite_samples, num_samples, slice_feed, to_feed_and_labels
from export.report import ExportReport, Thresholds, VariantReport
from export.savedmodel import ExtraSignature, verify_saved_model, write_saved_model
from export.signature import ServingSignature, keras_predict, signature_of
from export.gpu import gpu_delegate_check
from export.tflite import (
    DEFAULT_QUANTIZATIONS,
    INTEGER_QUANTIZATIONS,
    QuantizationError,
    check_quantizations,
    convert,
    op_histogram,
)
from export.verify import TFLiteRunner, accuracy, max_abs_diff, measure_latency_ms, top1_agreement
from perceiver_keras.normalization import integer_friendly

LATENCY_THREADS = (1, 2)
"""CPU thread counts the batch-1 latency is measured with."""

TFLM_SAMPLES = 8
"""Evaluation samples run in TensorFlow Lite Micro (its reference kernels are slow) and compared with LiteRT."""

ExtraMetrics = Callable[[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, Any]]
"""`(feed, keras_outputs, tflite_outputs) -> {metric: value}`: task-specific parity metrics."""

ExtraArtifacts = Callable[[keras.Model, Path], dict[str, Any]]
"""`(model, folder) -> {"passed": bool, "summary": str}`: writes further checked files into the export."""


def export_model(
    model: keras.Model,
    out_dir: str | os.PathLike,
    *,
    quantizations: tuple[str, ...] | list[str] = DEFAULT_QUANTIZATIONS,
    calibration_data: Any = None,
    eval_data: Any = None,
    batch_size: int | None = 1,
    overwrite: bool = False,
    thresholds: Thresholds | None = None,
    latency_runs: int = 20,
    signature_name: str = "serving_default",
    num_eval: int | None = None,
    num_calibration: int = 200,
    extra_signatures: Mapping[str, ExtraSignature] | None = None,
    extra_metrics: ExtraMetrics | None = None,
    regression: bool = False,
    extra_artifacts: ExtraArtifacts | None = None,
    protected: tuple[str | os.PathLike, ...] = (),
    accelerators: bool = True,
    vela_configs: tuple[str, ...] = VELA_CONFIGS,
) -> ExportReport:
    """Exports a Keras model to a SavedModel and .tflite files, and checks them against Keras.

    Writes into `out_dir`:
    `saved_model/` (one named signature, `signature_name`, whose inputs are the Keras input names or
    dict keys), `model_<quantization>.tflite` for each quantization (builtin ops only),
    `report.json` and `report.md`. `extra_signatures` become further signatures of the same
    SavedModel (e.g. one taking raw strings), each reloaded and checked like the default one; the
    .tflite files hold only `signature_name`. Everything is written into a temporary sibling
    directory that is renamed to `out_dir` at the end, so an exception leaves nothing behind.
    Violated thresholds do not raise: the artefacts are still written and the report's `passed` is
    False. A non-finite value in the Keras or a variant's outputs fails the check it concerns;
    non-finite evaluation or calibration data is refused before anything is written.

    `out_dir` carries a marker listing what the export wrote: `overwrite` replaces only such a
    folder, holding nothing else (see `export.outdir`), so it cannot delete a run, a source model,
    a file or a folder of the user's.

    Args:
        model: a built Keras model taking one tensor, a list or a dict of named tensors.
        out_dir: the directory to create.
        quantizations: any of `"float32"`, `"float16"`, `"dynamic"` (int8 weights, float
            activations), `"int8"` (full integer; float inputs and outputs become int8) and
            `"int16x8"` (int16 activations, int8 weights; float inputs and outputs become int16).
            The integer files are traced inside `perceiver_keras.integer_friendly()`, so that every
            op between their integer input and output has an integer kernel (GELU in its tanh form).
        calibration_data: model inputs for int8 calibration, as `x` or `(x, y)` arrays, a dict of
            arrays, or a `tf.data.Dataset`; required for `"int8"` and `"int16x8"`.
        eval_data: held-out `(x, y)` (or `x`) arrays or a `tf.data.Dataset` to verify on; the
            calibration inputs are used (without accuracy) when it is `None`.
        batch_size: the .tflite files' static batch (every shape static, as NPU compilers,
            TensorFlow Lite Micro and GPU delegates want), or `None` for a dynamic batch (servers);
            the SavedModel keeps a dynamic batch either way.
        overwrite: replace an existing `out_dir`.
        thresholds: parity limits; `Thresholds()` when `None`.
        latency_runs: timed batch-1 calls per variant and thread count (0 skips the timing).
        signature_name: the serving signature's name in the SavedModel and in every .tflite.
        num_eval: verify on at most this many samples.
        num_calibration: calibrate int8 on at most this many samples.
        extra_signatures: name -> `ExtraSignature`, written into the SavedModel next to
            `signature_name`; each is called after reloading on its `example` and its max abs diff
            from its `expected` outputs is held to the SavedModel threshold; its non-float outputs
            (e.g. generated strings) must equal the expected ones exactly.
        extra_metrics: called for every .tflite variant with the evaluation inputs, the Keras
            outputs and the variant's outputs (named NumPy arrays); the metrics it returns go into
            the variant's `extra_metrics` (e.g. top-1 agreement on masked positions only).
        regression: the outputs are values (e.g. optical flow), not logits: top-1 agreement and
            accuracy, argmax metrics, are not computed (`None`), so the dynamic and int8 variants
            are measured by `max_abs_diff` and `extra_metrics` (e.g. the end-point error) and held
            to no threshold. Without it, a float output with >= 2 channels is read as logits.
        extra_artifacts: called with the model to export and the (temporary) export folder before it
            is moved into place, to write and check further files (e.g. a chunked encoder/decoder);
            its `{"passed", "summary"}` goes into the report and a failure fails it.
        protected: paths the export must not replace (the source model file or run directory).
        accelerators: check every variant with the edge toolchains (`export.accelerators`): float ops
            counted from the flatbuffer; integer files compiled by Arm's vela for each of
            `vela_configs` and run in TensorFlow Lite Micro; float32/float16 files checked for the GPU
            delegate. A tool's failure is a line in the report, never an exception.
        vela_configs: the Ethos-U configurations the integer files are compiled for.

    Returns:
        The `ExportReport`, also written as `report.json` and `report.md`.

    Raises:
        FileExistsError: `out_dir` exists and `overwrite` is False.
        export.outdir.OutputDirError: `out_dir` is a file, is or contains a `protected` path, or is
            not an earlier export's folder (with `overwrite`); nothing is touched.
        UnsupportedOpError: the model needs a Flex (select TF) or custom op; the error names it.
        ValueError: an unknown quantization, `"int8"` without calibration data, or an extra
            signature named like the default one.
        TypeError: an `extra_signatures` value that is not an `ExtraSignature`.
    """
    quantizations = check_quantizations(quantizations)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, or None for a dynamic batch. Received: batch_size={batch_size!r}")
    extra_signatures = dict(extra_signatures or {})
    for name, extra in extra_signatures.items():
        if name in (signature_name, "serving_default"):
            raise ValueError(
                f"An extra signature cannot be named like the default one ({signature_name!r} or "
                f"'serving_default'). Received: {name!r}"
            )
        if not isinstance(extra, ExtraSignature):
            raise TypeError(
                f"extra_signatures[{name!r}] must be an export.ExtraSignature. Received: {type(extra).__name__}"
            )
    out_dir = Path(out_dir).absolute()
    outdir.check_out_dir(out_dir, overwrite, protected)
    integer = [q for q in quantizations if q in INTEGER_QUANTIZATIONS]
    if integer and calibration_data is None:
        raise ValueError(f"{' and '.join(integer)} quantization needs calibration data. Received: calibration_data=None")
    if eval_data is None and calibration_data is None:
        raise ValueError("export_model needs eval_data (or calibration_data) to verify the export.")
    signature = signature_of(model)
    calibration = None
    if calibration_data is not None:
        calibration, _ = to_feed_and_labels(
            calibration_data, signature, what="calibration_data", limit=num_calibration
        )
    if eval_data is not None:
        feed, labels = to_feed_and_labels(eval_data, signature, what="eval_data", limit=num_eval)
    else:
        feed, labels = slice_feed(calibration, 0, num_eval or num_samples(calibration)), None
    for what, data in (("eval_data", feed), ("calibration_data", calibration)):
        bad = nonfinite_samples(data) if data is not None else {}
        if bad:
            raise ValueError(
                f"{what} holds NaN or infinite values, which would make every comparison meaningless: "
                + "; ".join(f"input {name!r}, samples {indices[:10]}" for name, indices in bad.items())
            )

    work = outdir.make_work_dir(out_dir)
    try:
        report = _export_into(
            work, model, signature, feed, labels, calibration, quantizations=quantizations,
            batch_size=batch_size, thresholds=thresholds or Thresholds(),
            latency_runs=latency_runs, signature_name=signature_name,
            extra_signatures=extra_signatures, extra_metrics=extra_metrics, regression=regression,
            vela_configs=vela_configs if accelerators else None,
        )
        if extra_artifacts is not None:
            report.extra_artifacts = extra_artifacts(model, work)
        report.out_dir = str(out_dir)
        report.write(work)
        outdir.finish(work, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def _export_into(
    work: Path,
    model: keras.Model,
    signature: ServingSignature,
    feed: dict[str, np.ndarray],
    labels: np.ndarray | None,
    calibration: dict[str, np.ndarray] | None,
    *,
    quantizations: tuple[str, ...],
    batch_size: int | None,
    thresholds: Thresholds,
    latency_runs: int,
    signature_name: str,
    extra_signatures: dict[str, ExtraSignature],
    extra_metrics: ExtraMetrics | None,
    regression: bool,
    vela_configs: tuple[str, ...] | None,
) -> ExportReport:
    expected = keras_predict(model, signature, feed)
    keras_accuracy = None if regression else accuracy(expected, labels)
    keras_failures = [
        f"the Keras model's output {name!r} is NaN or infinite for samples {indices[:10]}"
        for name, indices in nonfinite_samples(expected).items()
    ]

    saved_model_dir = work / "saved_model"
    extra_expected = {name: extra.expected_outputs() for name, extra in extra_signatures.items()}
    write_saved_model(model, signature, saved_model_dir, signature_name, extra_signatures)
    saved_model = {
        "path": "saved_model", **verify_saved_model(saved_model_dir, signature_name, feed, expected)
    }
    saved_model["failures"] = thresholds.saved_model_failures(saved_model["max_abs_diff"])
    if extra_signatures:
        saved_model["extra_signatures"] = {}
        for name, extra in extra_signatures.items():
            checked = verify_saved_model(saved_model_dir, name, extra.example, extra_expected[name])
            checked["failures"] = thresholds.saved_model_failures(checked["max_abs_diff"]) + [
                f"output {output!r}: {count} values differ from the expected ones"
                for output, count in checked.get("exact_mismatches", {}).items() if count]
            saved_model["extra_signatures"][name] = checked
            saved_model["failures"] += [f"{name}: {failure}" for failure in checked["failures"]]
    saved_model["passed"] = not saved_model["failures"]

    example = _first_batch(feed, batch_size or 1)
    variants = {}
    with tempfile.TemporaryDirectory() as scratch:
        sources: dict[bool, Path] = {}
        for quantization in quantizations:
            integer = quantization in INTEGER_QUANTIZATIONS
            if integer not in sources:
                sources[integer] = _conversion_source(
                    model, signature, example, batch_size, integer, Path(scratch), saved_model_dir, signature_name
                )
            try:
                flatbuffer = convert(
                    sources[integer], signature_name, quantization,
                    representative_dataset=_representative_dataset(calibration, batch_size) if calibration else None,
                )
            except QuantizationError as error:  # the other variants are still written and checked
                variants[quantization] = VariantReport(
                    quantization=quantization, file="", size_bytes=0, max_abs_diff=None, top1_agreement=None,
                    accuracy=None, latency_ms={}, ops={}, gpu_delegate={}, failures=[f"not written: {error}"],
                )
                continue
            file = f"model_{quantization}.tflite"
            (work / file).write_bytes(flatbuffer)
            runner = TFLiteRunner(flatbuffer, signature_name)
            raw = runner.run_raw(feed)
            actual = runner.dequantize(raw)
            variant = VariantReport(
                quantization=quantization,
                file=file,
                size_bytes=len(flatbuffer),
                max_abs_diff=max_abs_diff(expected, actual),
                top1_agreement=None if regression else top1_agreement(expected, actual),
                accuracy=None if regression else accuracy(actual, labels),
                latency_ms={
                    str(threads): measure_latency_ms(
                        flatbuffer, signature_name, example, threads, latency_runs
                    )
                    for threads in (LATENCY_THREADS if latency_runs > 0 else ())
                },
                ops=op_histogram(flatbuffer),
                gpu_delegate=gpu_delegate_check(flatbuffer),
                extra_metrics=extra_metrics(feed, expected, actual) if extra_metrics else {},
                accelerators=None if vela_configs is None else accelerator_reports(
                    flatbuffer, quantization, feed, raw, vela_configs=vela_configs,
                    max_tflm_samples=TFLM_SAMPLES,
                ),
            )
            variant.failures = [
                f"output {name!r} is NaN or infinite for samples {indices[:10]}"
                for name, indices in nonfinite_samples(actual).items()
            ] + [
                f"{metric} is {value}" for metric, value in variant.extra_metrics.items()
                if isinstance(value, float) and not math.isfinite(value)
            ] + thresholds.variant_failures(variant, keras_accuracy)
            variants[quantization] = variant

    return ExportReport(
        model=model.name,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions={
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
        },
        keras={"accuracy": keras_accuracy, "num_eval": num_samples(feed), "regression": regression,
               "failures": keras_failures},
        saved_model=saved_model,
        variants=variants,
        thresholds=thresholds,
        batch_size=batch_size,
    )


def _conversion_source(model: keras.Model, signature: ServingSignature, example: dict[str, np.ndarray],
                       batch_size: int | None, integer: bool, scratch: Path, saved_model_dir: Path,
                       signature_name: str) -> Path:
    """The SavedModel a variant is converted from: the shipped one (dynamic float), or a traced copy.

    A static `batch_size` gets a copy with every shape fixed; an integer variant gets a copy traced
    inside `integer_friendly()` (no op without an integer kernel between its input and output).
    """
    if batch_size is None and not integer:
        return saved_model_dir
    path = scratch / f"{'integer' if integer else 'float'}_saved_model"
    spec = signature if batch_size is None else signature.with_static_shapes(example, batch_size)
    with integer_friendly() if integer else contextlib.nullcontext():
        write_saved_model(model, spec, path, signature_name)
    return path


def _first_batch(feed: Mapping[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """The first `batch_size` samples, repeated from the start if there are fewer."""
    indices = np.arange(batch_size) % num_samples(feed)
    return {name: value[indices] for name, value in feed.items()}


def _representative_dataset(calibration: Mapping[str, np.ndarray], batch_size: int | None):
    """A converter `representative_dataset`: named batches of the file's batch size (1 if dynamic)."""
    size = batch_size or 1

    def samples() -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, max(num_samples(calibration) - size, 0) + 1, size):
            yield _first_batch(slice_feed(calibration, start, start + size), size)

    return samples
