"""Running a .tflite file in LiteRT and comparing it with the Keras model."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from export.data import num_samples, slice_feed


def scale_of(detail: Mapping) -> float:
    """The quantization scale of an input or output (0 when it is not quantized)."""
    return float(detail["quantization"][0])


class TFLiteRunner:
    """Runs one signature of a .tflite model on named float/int inputs, returning float outputs.

    Float inputs of a quantized signature are quantized with the input tensor's scale and zero
    point, and quantized outputs are dequantized, so callers always see the Keras dtypes. A model
    with a static batch is run that many samples at a time; a dynamic-batch one in chunks of `batch_size`
    (the signature runner resizes its inputs before every call).

    Args:
        flatbuffer: the .tflite model.
        signature_name: the signature to run.
        num_threads: CPU threads; XNNPACK, the default delegate, is applied.
        batch_size: samples per call for dynamic-batch models.
    """

    def __init__(self, flatbuffer: bytes, signature_name: str, num_threads: int = 1, batch_size: int = 64):
        self.interpreter = Interpreter(model_content=flatbuffer, num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if signature_name not in signatures:
            raise ValueError(
                f"The .tflite model has no signature {signature_name!r}. Received: {sorted(signatures)}"
            )
        self.runner = self.interpreter.get_signature_runner(signature_name)
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        # Scalar inputs (e.g. a decode step's position) have no batch axis.
        static = [int(d["shape_signature"][0]) for d in self.inputs.values()
                  if len(d["shape_signature"]) and d["shape_signature"][0] != -1]
        self.static_batch = bool(static)
        self.batch_size = static[0] if static else batch_size

    def quantize(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Casts named inputs to the input tensors' dtypes, quantizing float values if needed."""
        missing, unknown = sorted(set(self.inputs) - set(feed)), sorted(set(feed) - set(self.inputs))
        if missing or unknown:
            raise ValueError(f"The .tflite signature takes the inputs {sorted(self.inputs)}. Received: {sorted(feed)}")
        quantized = {}
        for name, detail in self.inputs.items():
            value, dtype = np.asarray(feed[name]), np.dtype(detail["dtype"])
            # Checked before the interpreter sees it: a call with a wrong shape leaves LiteRT's signature
            # runner resized, and every later valid call then fails.
            expected = [int(d) for d in detail["shape_signature"]]
            if value.ndim != len(expected) or any(want not in (-1, got) for want, got in zip(expected[1:], value.shape[1:])):
                shown = tuple("batch" if d == -1 or i == 0 else d for i, d in enumerate(expected))
                raise ValueError(f"The .tflite input {name!r} has the shape {shown}. Received: {name}.shape={value.shape}")
            if value.dtype.kind not in "biuf" or (value.dtype.kind == "f" and dtype.kind in "iu" and not scale_of(detail)):
                raise ValueError(f"The .tflite input {name!r} takes {dtype.name} values. Received: dtype {value.dtype}")
            scale, zero_point = detail["quantization"]
            if scale and np.issubdtype(value.dtype, np.floating) and np.issubdtype(dtype, np.integer):
                limits = np.iinfo(dtype)
                value = np.clip(np.round(value / scale + zero_point), limits.min, limits.max)
            quantized[name] = value.astype(dtype)
        return quantized

    def dequantize(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Dequantizes quantized outputs with the output tensors' scale and zero point."""
        result = {}
        for name, value in outputs.items():
            scale, zero_point = self.outputs[name]["quantization"]
            if scale and np.issubdtype(value.dtype, np.integer):
                value = (value.astype(np.float32) - zero_point) * np.float32(scale)
            result[name] = value
        return result

    def __call__(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.dequantize(self.run_raw(feed))

    def run_raw(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs in the file's own dtypes (e.g. int8), on inputs quantized like `__call__`'s."""
        quantized = self.quantize(feed)
        chunks = []
        for start in range(0, num_samples(quantized), self.batch_size):
            chunk = slice_feed(quantized, start, start + self.batch_size)
            count = num_samples(chunk)
            if self.static_batch and count < self.batch_size:  # a static batch is filled up, the extra dropped
                chunk = {name: value[np.arange(self.batch_size) % count] for name, value in chunk.items()}
            outputs = self.runner(**chunk)
            chunks.append({name: value[:count] for name, value in outputs.items()})
        return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def measure_latency_ms(
    flatbuffer: bytes, signature_name: str, example: Mapping[str, np.ndarray], num_threads: int, runs: int
) -> float:
    """Median wall time in milliseconds of one batch-1 call, after warm-up, with XNNPACK.

    Args:
        flatbuffer: the .tflite model.
        signature_name: the signature to time.
        example: named inputs with a batch of 1.
        num_threads: CPU threads.
        runs: timed calls.
    """
    runner = TFLiteRunner(flatbuffer, signature_name, num_threads=num_threads)
    feed = runner.quantize(example)
    for _ in range(3):  # Warm-up: the first call allocates tensors and lets XNNPACK pack weights.
        runner.runner(**feed)
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        runner.runner(**feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def max_abs_diff(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> float | None:
    """The largest absolute difference over all floating-point outputs (`None` if there are none).

    A NaN or infinity in either side makes it infinite, so that no limit can hold.
    """
    missing = sorted(set(expected) - set(actual))
    if missing:
        raise ValueError(
            f"Outputs {missing} are missing. Expected: {sorted(expected)}. Received: {sorted(actual)}"
        )
    diffs = []
    for name, value in expected.items():
        if not np.issubdtype(value.dtype, np.floating):
            continue
        got, want = np.asarray(actual[name], np.float64), value.astype(np.float64)
        finite = np.isfinite(got).all() and np.isfinite(want).all()
        diffs.append(float(np.max(np.abs(got - want), initial=0.0)) if finite else math.inf)
    return max(diffs) if diffs else None


def logits_name(outputs: Mapping[str, np.ndarray]) -> str | None:
    """The output whose argmax is the prediction: the first float output with >= 2 channels."""
    for name in sorted(outputs):
        value = outputs[name]
        if np.issubdtype(value.dtype, np.floating) and value.ndim >= 2 and value.shape[-1] >= 2:
            return name
    return None


def top1_agreement(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> float | None:
    """Fraction of predictions whose argmax matches the Keras model's (`None` without logits)."""
    name = logits_name(expected)
    if name is None:
        return None
    return float(np.mean(np.argmax(expected[name], -1) == np.argmax(actual[name], -1)))


def accuracy(outputs: Mapping[str, np.ndarray], labels: np.ndarray | None) -> float | None:
    """Fraction of argmax predictions equal to integer (or one-hot) labels; `None` if not applicable."""
    name = logits_name(outputs)
    if name is None or labels is None:
        return None
    logits, labels = outputs[name], np.asarray(labels)
    if labels.shape == logits.shape:  # One-hot labels.
        labels = np.argmax(labels, -1)
    if labels.ndim == logits.ndim and labels.shape[-1] == 1:  # Sparse labels of shape (B, 1).
        labels = labels[..., 0]
    if labels.shape != logits.shape[:-1]:
        return None
    return float(np.mean(np.argmax(logits, -1) == labels))
