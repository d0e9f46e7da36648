"""A best-effort static check of whether the TFLite GPU delegate can take a .tflite model."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import tensorflow as tf

from export.tflite import op_histogram

GPU_DELEGATE_OPS = frozenset(
    """
    ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D COS CUMSUM DENSIFY
    DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD
    FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG
    LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT
    PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1
    RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX
    SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM TANH TILE
    TRANSPOSE TRANSPOSE_CONV
    """.split()
)
"""Builtin ops the GPU delegate accepts, from TFLite's tools/versioning/gpu_compatibility.cc
(`CheckGpuDelegateCompatibility`), which also checks each op's parameters; we check names only."""

GPU_DELEGATE_CUSTOM_OPS = frozenset(
    {"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"}
)

_NOTE = "Static op-name check only: op parameters, tensor types and shapes are not checked."


def gpu_delegate_check(flatbuffer: bytes) -> dict[str, Any]:
    """Says whether every op of the model is one the GPU delegate supports.

    `tf.lite.experimental.Analyzer(gpu_compatibility=True)` is asked first; its warnings are kept.
    Since TF 2.19 it no longer checks anything and always prints that the model "looks
    compatible" (tensorflow/tensorflow#77042), so the op names are also checked against
    `GPU_DELEGATE_OPS`. A model can still fail or partly fall back to the CPU at run time.

    Returns:
        `{"compatible": True | False | "unknown", "unsupported_ops": [...], "messages": [...]}`.
    """
    messages = _analyzer_warnings(flatbuffer)
    try:
        ops = op_histogram(flatbuffer)
    except Exception as error:  # noqa: BLE001 - an unreadable model must not fail the export.
        message = f"Could not read the ops: {error}"
        return {"compatible": "unknown", "unsupported_ops": [], "messages": [message]}
    unsupported = sorted(
        op for op in ops
        if not (op in GPU_DELEGATE_OPS or op.removeprefix("CUSTOM:") in GPU_DELEGATE_CUSTOM_OPS)
    )
    messages += [f"Not supported op {op}" for op in unsupported]
    return {"compatible": not messages, "unsupported_ops": unsupported, "messages": messages + [_NOTE]}


def _analyzer_warnings(flatbuffer: bytes) -> list[str]:
    analyzer = getattr(getattr(tf.lite, "experimental", None), "Analyzer", None)
    if analyzer is None:
        return []
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    except Exception:  # noqa: BLE001 - the op-name check below still runs.
        return []
    return [
        line.split("GPU COMPATIBILITY WARNING:", 1)[1].strip()
        for line in text.getvalue().splitlines()
        if "GPU COMPATIBILITY WARNING:" in line
    ]
