"""Reports from the real edge toolchains on a .tflite flatbuffer: float ops, Arm's Ethos-U compiler
(vela), TensorFlow Lite Micro, and GPU-delegate compatibility.

Every function returns a plain JSON-able dict and never raises when a tool fails: the failure
becomes `{"ok": False, "error": "<the tool's own message>"}`, so an export keeps its other variants.

    reports = {"int8": accelerator_reports(flatbuffer, "int8", feed, litert_outputs)}
    print("\\n".join(markdown_lines(reports)))
"""

from __future__ import annotations

import collections
import contextlib
import csv
import ctypes
import functools
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from export.gpu import GPU_DELEGATE_CUSTOM_OPS, GPU_DELEGATE_OPS
from export.tflite import INTEGER_QUANTIZATIONS

VELA_CONFIGS = ("ethos-u55-128", "ethos-u65-256", "ethos-u85-256")
"""Ethos-U configurations the project compiles for. vela picks a matching system config and memory
mode for each from its bundled Arm/vela.ini (U55: Ethos_U55_High_End_Embedded / Shared_Sram, U65:
Ethos_U65_Client_Server / Dedicated_Sram_384KB, U85: Ethos_U85_SYS_DRAM_Mid / Dedicated_Sram_384KB),
all offline; no flag is needed."""
FLOAT_QUANTIZATIONS = ("float32", "float16")
FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})
_TYPE_NAMES = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
_ETHOS_U = "CUSTOM:ethos-u"


def tensor_types(flatbuffer: bytes) -> dict[str, Any]:
    """Every operator's input and output tensor types, in execution order.

    Returns:
        `{"ok": True, "ops": [{"subgraph", "index", "op", "inputs", "outputs"}]}` where each input
        and output is `{"name", "type", "constant", "model_input", "model_output"}` (`constant`: the
        tensor holds data in the file, e.g. weights; `model_*`: it is a subgraph input or output).
        Optional inputs that are absent are left out.
    """
    try:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
        ops = [
            {
                "subgraph": s, "index": i, "op": _op_name(model, op.opcodeIndex),
                "inputs": [_describe(model, graph, t) for t in op.inputs if t >= 0],
                "outputs": [_describe(model, graph, t) for t in op.outputs if t >= 0],
            }
            for s, graph in enumerate(model.subgraphs)
            for i, op in enumerate(graph.operators or [])
        ]
    except Exception as error:  # noqa: BLE001 - an unreadable file must not fail the export.
        return {"ok": False, "error": f"Could not read the flatbuffer: {error}"}
    return {"ok": True, "ops": ops}


def _describe(model: schema.ModelT, graph: schema.SubGraphT, index: int) -> dict[str, Any]:
    tensor = graph.tensors[index]
    buffer = model.buffers[tensor.buffer]
    return {
        "name": _text(tensor.name),
        "type": _TYPE_NAMES.get(tensor.type, str(tensor.type)),
        # Data inline, or (in files over 2 GB) at an offset after the flatbuffer.
        "constant": (buffer.data is not None and len(buffer.data) > 0) or bool(buffer.size),
        "model_input": index in graph.inputs,
        "model_output": index in graph.outputs,
    }


def float_ops(flatbuffer: bytes) -> dict[str, Any]:
    """The operators that compute in floating point, by type.

    The rule: an operator computes in float if any of its non-constant input or output tensors is
    FLOAT32/FLOAT16 (or FLOAT64/BFLOAT16). Two kinds are counted apart, as "boundary" ops: a
    QUANTIZE whose float input is a model input, and a DEQUANTIZE whose float output is a model
    output: they convert the model's own float inputs and outputs. A DEQUANTIZE -> NEG -> QUANTIZE
    chain inside an int8 model (Keras' LayerNormalization) is three float ops: an NPU leaves all
    three on the CPU. The goal for an int8 file is a count of 0.

    Returns:
        `{"ok", "count", "ops": {"NEG": 12, ...}, "boundary_count", "boundary": {"QUANTIZE": 1},
        "tensors": [...]}`; `tensors` names the first 10 float ops' outputs, to find them by.
    """
    types = tensor_types(flatbuffer)
    if not types["ok"]:
        return types
    compute, boundary, tensors = collections.Counter(), collections.Counter(), []
    for op in types["ops"]:
        floats = [t for t in op["inputs"] + op["outputs"] if t["type"] in FLOAT_TYPES and not t["constant"]]
        if not floats:
            continue
        if _converts_model_float(op, floats):
            boundary[op["op"]] += 1
            continue
        compute[op["op"]] += 1
        if len(tensors) < 10:
            tensors += [t["name"] for t in op["outputs"]][:1]
    return {
        "ok": True, "count": sum(compute.values()), "ops": dict(sorted(compute.items())),
        "boundary_count": sum(boundary.values()), "boundary": dict(sorted(boundary.items())),
        "tensors": tensors,
    }


def _converts_model_float(op: Mapping[str, Any], floats: list[dict[str, Any]]) -> bool:
    """A QUANTIZE of float model inputs or a DEQUANTIZE to float model outputs, and nothing else."""
    if op["op"] == "QUANTIZE":
        return all(any(t is i for i in op["inputs"]) and t["model_input"] for t in floats)
    if op["op"] == "DEQUANTIZE":
        return all(any(t is o for o in op["outputs"]) and t["model_output"] for t in floats)
    return False


def vela_report(
    flatbuffer: bytes,
    accelerator: str = "ethos-u55-128",
    system_config: str | None = None,
    memory_mode: str | None = None,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Compiles the file with Arm's Ethos-U compiler (the `vela` CLI) and reads its summary.

    vela needs an integer (int8 / int16x8) file with static shapes. A file it cannot compile (e.g. a
    dynamic batch that leaves shape-computing RESHAPEs) gives `ok: False` with vela's error. vela
    5.2 compiles a dynamic-batch file whose ops need no shape arithmetic by taking batch 1;
    `dynamic_inputs` names such inputs.

    Args:
        flatbuffer: the .tflite model.
        accelerator: a `--accelerator-config`, e.g. one of `VELA_CONFIGS`.
        system_config: `--system-config` from Arm/vela.ini; `None`: vela's default for the accelerator.
        memory_mode: `--memory-mode`; `None`: vela's default.
        timeout_s: the compile is stopped after this many seconds.

    Returns:
        `{"ok", "vela_version", "accelerator", "system_config", "memory_mode", "npu_ops", "cpu_ops"`
        (vela's own counts, after it lowers ops: a SOFTMAX is about 30 NPU operators)`,
        "cpu_op_types"` (TFLite ops left in vela's output file for the CPU)`, "cpu_reasons",
        "npu_partitions"` (ethos-u custom ops)`, "cpu_partitions"` (runs of CPU ops)`, "macs",
        "sram_kib", "off_chip_flash_kib", "dram_kib", "inferences_per_second", "ms_per_inference",
        "dynamic_inputs"}`.
    """
    command = _vela_command()
    if command is None:
        return {"ok": False, "error": "vela is not installed (pip install ethos-u-vela)."}
    report: dict[str, Any] = {"accelerator": accelerator, "vela_version": _vela_version(tuple(command))}
    with tempfile.TemporaryDirectory(prefix="vela_") as folder:
        network = Path(folder, "model.tflite")
        network.write_bytes(flatbuffer)
        args = [*command, str(network), "--accelerator-config", accelerator, "--output-dir", folder]
        args += ["--system-config", system_config] if system_config else []
        args += ["--memory-mode", memory_mode] if memory_mode else []
        try:
            run = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return {"ok": False, **report, "error": f"vela did not finish within {timeout_s:g} s."}
        summaries = sorted(Path(folder).glob("*_summary_*.csv"))
        compiled = Path(folder, "model_vela.tflite")
        if run.returncode != 0 or not summaries or not compiled.exists():
            return {"ok": False, **report, "error": _tool_error(run.stderr, run.stdout)}
        try:
            with open(summaries[0], newline="") as file:
                summary = next(csv.DictReader(file))
            report |= _vela_summary(summary, _op_order(compiled.read_bytes()), run.stdout + run.stderr)
        except Exception as error:  # noqa: BLE001 - e.g. a later vela renames a CSV column.
            return {"ok": False, **report, "error": f"Could not read vela's output: {error!r}"}
    return {"ok": True, **report, "dynamic_inputs": _dynamic_inputs(flatbuffer)}


def _vela_summary(summary: Mapping[str, str], order: list[str], log: str) -> dict[str, Any]:
    """The report's numbers from vela's summary CSV, its output file's op order and its log."""
    cpu = [op for op in order if op != _ETHOS_U]
    return {
        "system_config": summary["system_config"], "memory_mode": summary["memory_mode"],
        "npu_ops": _count_after(log, "NPU operators ="), "cpu_ops": _count_after(log, "CPU operators ="),
        "cpu_op_types": dict(sorted(collections.Counter(cpu).items())),
        "cpu_reasons": _vela_reasons(log),
        "npu_partitions": order.count(_ETHOS_U),
        "cpu_partitions": sum(op != _ETHOS_U and (i == 0 or order[i - 1] == _ETHOS_U) for i, op in enumerate(order)),
        "macs": int(float(summary["nn_macs"])),
        "sram_kib": float(summary["sram_memory_used"]),
        "off_chip_flash_kib": float(summary["off_chip_flash_memory_used"]),
        "dram_kib": float(summary["dram_memory_used"]),
        "inferences_per_second": float(summary["inferences_per_second"]),
        "ms_per_inference": float(summary["inference_time"]) * 1e3,
    }


def tflm_report(
    flatbuffer: bytes,
    feed: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray] | None = None,
    max_samples: int | None = None,
    arena_size: int | None = None,
    batched: bool = True,
) -> dict[str, Any]:
    """Runs the file in TensorFlow Lite Micro's Python interpreter (its reference kernels).

    Args:
        flatbuffer: the .tflite model.
        feed: named inputs, by signature input name; their first axis is samples, run the file's
            static batch at a time. Float values for integer inputs are quantized with the input
            tensor's scale and zero point; other values are cast to the input dtype.
        expected: LiteRT's raw outputs on `feed` (the file's dtypes), by signature output name.
        max_samples: run at most this many samples (TFLM's reference kernels are slow).
        arena_size: tensor arena bytes; `None`: TFLM's default (10x the file), grown 8x on failure.
        batched: `False`: `feed` and `expected` are one call's values with the file's own shapes
            (inputs that share no batch axis, e.g. a decode step's token, position and cache).

    Returns:
        `{"ok", "samples", "arena_bytes"` (used, from TFLM's recording allocator)`, "max_diff_steps"`
        (largest difference of integer outputs, in quantization steps)`, "max_abs_diff"` (of float
        outputs)`}`, or `{"ok": False, "error"}` with TFLM's message, e.g. "Didn't find op for
        builtin opcode 'GELU'".
    """
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return {"ok": False, "error": "tflite-micro is not installed (pip install tflite-micro)."}
    try:
        input_names, output_names = _signature_names(flatbuffer)
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": f"Could not read the flatbuffer: {error}"}
    size = arena_size or len(flatbuffer) * 10
    for _ in range(4):
        with _stderr_text() as log:
            try:
                interpreter = runtime.Interpreter.from_bytes(flatbuffer, arena_size=size)
                error = None
            except Exception as exception:  # noqa: BLE001 - TFLM raises plain RuntimeErrors.
                error = exception
        if error is None or arena_size or not ("allocate" in log[0] or "resize buffer" in log[0]):
            break
        size *= 8
    if error is not None:
        return {"ok": False, "error": _tool_error(log[0], str(error))}
    inputs = [interpreter.get_input_details(i) for i in range(len(input_names))]
    batch = int(inputs[0]["shape"][0]) if len(inputs[0]["shape"]) else 1
    missing = sorted(set(input_names) - set(feed))
    missing_outputs = sorted(set(output_names) - set(expected)) if expected is not None else []
    if missing or missing_outputs:
        return {"ok": False, "error": f"Missing inputs {missing} or expected outputs {missing_outputs}. "
                f"Received: {sorted(feed)} and {sorted(expected or {})}"}
    if not batched:  # one call: the values as they are, behind a samples axis of one
        feed = {name: np.asarray(value)[None] for name, value in feed.items()}
        expected = None if expected is None else {name: np.asarray(value)[None] for name, value in expected.items()}
        batch = 1
    total = len(feed[input_names[0]])
    total = min(total, max_samples) if max_samples else total
    steps: list[int] = []
    diffs: list[float] = []
    for start in range(0, total - batch + 1, batch):
        with _stderr_text() as log:
            try:
                for i, (name, detail) in enumerate(zip(input_names, inputs)):
                    value = feed[name][start:start + batch]
                    interpreter.set_input(_cast(value if batched else value[0], detail), i)
                interpreter.invoke()
                outputs = {name: interpreter.get_output(i) for i, name in enumerate(output_names)}
                error = None
            except Exception as exception:  # noqa: BLE001
                error = exception
        if error is not None:
            return {"ok": False, "error": _tool_error(log[0], str(error))}
        for name, value in outputs.items() if expected is not None else ():
            want = np.asarray(expected[name][start:start + batch] if batched else expected[name][0])
            got = np.asarray(value)
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0)
            (steps if np.issubdtype(want.dtype, np.integer) else diffs).append(diff)
    with _stderr_text() as log:
        interpreter.print_allocations()
    arena = _count_after(log[0], "Arena allocation total")
    return {
        "ok": True, "samples": total - total % batch, "arena_bytes": arena,
        "max_diff_steps": int(max(steps)) if steps else None,
        "max_abs_diff": float(max(diffs)) if diffs else None,
    }


def gpu_report(flatbuffer: bytes) -> dict[str, Any]:
    """GPU-delegate compatibility per op type: TFLite's analyzer and the op-name list.

    Found on TF 2.21: `tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)` checks
    nothing. It prints "Your model looks compatible with GPU delegate" for a custom op, SEGMENT_SUM,
    NON_MAX_SUPPRESSION_V5 and the int32 SHAPE / GATHER / REDUCE_PROD of a dynamic batch alike, and
    never a "GPU COMPATIBILITY WARNING". Its verdict is kept (it would list warnings again if a
    later TF restores the check); `op_list` checks names against `export.gpu.GPU_DELEGATE_OPS`
    (parameters, types and shapes unchecked).

    Returns:
        `{"ok", "analyzer_verdict": "compatible" | "incompatible", "analyzer_warnings": [...],
        "op_list_compatible": bool, "ops": {"FULLY_CONNECTED": {"count", "analyzer", "op_list"}}}`
        where `analyzer` is "ok" or its warning and `op_list` is "supported" or "unsupported".
    """
    try:
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
        types = tensor_types(flatbuffer)
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": f"The TFLite analyzer failed: {error}"}
    if not types["ok"]:
        return types
    # The analyzer prints "Subgraph#0 ...", "  Op#3 NEG(T#8) -> [T#9]" and then that op's warnings.
    warnings, by_op, subgraph, op_index = [], {}, 0, None
    for line in text.getvalue().splitlines():
        if line.startswith("Subgraph#"):
            subgraph, op_index = int(line[9:].split()[0]), None
        elif line.strip().startswith("Op#"):
            op_index = int(line.strip()[3:].split()[0])
        elif "GPU COMPATIBILITY WARNING:" in line:
            warnings.append(line.split("WARNING:", 1)[1].strip())
            by_op.setdefault((subgraph, op_index), warnings[-1])
    ops: dict[str, dict[str, Any]] = {}
    for op in types["ops"]:
        name = op["op"]
        supported = name in GPU_DELEGATE_OPS or name.removeprefix("CUSTOM:") in GPU_DELEGATE_CUSTOM_OPS
        entry = ops.setdefault(name, {"count": 0, "analyzer": "ok", "op_list": "unsupported"})
        entry["count"] += 1
        entry["op_list"] = "supported" if supported else "unsupported"
        warning = by_op.get((op["subgraph"], op["index"]))
        entry["analyzer"] = warning if warning and entry["analyzer"] == "ok" else entry["analyzer"]
    compatible = "looks compatible with GPU delegate" in text.getvalue() and not warnings
    return {
        "ok": True, "analyzer_verdict": "compatible" if compatible else "incompatible",
        "analyzer_warnings": warnings,
        "op_list_compatible": all(o["op_list"] == "supported" for o in ops.values()),
        "ops": dict(sorted(ops.items())),
    }


def accelerator_reports(
    flatbuffer: bytes,
    quantization: str,
    feed: Mapping[str, np.ndarray],
    litert_outputs: Mapping[str, np.ndarray] | None,
    vela_configs: Sequence[str] = VELA_CONFIGS,
    max_tflm_samples: int | None = 8,
    batched: bool = True,
) -> dict[str, Any]:
    """All edge-toolchain reports that apply to one .tflite variant.

    float_ops for every variant; vela per config and TFLM for integer variants
    (`INTEGER_QUANTIZATIONS`); the GPU report for float ones (`FLOAT_QUANTIZATIONS`). A "dynamic"
    (int8 weights, float activations) file gets float_ops only: no NPU or GPU runs it as such.

    Args:
        flatbuffer: the .tflite model.
        quantization: the variant's name, e.g. "int8".
        feed: named inputs (float values are quantized for TFLM).
        litert_outputs: LiteRT's raw outputs on `feed`, compared with TFLM's; `None`: no comparison.
        vela_configs: Ethos-U accelerator configurations to compile for.
        max_tflm_samples: samples run in TFLM.
        batched: `False`: `feed` and `litert_outputs` are one call's values with the file's shapes
            (see `tflm_report`).
    """
    reports: dict[str, Any] = {"quantization": quantization, "float_ops": float_ops(flatbuffer)}
    if quantization in INTEGER_QUANTIZATIONS:
        reports["vela"] = {config: vela_report(flatbuffer, config) for config in vela_configs}
        reports["tflm"] = tflm_report(flatbuffer, feed, litert_outputs, max_samples=max_tflm_samples, batched=batched)
    elif quantization in FLOAT_QUANTIZATIONS:
        reports["gpu"] = gpu_report(flatbuffer)
    return reports


def markdown_lines(reports: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Two Markdown tables over `{variant: accelerator_reports(...)}`: vela, then the other checks."""
    vela = ["| variant | Ethos-U | ops NPU / CPU | partitions NPU / CPU | inferences/s (ms) "
            "| SRAM / off-chip KiB | CPU ops |", "|---|---|---|---|---|---|---|"]
    for variant, report in reports.items():
        for config, result in report.get("vela", {}).items():
            if not result["ok"]:
                vela.append(f"| {variant} | {config} | failed: {_cell(result['error'])} | | | | |")
                continue
            cpu = ", ".join(f"{op} {n}" for op, n in result["cpu_op_types"].items()) or "-"
            vela.append(
                f"| {variant} | {config} | {result['npu_ops']} / {result['cpu_ops']} | "
                f"{result['npu_partitions']} / {result['cpu_partitions']} | "
                f"{result['inferences_per_second']:.0f} ({result['ms_per_inference']:.3g}) | "
                f"{result['sram_kib']:.1f} / {_off_chip(result)} | {_cell(cpu)} |"
            )
    other = ["| variant | float ops | TFLite Micro | GPU delegate |", "|---|---|---|---|"]
    for variant, report in reports.items():
        other.append(f"| {variant} | {_float_cell(report['float_ops'])} | {_tflm_cell(report.get('tflm'))} "
                     f"| {_gpu_cell(report.get('gpu'))} |")
    return (vela + [""] if len(vela) > 2 else []) + other


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for one variant's `accelerator_reports`, e.g. for a terminal."""
    parts = [f"{report['quantization']}: float ops {_float_cell(report['float_ops'])}"]
    for config, vela in report.get("vela", {}).items():
        if vela["ok"]:
            parts.append(f"{config} NPU/CPU ops {vela['npu_ops']}/{vela['cpu_ops']}, "
                         f"{vela['inferences_per_second']:.0f} inf/s")
        else:
            parts.append(f"{config} failed")
    if "tflm" in report:
        parts.append(f"TFLM {_tflm_cell(report['tflm'])}")
    if "gpu" in report:
        parts.append(f"GPU {_gpu_cell(report['gpu'])}")
    return "; ".join(parts)


def _float_cell(report: Mapping[str, Any]) -> str:
    if not report["ok"]:
        return "unknown"
    ops = ", ".join(f"{op} {n}" for op, n in report["ops"].items())
    boundary = f" + {report['boundary_count']} boundary" if report["boundary_count"] else ""
    return f"{report['count']}{f' ({ops})' if ops else ''}{boundary}"


def _tflm_cell(report: Mapping[str, Any] | None) -> str:
    if report is None:
        return "-"
    if not report["ok"]:
        return f"failed: {_cell(report['error'])}"
    steps, diff = report["max_diff_steps"], report["max_abs_diff"]
    diff = (f", max diff {steps} step{'' if steps == 1 else 's'}" if steps is not None
            else f", max diff {diff:.3g}" if diff is not None else "")
    return f"ran, arena {report['arena_bytes'] / 1024:.1f} KiB{diff}"


def _gpu_cell(report: Mapping[str, Any] | None) -> str:
    if report is None:
        return "-"
    if not report["ok"]:
        return f"failed: {_cell(report['error'])}"
    unsupported = [op for op, entry in report["ops"].items() if entry["op_list"] == "unsupported"]
    return (f"op list: {'unsupported ' + ', '.join(unsupported) if unsupported else 'all supported'}; "
            f"analyzer: {report['analyzer_verdict']}")


def _off_chip(vela: Mapping[str, Any]) -> str:
    if vela["dram_kib"]:
        return f"{vela['dram_kib']:.1f} DRAM"
    return f"{vela['off_chip_flash_kib']:.1f} flash"


def _cell(text: str) -> str:
    return text.strip().splitlines()[0].replace("|", "\\|") if text.strip() else ""


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _op_name(model: schema.ModelT, opcode_index: int) -> str:
    code = model.operatorCodes[opcode_index]
    if flatbuffer_utils.get_builtin_code_from_operator_code(code) == schema.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + _text(code.customCode)
    return flatbuffer_utils.opcode_to_name(model, opcode_index) or f"UNKNOWN_{opcode_index}"


def _op_order(flatbuffer: bytes) -> list[str]:
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    return [_op_name(model, op.opcodeIndex) for g in model.subgraphs for op in g.operators or []]


def _signature_names(flatbuffer: bytes) -> tuple[list[str], list[str]]:
    """Names of subgraph 0's inputs and outputs in index order: signature names, else tensor names."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    names = {t: _text(graph.tensors[t].name) for t in list(graph.inputs) + list(graph.outputs)}
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == 0:
            maps = (signature.inputs or []) + (signature.outputs or [])
            names.update({m.tensorIndex: _text(m.name) for m in maps})
    return [names[t] for t in graph.inputs], [names[t] for t in graph.outputs]


def _dynamic_inputs(flatbuffer: bytes) -> list[str]:
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph, (names, _) = model.subgraphs[0], _signature_names(flatbuffer)
    signatures = [graph.tensors[t].shapeSignature for t in graph.inputs]
    return [name for name, shape in zip(names, signatures) if shape is not None and -1 in list(shape)]


def _cast(value: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """Casts to the input dtype, quantizing floats for an integer input, as verify.TFLiteRunner does."""
    value, dtype = np.asarray(value), np.dtype(detail["dtype"])
    scales = detail["quantization_parameters"]["scales"]
    if len(scales) and np.issubdtype(value.dtype, np.floating) and np.issubdtype(dtype, np.integer):
        zero_point, limits = detail["quantization_parameters"]["zero_points"][0], np.iinfo(dtype)
        value = np.clip(np.round(value / scales[0] + zero_point), limits.min, limits.max)
    return value.astype(dtype)


@contextlib.contextmanager
def _stderr_text() -> Iterator[list[str]]:
    """Captures what native code writes to file descriptor 2; the text is `[0]` of the list after."""
    captured: list[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            with contextlib.suppress(Exception):
                ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _tool_error(stderr: str, fallback: str) -> str:
    """A tool's own message: the exception at the end of a traceback, else its last lines."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            frames = lines[i + 1:]
            j = next((k for k, f in enumerate(frames) if not f.startswith(" ")), len(frames))
            lines = frames[j:]
    return "\n".join(lines[-20:]).strip() or fallback.strip()[-2000:] or "failed without a message"


def _count_after(text: str, label: str) -> int | None:
    for line in text.splitlines():
        if label in line:
            return int(line.split(label, 1)[1].split()[0])
    return None


def _vela_reasons(text: str) -> list[dict[str, Any]]:
    """vela's "Warning (supported operators)" blocks, grouped by op type and reason."""
    reasons: collections.Counter[tuple[str, str]] = collections.Counter()
    for block in text.split("\n\n"):
        head, _, rest = block.strip().partition("\n")
        if head.startswith("Warning (supported operators) operator:"):
            op = head.split("operator:", 1)[1].split(",")[0].strip()
            reasons[op, " ".join(rest.removeprefix("Reason:").split())] += 1
    return [{"op": op, "reason": reason, "count": n} for (op, reason), n in reasons.most_common(20)]


def _vela_command() -> list[str] | None:
    if importlib.util.find_spec("ethosu") and importlib.util.find_spec("ethosu.vela"):
        return [sys.executable, "-m", "ethosu.vela"]
    script = Path(sys.executable).with_name("vela")
    found = str(script) if script.exists() else shutil.which("vela")
    return [found] if found else None


@functools.cache
def _vela_version(command: tuple[str, ...]) -> str | None:
    try:
        run = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip() or None
