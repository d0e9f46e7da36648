"""`python -m benchmarks edge`: every small preset on the edge toolchains, and integer against float on XNNPACK.

For each preset: `export.export_model` (batch 1; float32, int8 and int16x8; calibrated on the
preset's own inputs drawn at random, since the operators and timings, not the accuracy, are
measured), then per integer file the float ops, Arm vela's NPU/CPU ops and inferences/s on each
Ethos-U configuration, TensorFlow Lite Micro's arena, and per file the LiteRT (XNNPACK) batch-1
latency at 1 and 2 threads. Each preset's result is written to `edge.json` as soon as it is
measured, and a re-run skips the presets already there (`--fresh` to measure them again).
Accuracy of trained models: the export reports of `python -m export RUN`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

PRESETS = ("digits", "mnist", "cifar10", "imdb_reviews_small", "source_type", "pydoc_mlm", "flow_small",
           "multimodal_small")
CONFIGS = ("ethos-u55-128", "ethos-u65-256", "ethos-u85-256")


def random_inputs(model: Any, count: int = 16) -> Any:
    """Inputs of the model's signature: uniform floats in [-1, 1], byte ids, prefix padding masks."""
    from export.signature import signature_of

    rng = np.random.default_rng(0)
    feed = {}
    for name, spec in signature_of(model).specs.items():
        shape = [count, *spec.shape.as_list()[1:]]
        if spec.dtype.is_floating:
            feed[name] = rng.uniform(-1, 1, shape).astype(np.float32)
        elif "mask" in name:
            lengths = rng.integers(shape[1] // 2, shape[1] + 1, (count, 1))
            feed[name] = (np.arange(shape[1])[None] < lengths).astype(spec.dtype.as_numpy_dtype)
        else:
            feed[name] = rng.integers(0, 262, shape).astype(spec.dtype.as_numpy_dtype)
    return feed if len(feed) > 1 else next(iter(feed.values()))


def measure_preset(name: str, latency_runs: int, configs: tuple[str, ...]) -> dict[str, Any]:
    """One preset's files: sizes, latencies, float ops, vela and TensorFlow Lite Micro per integer file."""
    import zoo
    from export import export_model

    model = zoo.create_model(name, seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        if name == "multimodal_small":
            return _measure_multimodal(model, Path(scratch), configs)
        x = random_inputs(model)
        text = isinstance(x, dict)
        report = export_model(model, Path(scratch) / "export", calibration_data=x, eval_data=x,
                              quantizations=("float32", "int8") if text else ("float32", "int8", "int16x8"),
                              latency_runs=latency_runs, vela_configs=configs, regression=name == "flow_small")
    return {"preset": name, "parameters": model.count_params(),
            "files": {q: _summary(v.size_bytes, v.latency_ms, v.accelerators, v.failures)
                      for q, v in report.variants.items()}}


def _measure_multimodal(model: Any, scratch: Path, configs: tuple[str, ...]) -> dict[str, Any]:
    import zoo
    from zoo.multimodal.export import export_arrays, export_chunked

    config = zoo.get_preset("multimodal_small").config
    clips = export_arrays("synthetic_audiovisual", config["num_frames"], list(config["frame_size"]),
                          config["num_audio_samples"], config["num_classes"], tone_period=32, num_calibration=4,
                          num_eval=1)
    report = export_chunked(model, scratch, inputs=clips["eval"], calibration_inputs=clips["calibration"],
                            quantizations=("int8",), vela_configs=configs)
    files = {}
    for part, accelerators in report.variants["int8"]["accelerators"].items():
        size = report.variants["int8"][f"{part}_bytes"]
        files[f"int8 {part}"] = _summary(size, {}, accelerators, report.variants["int8"]["failures"])
    return {"preset": "multimodal_small", "parameters": model.count_params(), "files": files}


def _summary(size: int, latency: dict[str, float], accelerators: dict[str, Any] | None, failures: list[str]
             ) -> dict[str, Any]:
    accelerators = accelerators or {}
    vela = {config: {key: result.get(key) for key in ("ok", "error", "npu_ops", "cpu_ops", "cpu_op_types",
                                                      "inferences_per_second", "sram_kib", "off_chip_flash_kib",
                                                      "dram_kib")}
            for config, result in accelerators.get("vela", {}).items()}
    tflm = accelerators.get("tflm") or {}
    return {"size_bytes": size, "latency_ms": latency, "float_ops": accelerators.get("float_ops", {}).get("count"),
            "vela": vela, "tflm": {key: tflm.get(key) for key in ("ok", "error", "arena_bytes", "max_diff_steps")},
            "failures": failures}


def _one_line(error: str | None, limit: int = 160) -> str:
    """A tool's message as one table cell: whitespace collapsed, the end kept (where the reason is)."""
    text = " ".join((error or "").split()).replace("|", "/")
    return text if len(text) <= limit else "..." + text[-limit:]


def page(results: dict[str, Any], command: str, ops: dict[str, Any] | None = None) -> str:
    """The Markdown page: the edge table per integer file, then integer against float32 on XNNPACK."""
    configs = sorted({config for r in results.values() for f in r["files"].values() for config in f["vela"]})
    rows = []
    for name, result in results.items():
        for variant, summary in result["files"].items():
            if not summary["vela"]:
                continue
            cells = [name, variant, summary["float_ops"]]
            for config in configs:
                vela = summary["vela"].get(config, {})
                cells.append(f"{vela['npu_ops']} / {vela['cpu_ops']}, {vela['inferences_per_second']:.0f}/s"
                             if vela.get("ok") else f"failed: {_one_line(vela.get('error'))}")
            tflm = summary["tflm"]
            cells.append(f"{tflm['arena_bytes'] / 1024:.0f} KiB, {tflm['max_diff_steps']} steps" if tflm.get("ok")
                         else f"failed: {_one_line(tflm.get('error'))}")
            rows.append(cells)
    edge = harness.markdown_table(["preset", "file", "float ops", *[f"{c} NPU / CPU ops, est." for c in configs],
                                   "TFLite Micro arena, max diff"], rows)
    speed_rows = []
    for name, result in results.items():
        files = result["files"]
        base = files.get("float32", {}).get("latency_ms", {})
        for variant in ("int8", "int16x8"):
            latency = files.get(variant, {}).get("latency_ms", {})
            if not latency or not base:
                continue
            speed_rows.append([name, variant, *[latency.get(t) for t in ("1", "2")], *[base.get(t) for t in ("1", "2")],
                               *[base[t] / latency[t] if latency.get(t) and base.get(t) else None for t in ("1", "2")]])
    speed = harness.markdown_table(["preset", "file", "ms 1 thread", "ms 2 threads", "float32 ms 1t", "float32 ms 2t",
                                    "speed vs float32 1t", "2t"], speed_rows)
    return "\n".join([
        harness.header("Edge: every small preset on Arm Ethos-U (vela), TensorFlow Lite Micro and XNNPACK", command),
        "Untrained presets (seed 0) calibrated on random inputs of their signature: operators, estimates and timings "
        "do not depend on the training. `NPU / CPU ops` are vela's counts after its own lowering (a softmax is "
        "several NPU operations); `est.` is vela's inferences per second. TFLite Micro: arena bytes and the largest "
        "difference from LiteRT's outputs in quantisation steps.", "", edge, "",
        "## Integer against float32 on the CPU (LiteRT, XNNPACK, batch 1, median)", "", speed, "",
        *(_ops_section(ops) if ops else []),
    ])


def _ops_section(ops: dict[str, Any]) -> list[str]:
    from benchmarks import xnnpack_ops

    return [
        "## Why: which operators XNNPACK takes in each type (`benchmarks/xnnpack_ops.py`)", "",
        "Each operator of our integer files converted alone (a small preset's attention shapes: "
        f"{xnnpack_ops.HEADS} heads, {xnnpack_ops.LATENTS} latents, {xnnpack_ops.INPUTS} inputs, "
        f"{xnnpack_ops.CHANNELS} channels) and run in LiteRT with its default delegate, 1 thread, median "
        "of 200 calls. `XNNPACK`: the delegate took it; `LiteRT kernel`: it runs in LiteRT's own kernels "
        "and splits the delegated graph.", "",
        harness.markdown_table(xnnpack_ops.COLUMNS, xnnpack_ops.table_rows(ops)),
    ]


def main(argv: list[str] | None = None, command: str = "python -m benchmarks edge") -> Path:
    parser = argparse.ArgumentParser(prog="python -m benchmarks edge", description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--fresh", action="store_true", help="measure presets already in edge.json again")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)  # up front: a late failure must not lose what was measured
    store = args.out / "edge.json"
    results = json.loads(store.read_text()) if store.exists() and not args.fresh else {}
    for name in args.presets:
        if name in results:
            continue
        results[name] = measure_preset(name, args.latency_runs, tuple(args.configs))
        harness.write_page(store, json.dumps(results, indent=2) + "\n")  # each preset kept as soon as measured
    from benchmarks import xnnpack_ops

    ops = xnnpack_ops.run()
    harness.write_page(args.out / "xnnpack_ops.json", json.dumps(ops, indent=2) + "\n")
    return harness.write_page(args.out / "edge.md", page({n: results[n] for n in args.presets if n in results},
                                                          command, ops))


if __name__ == "__main__":
    print(main())
