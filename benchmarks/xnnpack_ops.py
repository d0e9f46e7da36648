"""Which operators of our integer files LiteRT's XNNPACK delegate takes, and what each costs.

Every operator kind that `python -m export` writes into an int8 or int16x8 file is converted alone
(one `tf.function`, shapes of a small preset's attention: 4 heads, 64 latents, 256 inputs, 64
channels) to float32, int8 and int16x8, then loaded in LiteRT with its default delegate (XNNPACK).
A file of one operator holds a `DELEGATE` node exactly when XNNPACK took that operator; the latency
(median of many batch-1 calls, one thread) shows what the operator costs in each type. This is the
"why" behind the edge page's integer-against-float table: an operator XNNPACK does not take runs in
LiteRT's own kernels, and every such operator also splits the delegated graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

HEADS, LATENTS, INPUTS, CHANNELS = 4, 64, 256, 64

def _ops() -> dict[str, tuple[Callable[..., Any], list[tuple[int, ...]], tuple[float, float]]]:
    """Operator name -> (function of float inputs, input shapes, (low, high) of calibration values)."""
    import tensorflow as tf

    weight = np.random.default_rng(0).normal(0, 0.1, (CHANNELS, CHANNELS)).astype(np.float32)
    per_head = CHANNELS // HEADS
    return {
        "FULLY_CONNECTED": (lambda x: tf.matmul(x, weight), [(1, INPUTS, CHANNELS)], (-1, 1)),
        "BATCH_MATMUL (q k^T)": (lambda q, k: tf.matmul(q, k, transpose_b=True),
                                 [(1, HEADS, LATENTS, per_head), (1, HEADS, INPUTS, per_head)], (-1, 1)),
        "SOFTMAX": (lambda x: tf.nn.softmax(x), [(1, HEADS, LATENTS, INPUTS)], (-4, 4)),
        "TRANSPOSE": (lambda x: tf.transpose(x, [0, 2, 1, 3]), [(1, INPUTS, HEADS, per_head)], (-1, 1)),
        "MEAN (last axis)": (lambda x: tf.reduce_mean(x, -1, keepdims=True), [(1, INPUTS, CHANNELS)], (-1, 1)),
        "RSQRT": (lambda x: tf.math.rsqrt(x), [(1, INPUTS, 1)], (0.5, 2)),
        "SUB": (lambda a, b: a - b, [(1, INPUTS, CHANNELS), (1, INPUTS, 1)], (-1, 1)),
        "MUL": (lambda a, b: a * b, [(1, INPUTS, CHANNELS), (1, INPUTS, CHANNELS)], (-1, 1)),
        "ADD": (lambda a, b: a + b, [(1, INPUTS, CHANNELS), (1, INPUTS, CHANNELS)], (-1, 1)),
        "LOGISTIC": (lambda x: tf.sigmoid(x), [(1, INPUTS, CHANNELS)], (-4, 4)),
    }


def convert(fn: Callable[..., Any], shapes: list[tuple[int, ...]], value_range: tuple[float, float],
            quantization: str) -> bytes:
    """One function as a .tflite file: float32, or fully integer (int8 / int16x8) with integer I/O."""
    import tensorflow as tf

    function = tf.function(fn, input_signature=[tf.TensorSpec(s, tf.float32) for s in shapes])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    if quantization != "float32":
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.uniform(*value_range, s).astype(np.float32) for s in shapes] for _ in range(16))
        if quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int16
    return converter.convert()


def measure(flatbuffer: bytes, runs: int) -> dict[str, Any]:
    """Whether XNNPACK took the file's operator, and its median batch-1 latency (1 thread) in µs."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
    interpreter.allocate_tensors()
    names = [op["op_name"] for op in interpreter._get_ops_details()]
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(10):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return {"delegated": "DELEGATE" in names, "ops": [n for n in names if n != "DELEGATE"],
            "median_us": float(np.median(times) * 1e6)}


def run(runs: int = 200) -> dict[str, dict[str, Any]]:
    """Every operator in every type: {op: {quantization: measure(...) or {"error": ...}}}."""
    results: dict[str, dict[str, Any]] = {}
    for name, (fn, shapes, value_range) in _ops().items():
        results[name] = {}
        for quantization in ("float32", "int8", "int16x8"):
            try:
                results[name][quantization] = measure(convert(fn, shapes, value_range, quantization), runs)
            except Exception as error:  # A converter or runtime refusal is a result of the probe.
                results[name][quantization] = {"error": str(error).strip().splitlines()[-1][:160]}
    return results


def table_rows(results: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """Rows: operator, then per type whether XNNPACK took it and its latency, then int8 / float32."""
    rows = []
    for name, by_type in results.items():
        cells: list[Any] = [name]
        for quantization in ("float32", "int8", "int16x8"):
            result = by_type.get(quantization, {})
            cells.append(f"failed: {result['error']}" if "error" in result else
                         f"{'XNNPACK' if result['delegated'] else 'LiteRT kernel'}, {result['median_us']:.1f} µs")
        float_us, int8_us = (by_type.get(q, {}).get("median_us") for q in ("float32", "int8"))
        cells.append(int8_us / float_us if float_us and int8_us else None)
        rows.append(cells)
    return rows


COLUMNS = ["operator", "float32", "int8", "int16x8", "int8 / float32 time"]
