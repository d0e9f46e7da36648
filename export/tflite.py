"""SavedModel -> .tflite conversion with builtin ops only, and static checks of the flatbuffer."""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "int16x8")
"""The .tflite variants: no optimization; float16 weights; int8 weights with float activations
(dynamic range); full integer (int8 weights and activations, int8 float inputs and outputs); and
TFLite's 16x8 mode (int16 activations, int8 weights, int16 float inputs and outputs)."""

DEFAULT_QUANTIZATIONS = QUANTIZATIONS
"""What `export_model` and `python -m export` write unless told otherwise: every variant."""

INTEGER_QUANTIZATIONS = ("int8", "int16x8")
"""The fully-integer variants: calibrated, integer inputs and outputs, meant for NPUs and microcontrollers."""

RepresentativeDataset = Callable[[], Iterator[dict[str, np.ndarray]]]


class QuantizationError(ValueError):
    """A variant could not be quantized (or the quantized file cannot run); the message gives each tool's reason."""


class UnsupportedOpError(ValueError):
    """The model needs ops that are not TFLite builtins (Flex / select TF ops or custom ops).

    Attributes:
        ops: the TensorFlow or TFLite names of the offending ops, e.g. `["MatrixDeterminant"]`.
    """

    def __init__(self, ops: list[str], quantization: str, detail: str = ""):
        self.ops = ops
        message = (
            f"The {quantization} TFLite conversion needs ops that are not TFLite builtins: "
            f"{', '.join(ops) or 'unknown'}. Expected builtin ops only (no Flex / SELECT_TF_OPS, no "
            "custom ops), because LiteRT runtimes and edge accelerators cannot run the others."
        )
        super().__init__(message + (f"\n{detail}" if detail else ""))


def check_quantizations(quantizations: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validates quantization names; returns them as a tuple with duplicates removed."""
    unknown = [q for q in quantizations if q not in QUANTIZATIONS]
    if unknown or not quantizations:
        raise ValueError(
            f"Unknown quantization {', '.join(map(repr, unknown)) or '(none given)'}. "
            f"Expected some of {', '.join(QUANTIZATIONS)}. Received: {list(quantizations)}"
        )
    return tuple(dict.fromkeys(quantizations))


def convert(
    saved_model_dir: str | os.PathLike,
    signature_name: str,
    quantization: str,
    representative_dataset: RepresentativeDataset | None = None,
) -> bytes:
    """Converts one signature of a SavedModel to a .tflite flatbuffer with builtin ops only.

    Args:
        saved_model_dir: the SavedModel to convert.
        signature_name: the signature to convert; it keeps its name and input names in the .tflite.
        quantization: one of `QUANTIZATIONS`.
        representative_dataset: for `"int8"` and `"int16x8"`: yields dicts of named input batches.

    Returns:
        The .tflite flatbuffer.

    Raises:
        UnsupportedOpError: a Flex or custom op would be needed; the error names the ops.
    """
    check_quantizations([quantization])
    converter = tf.lite.TFLiteConverter.from_saved_model(
        os.fspath(saved_model_dir), signature_keys=[signature_name]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization in INTEGER_QUANTIZATIONS:
        if representative_dataset is None:
            raise ValueError(f"{quantization} quantization needs calibration data. Received: calibration_data=None")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        sixteen = quantization == "int16x8"
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if sixteen
            else tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        # Only float inputs and outputs become integers; integer inputs (token ids, masks) stay as they are.
        converter.inference_input_type = converter.inference_output_type = tf.int16 if sixteen else tf.int8
    try:
        flatbuffer = None
        if quantization == "int8":
            flatbuffer = _int8_with_observed_ranges(saved_model_dir, signature_name, representative_dataset)
        if flatbuffer is None:
            with warnings.catch_warnings():
                # int8 calibration runs the converter's own tf.lite.Interpreter, which warns that it is
                # deprecated; everything this package runs uses ai_edge_litert.
                warnings.filterwarnings("ignore", message=r"[\s\S]*tf\.lite\.Interpreter is deprecated")
                flatbuffer = converter.convert()
    except Exception as error:  # The converter raises ConverterError, which has no public base.
        ops = ops_needing_flex(error)
        if ops:
            raise UnsupportedOpError(ops, quantization) from error
        if quantization != "int16x8":
            raise
        # TensorFlow's 16x8 calibrator cannot calibrate integer model inputs (token ids: "Empty
        # min/max for tensor ..."); LiteRT's own quantizer can, from the float32 file.
        float_model = convert(saved_model_dir, signature_name, "float32")
        try:
            flatbuffer = quantize_16x8_with_litert(float_model, signature_name, representative_dataset)
            _check_runs(flatbuffer, signature_name, next(iter(representative_dataset())))
        except Exception as fallback_error:  # noqa: BLE001 - both reasons go into one clear error
            raise QuantizationError(
                f"int16x8: TensorFlow's 16x8 converter failed ({_last_line(error)}), and the file of LiteRT's "
                f"quantizer (ai-edge-quantizer, a16w8) failed too ({_last_line(fallback_error)})."
            ) from fallback_error
    check_builtin_only(flatbuffer, quantization)
    return flatbuffer


def _int8_with_observed_ranges(saved_model_dir: str | os.PathLike, signature_name: str,
                               representative_dataset: RepresentativeDataset) -> bytes | None:
    """The int8 file with the ranges its tensors really take (`export.calibration`), or None to
    convert as TensorFlow does (a Flex op, or a TensorFlow without the calibrate-only path)."""
    from export.calibration import convert_int8

    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir), signature_keys=[signature_name])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    try:
        return convert_int8(converter, signature_name, representative_dataset)[0]
    except Exception as error:  # noqa: BLE001 - the plain conversion below reports what is wrong
        warnings.warn(f"int8 with observed ranges failed ({_last_line(error)}); using TensorFlow's calibration.")
        return None


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _check_runs(flatbuffer: bytes, signature_name: str, sample: dict[str, np.ndarray]) -> None:
    """Runs one sample through the file in LiteRT (a quantizer may write a file LiteRT cannot prepare)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner(signature_name)
    details = runner.get_input_details()
    runner(**{name: np.asarray(value).astype(details[name]["dtype"]) for name, value in sample.items()})


def quantize_16x8_with_litert(float_model: bytes, signature_name: str,
                              representative_dataset: RepresentativeDataset) -> bytes:
    """int16 activations and int8 weights by LiteRT's quantizer (ai-edge-quantizer's a16w8 recipe)."""
    from ai_edge_quantizer import quantizer, recipe

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        engine = quantizer.Quantizer(bytearray(float_model), recipe.static_wi8_ai16())
        calibration = engine.calibrate({signature_name: list(representative_dataset())})
        return bytes(engine.quantize(calibration).quantized_model)


def ops_needing_flex(error: Exception) -> list[str]:
    """The TensorFlow op names a converter error says are neither builtin nor otherwise available."""
    ops = []
    for data in getattr(error, "errors", None) or []:
        # The proto's text form spells the enum, e.g. "error_code: ERROR_NEEDS_FLEX_OPS".
        needs = re.search(r"error_code: ERROR_NEEDS_(FLEX|CUSTOM)_OPS", str(data))
        name = getattr(getattr(data, "operator", None), "name", "")
        if needs and name:
            ops.append(name)
    # The textual form lists them too, e.g. "TF Select ops: MatrixDeterminant, Svd".
    for match in re.finditer(r"(?:TF Select|Custom) ops: ([^\n]+)", str(error)):
        ops.extend(op.strip() for op in match.group(1).split(","))
    ops += re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(error))
    names = [op.removeprefix("tf.") for op in ops if op]
    return sorted(set(names))


def op_histogram(flatbuffer: bytes) -> dict[str, int]:
    """Operator name -> number of uses, over all subgraphs (custom ops by their custom code)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    counts: collections.Counter[str] = collections.Counter()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            counts[_op_name(model, op.opcodeIndex)] += 1
    return dict(sorted(counts.items()))


def _op_name(model: schema.ModelT, opcode_index: int) -> str:
    code = model.operatorCodes[opcode_index]
    if flatbuffer_utils.get_builtin_code_from_operator_code(code) == schema.BuiltinOperator.CUSTOM:
        custom = code.customCode
        return "CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))
    return flatbuffer_utils.opcode_to_name(model, opcode_index) or f"UNKNOWN_{opcode_index}"


def check_builtin_only(flatbuffer: bytes, quantization: str) -> None:
    """Raises `UnsupportedOpError` if the flatbuffer holds Flex or custom ops."""
    bad = [name.removeprefix("CUSTOM:") for name in op_histogram(flatbuffer) if name.startswith("CUSTOM:")]
    if bad:
        raise UnsupportedOpError(bad, quantization, "They were found in the converted flatbuffer.")
