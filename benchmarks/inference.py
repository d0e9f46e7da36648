"""Inference latency, throughput, peak memory and GFLOP/s: ours on every path beside transformers' PyTorch.

Engines (each in its own process, same configuration, same random weights, same inputs):
- `torch`: transformers' model, float32, eval mode, `torch.inference_mode()`, threads = cores.
- `keras-tf` / `keras-tf-xla`: our Keras model on TensorFlow through `model.predict_on_batch`
  after `model.compile(jit_compile=False|True)`, float32; `keras-tf-xla-xnn` also sets
  `XLA_FLAGS=--xla_cpu_experimental_xnn_fusion_type=dot` (XLA hands its dots to XNNPACK);
  `keras-tf-xla-bf16` runs under the `mixed_bfloat16` policy; `keras-tf-sysalloc` is `keras-tf` with
  `TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1` (oneDNN's tensors from malloc instead of TensorFlow's BFC pool,
  which keeps the largest activations' memory after a call).
- `tflite-float32|float16|dynamic|int8`: our builtin-ops-only .tflite (static batch) in LiteRT with
  XNNPACK, threads = cores.
- `keras-jax`: our Keras model on the JAX backend (`predict_on_batch`, jitted).
- The user paths, on the model exactly as `zoo.convert.from_transformers` returns it (no
  `compile` of ours): `user-predict` (`model.predict(x, verbose=0)`), `user-predict-on-batch`,
  `user-call` (`model(x, training=False)`, eager) and `user-tf-function` (`tf.function(model)`).
Every engine's outputs are compared with the reference's: a fast engine computing something else
would show up in the `max abs diff` and `top-1` columns.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness, models

USER_ENGINES = ("user-predict", "user-predict-on-batch", "user-call", "user-tf-function")
"""What a user calls on a model as the zoo hands it over (no compile of ours)."""
ENGINES = (
    "torch", "keras-tf", "keras-tf-sysalloc", "keras-tf-xla", "keras-tf-xla-xnn", "keras-tf-xla-bf16",
    "tflite-float32", "tflite-float16", "tflite-dynamic", "tflite-int8", "keras-jax", *USER_ENGINES,
)
QUICK_ENGINES = ("torch", "keras-tf", "keras-tf-xla", "tflite-float32", "tflite-dynamic", "tflite-int8", "keras-jax",
                 *USER_ENGINES)
"""`make bench-quick`: the headline engines and every user path (the bf16, XNN-dot XLA and system-allocator rows
are `make bench`'s; the last changed the timed calls' peak RSS by 1%, `inference_memory.md`)."""
SIGNATURE = "serving_default"
XNN_DOTS = {"XLA_FLAGS": "--xla_cpu_experimental_xnn_fusion_type=dot"}
SYSTEM_ALLOCATOR = {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"}
ENGINE_ENV = {"keras-tf-xla-xnn": XNN_DOTS, "keras-tf-sysalloc": SYSTEM_ALLOCATOR}


# --- jobs, run inside `python -m benchmarks.worker` -------------------------------------------------

def matmul_peak_job(job: dict[str, Any]) -> dict[str, Any]:
    """Float32 GFLOP/s of a 2048^3 matmul in PyTorch and in TensorFlow: the machine's practical peak."""
    size, result = job.get("size", 2048), {}
    import torch

    torch.set_num_threads(harness.threads())
    a, b = torch.randn(size, size), torch.randn(size, size)
    timing = harness.time_calls(lambda: a @ b, warmup=3, repeats=job.get("repeats", 20))
    result["torch"] = 2 * size**3 / timing["median_s"] / 1e9
    import tensorflow as tf

    x, y = tf.random.normal((size, size)), tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.matmul(x, y))
    timing = harness.time_calls(lambda: matmul().numpy(), warmup=3, repeats=job.get("repeats", 20))
    result["tensorflow"] = 2 * size**3 / timing["median_s"] / 1e9
    return result


def prepare_job(job: dict[str, Any]) -> dict[str, Any]:
    """Writes the reference checkpoint and the inputs; counts the reference's FLOPs."""
    model, folder = models.get(job["model"]), Path(job["folder"])
    models.save_reference(model, folder / "reference", seed=0)
    for batch_size in job["batch_sizes"]:
        np.save(folder / f"images_{batch_size}.npy", models.images(model, batch_size, seed=batch_size))
    np.save(folder / "calibration.npy", models.images(model, job.get("num_calibration", 4), seed=1000))
    return {"flops_per_sample": models.reference_flops(model, 1)}


def _timed(job: dict[str, Any], predict, feed, runtime_mib: float) -> dict[str, Any]:
    """Warm-up (compiles, packs weights), then resets the peak-memory mark and times `predict(feed)`.

    `runtime_mib` is the process's RSS after the engine's imports, before its model was built: the
    runtime's own footprint, which no model or batch size changes.
    """
    before = harness.memory_mib()["rss_mib"]
    outputs = predict(feed)
    harness.reset_peak_memory()
    timing = harness.time_calls(lambda: predict(feed), warmup=job["warmup"] - 1, repeats=job["repeats"])
    memory = harness.memory_mib()
    np.save(Path(job["folder"]) / f"outputs_{job['engine']}_{job['batch_size']}.npy", np.asarray(outputs))
    return {**timing, "runtime_rss_mib": runtime_mib, "loaded_rss_mib": before, "peak_rss_mib": memory["peak_rss_mib"]}


def torch_job(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(harness.threads())
    model = models.get(job["model"])
    models.reference_class(model)  # transformers imports the model's code on first access
    runtime = harness.memory_mib()["rss_mib"]
    reference = models.load_reference(model, Path(job["folder"]) / "reference")
    images = np.load(Path(job["folder"]) / f"images_{job['batch_size']}.npy")
    pixels = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    def predict(x):
        with torch.inference_mode():
            return reference(pixel_values=x).logits.numpy()

    return _timed(job, predict, pixels, runtime)


def keras_job(job: dict[str, Any]) -> dict[str, Any]:
    import keras

    from zoo.convert import from_transformers

    runtime = harness.memory_mib()["rss_mib"]
    if job["engine"].endswith("bf16"):
        keras.config.set_dtype_policy("mixed_bfloat16")
    model = from_transformers(Path(job["folder"]) / "reference")
    model.compile(jit_compile=job["engine"] == "keras-jax" or "-xla" in job["engine"])
    images = np.load(Path(job["folder"]) / f"images_{job['batch_size']}.npy")
    result = _timed(job, lambda x: keras.ops.convert_to_numpy(model.predict_on_batch(x)).astype("float32"), images,
                    runtime)
    return {**result, "backend": keras.backend.backend(), "policy": keras.config.dtype_policy().name}


def user_job(job: dict[str, Any]) -> dict[str, Any]:
    """A user path on the model as `from_transformers` returns it: no compile, Keras' defaults."""
    import keras

    from zoo.convert import from_transformers

    runtime = harness.memory_mib()["rss_mib"]
    model = from_transformers(Path(job["folder"]) / "reference")
    images = np.load(Path(job["folder"]) / f"images_{job['batch_size']}.npy")
    if job["engine"] == "user-predict":
        def predict(x):
            return model.predict(x, verbose=0)
    elif job["engine"] == "user-predict-on-batch":
        predict = model.predict_on_batch
    elif job["engine"] == "user-call":
        def predict(x):
            return model(x, training=False)
    else:
        import tensorflow as tf

        function = tf.function(model)

        def predict(x):
            return function(x, training=False)
    result = _timed(job, lambda x: keras.ops.convert_to_numpy(predict(x)).astype("float32"), images, runtime)
    return {**result, "backend": keras.backend.backend()}


def tflite_convert_job(job: dict[str, Any]) -> dict[str, Any]:
    """Converts our model to a static-batch .tflite (builtin ops only) and writes it to the folder."""
    import time

    from export.savedmodel import write_saved_model
    from export.signature import signature_of
    from export.tflite import convert, op_histogram
    from zoo.convert import from_transformers

    folder, quantization, batch_size = Path(job["folder"]), job["engine"].removeprefix("tflite-"), job["batch_size"]
    model = from_transformers(folder / "reference")
    signature = signature_of(model)
    name = signature.names[0]
    calibration = np.load(folder / "calibration.npy")

    def representative_dataset():
        for index in range(len(calibration)):
            yield {name: np.repeat(calibration[index:index + 1], batch_size, axis=0)}

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        example = {name: np.zeros((batch_size, *model.input_shape[1:]), "float32")}
        write_saved_model(model, signature.with_static_shapes(example, batch_size), Path(scratch), SIGNATURE)
        flatbuffer = convert(scratch, SIGNATURE, quantization,
                             representative_dataset=representative_dataset if quantization == "int8" else None)
    (folder / _tflite_file(job)).write_bytes(flatbuffer)
    return {"convert_s": time.perf_counter() - start, "size_mib": len(flatbuffer) / 2**20,
            "ops": op_histogram(flatbuffer)}


def _tflite_file(job: dict[str, Any]) -> str:
    return f"{job['engine']}_{job['batch_size']}.tflite"


def tflite_job(job: dict[str, Any]) -> dict[str, Any]:
    """Times a .tflite file in a process that imports only LiteRT and numpy, as a deployment would."""
    from ai_edge_litert.interpreter import Interpreter

    runtime = harness.memory_mib()["rss_mib"]
    folder = Path(job["folder"])
    interpreter = Interpreter(model_path=str(folder / _tflite_file(job)), num_threads=harness.threads())
    runner = interpreter.get_signature_runner(SIGNATURE)
    (name, detail), = runner.get_input_details().items()
    (output_name, output_detail), = runner.get_output_details().items()
    images = np.load(folder / f"images_{job['batch_size']}.npy")
    scale, zero_point = detail["quantization"]
    if scale:  # int8 inputs: quantize as the converter's input tensor says
        images = np.clip(np.round(images / scale + zero_point), -128, 127)
    feed = {name: images.astype(detail["dtype"])}
    out_scale, out_zero_point = output_detail["quantization"]

    def predict(feed):
        output = runner(**feed)[output_name]
        return (output.astype("float32") - out_zero_point) * out_scale if out_scale else output

    return _timed(job, predict, feed, runtime)


OPTIONAL_PACKAGES = ("jax", "sklearn", "matplotlib", "scipy", "pandas")
"""Imported by `import tensorflow` when installed (LiteRT's converter utilities import jax; TensorFlow loads
`keras.src`, which imports scikit-learn, matplotlib and scipy for its wrappers and plots); none computes here."""


def runtime_job(job: dict[str, Any]) -> dict[str, Any]:
    """RSS after `import tensorflow, keras` with `job["hidden"]` made unimportable: TensorFlow's own footprint
    in an environment without those packages (the engines' `runtime MiB` is this venv's, with them)."""
    import sys

    for name in job.get("hidden", ()):
        sys.modules[name] = None  # `import name` raises ImportError, as if not installed
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    loaded = sorted(name for name in OPTIONAL_PACKAGES if sys.modules.get(name) is not None)
    return {"rss_mib": harness.memory_mib()["rss_mib"], "hidden": list(job.get("hidden", ())), "loaded": loaded}


JOBS = {"torch": "torch_job", "torch-again": "torch_job", "keras-jax": "keras_job",
        **{engine: "user_job" for engine in USER_ENGINES}}


def job_function(engine: str) -> str:
    if engine.startswith("tflite-"):
        return "tflite_job"
    return JOBS.get(engine, "keras_job")


# --- the run, in the parent process ---------------------------------------------------------------

def _compare(folder: Path, engine: str, batch_size: int) -> dict[str, float]:
    expected = np.load(folder / f"outputs_torch_{batch_size}.npy")
    actual = np.load(folder / f"outputs_{engine}_{batch_size}.npy")
    return {"max_abs_diff": float(np.max(np.abs(expected - actual))),
            "top1_agreement": float(np.mean(expected.argmax(-1) == actual.argmax(-1)))}


class Journal:
    """Every finished job of a run, appended to PAGE.jsonl as it finishes: a crash or Ctrl-C keeps them,
    and a re-run of the same command skips them (`fresh=True` starts over)."""

    def __init__(self, path: Path | None, fresh: bool = False):
        self.path, self.done = path, {}
        if path is None:
            return
        if fresh and path.exists():
            path.unlink()
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill
                    continue
                self.done[entry["key"]] = entry["result"]

    def get(self, key: str) -> dict[str, Any] | None:
        return self.done.get(key)

    def add(self, key: str, result: dict[str, Any]) -> None:
        self.done[key] = result
        if self.path is not None:
            with open(self.path, "a") as journal:
                journal.write(json.dumps({"key": key, "result": result}) + "\n")
                journal.flush()
                os.fsync(journal.fileno())


def measure(model_names, batch_sizes, engines, *, warmup: int, repeats: int, timeout_s: float = 3600,
            log=print, work_dir: Path | None = None, journal: Journal | None = None,
            on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Runs every (model, batch size, engine) job; returns the raw results.

    Args:
        work_dir: where each model's reference checkpoint, inputs and outputs live (kept for a
            re-run to compare against; default a temporary folder removed at the end).
        journal: finished jobs to skip and to record new ones in.
        on_result: called with the results so far after every job (the caller writes its page).
    """
    journal = journal or Journal(None)
    scope = tempfile.TemporaryDirectory(prefix="bench_") if work_dir is None else contextlib.nullcontext(str(work_dir))
    with scope as root:
        peak = journal.get("matmul_peak") or harness.run_worker({"run": "benchmarks.inference:matmul_peak_job"},
                                                                timeout_s)
        journal.add("matmul_peak", peak)
        log(f"matmul peak: {peak}")
        hidden = {"run": "benchmarks.inference:runtime_job", "hidden": list(OPTIONAL_PACKAGES)}
        runtime = journal.get("runtime_without_optional") or harness.run_worker(hidden, timeout_s)
        journal.add("runtime_without_optional", runtime)
        results = {"matmul_peak": peak, "runtime_without_optional": runtime, "models": {}}
        for name in model_names:
            folder = Path(root) / name
            folder.mkdir(parents=True, exist_ok=True)
            key = f"{name}/prepare"
            prepared = journal.get(key) if (folder / "reference").is_dir() else None
            if prepared is None:
                prepared = harness.run_worker({"run": "benchmarks.inference:prepare_job", "model": name,
                                               "folder": str(folder), "batch_sizes": list(batch_sizes)}, timeout_s)
            if "error" in prepared:
                raise RuntimeError(f"Could not prepare {name}: {prepared['error']}")
            journal.add(key, prepared)
            rows = results["models"][name] = {"flops_per_sample": prepared["flops_per_sample"], "runs": []}
            for batch_size in batch_sizes:
                # The reference runs first and again last; ratios use its faster run, so a slow
                # spell of the shared machine during its first run cannot flatter our engines.
                for engine in ("torch", *[e for e in engines if e != "torch"], "torch-again"):
                    key = f"{name}/{batch_size}/{engine}"
                    outputs = folder / f"outputs_{engine}_{batch_size}.npy"
                    result = journal.get(key)
                    if result is None or ("error" not in result and not outputs.exists()):
                        result = _run_engine(folder, name, engine, batch_size, warmup, repeats, timeout_s)
                        journal.add(key, result)
                    else:
                        log(f"{key}: kept from the earlier run (its journal)")
                    rows["runs"].append({"engine": engine, "batch_size": batch_size, **result})
                    log(f"{name} b{batch_size} {engine}: {result.get('median_s', result.get('error'))}")
                    if on_result is not None:
                        on_result(results)
    return results


def _run_engine(folder: Path, name: str, engine: str, batch_size: int, warmup: int, repeats: int,
                timeout_s: float) -> dict[str, Any]:
    job = {"run": f"benchmarks.inference:{job_function(engine)}", "model": name, "folder": str(folder),
           "engine": engine, "batch_size": batch_size, "warmup": warmup, "repeats": repeats}
    backend = "jax" if engine == "keras-jax" else "tensorflow"
    conversion = {}
    if engine.startswith("tflite-"):  # converted in one process, timed in another
        conversion = harness.run_worker({**job, "run": "benchmarks.inference:tflite_convert_job"}, timeout_s)
    conversion.pop("process_peak_rss_mib", None)  # the converter's memory is not the app's
    if "error" in conversion:
        return conversion
    result = {**harness.run_worker(job, timeout_s, backend=backend, env=ENGINE_ENV.get(engine)), **conversion}
    if "error" not in result and not engine.startswith("torch"):
        result.update(_compare(folder, engine, batch_size))
    return result


def _peak_gflops(results: dict[str, Any]) -> float:
    peaks = [results["matmul_peak"][k] for k in ("torch", "tensorflow") if k in results["matmul_peak"]]
    return max(peaks) if peaks else float("nan")


def _references(entry: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per batch size, the faster of the reference's two runs (first and last)."""
    best = {}
    for run in entry["runs"]:
        if run["engine"].startswith("torch") and "error" not in run:
            if run["batch_size"] not in best or run["median_s"] < best[run["batch_size"]]["median_s"]:
                best[run["batch_size"]] = run
    return best


def _working(run: dict[str, Any]) -> float:
    """Memory the calls themselves hold: peak during the timed calls minus the RSS with the model loaded."""
    return run["peak_rss_mib"] - run["loaded_rss_mib"]


def _model_memory(run: dict[str, Any]) -> float | None:
    """Peak RSS less the runtime's own footprint: the model, its compiled functions and activations."""
    return run["peak_rss_mib"] - run["runtime_rss_mib"] if "runtime_rss_mib" in run else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def table(results: dict[str, Any]) -> str:
    columns = ["model", "batch", "engine", "median latency (ms)", "throughput (img/s)", "GFLOP/s",
               "% of matmul peak", "speed-up vs torch", "peak RSS (MiB)", "RSS vs torch", "runtime MiB",
               "model + activations MiB", "model + activations vs torch", "working MiB", "working vs torch",
               "max abs diff", "top-1 agree"]
    rows, peak = [], _peak_gflops(results)
    for name, entry in results["models"].items():
        reference = _references(entry)
        for run in entry["runs"]:
            if "error" in run:
                rows.append([name, run["batch_size"], run["engine"], f"failed: {run['error']}"] + [None] * 13)
                continue
            torch_run = reference.get(run["batch_size"], {})
            gflops = entry["flops_per_sample"] * run["batch_size"] / run["median_s"] / 1e9
            rows.append([
                name, run["batch_size"], run["engine"], run["median_s"] * 1e3, run["batch_size"] / run["median_s"],
                gflops, 100 * gflops / peak,
                torch_run.get("median_s", float("nan")) / run["median_s"] if "median_s" in torch_run else None,
                run["peak_rss_mib"],
                run["peak_rss_mib"] / torch_run["peak_rss_mib"] if "peak_rss_mib" in torch_run else None,
                run.get("runtime_rss_mib"), _model_memory(run),
                _ratio(_model_memory(run), _model_memory(torch_run)) if "peak_rss_mib" in torch_run else None,
                _working(run), _working(run) / _working(torch_run) if "peak_rss_mib" in torch_run else None,
                run.get("max_abs_diff"), run.get("top1_agreement"),
            ])
    return harness.markdown_table(columns, rows)


TARGETS = (  # (what, engines, minimum speed-up over torch float32); the issue sets them at batch 1
    ("Keras/TF float32", ("keras-tf", "keras-tf-sysalloc", "keras-tf-xla", "keras-tf-xla-xnn"), 1.2),
    ("best Keras/TF mixed bfloat16", ("keras-tf-xla-bf16",), 2.0),
    ("TFLite int8 (XNNPACK)", ("tflite-int8",), 2.5),
)


def memory_notes(results: dict[str, Any]) -> list[str]:
    """What the memory columns mean, and TensorFlow's footprint without the optional packages it imports."""
    lines = [
        "Memory columns: `runtime MiB` is the worker's RSS after the engine's imports (framework and model code:",
        "torch + transformers' Perceiver module; TensorFlow + Keras + perceiver_keras + zoo.convert; LiteRT alone),",
        "before any model is built: the runtime's own footprint, the same for every model. `model + activations` is",
        "the peak RSS less that footprint: weights, compiled functions, allocator pools and activations. Every",
        "figure is the whole worker process.",
    ]
    runtime = results.get("runtime_without_optional", {})
    if "rss_mib" in runtime:
        lines += [
            "",
            f"`import tensorflow, keras` with {', '.join(runtime['hidden'])} made unimportable (as in an environment "
            f"without them): {runtime['rss_mib']:,.0f} MiB. `import tensorflow` imports them when they are installed "
            "(LiteRT's converter utilities import jax; TensorFlow loads `keras.src`, whose wrappers and plots import "
            "scikit-learn, matplotlib and scipy), so the keras-tf rows' runtime in this environment includes them.",
        ]
    return lines + [""]


def verdicts(results: dict[str, Any], model: str = "imagenet_fourier") -> list[str]:
    """The issue's inference targets, judged from this run's ratios on the ImageNet Fourier preset."""
    entry = results["models"].get(model)
    if not entry:
        return [f"- Targets are judged on `{model}`, which this run did not include."]
    runs = {(r["engine"], r["batch_size"]): r for r in entry["runs"] if "error" not in r}
    references, lines = _references(entry), []
    for batch_size, torch_run in sorted(references.items()):
        for what, engines, minimum in TARGETS:
            ratios = {e: torch_run["median_s"] / runs[(e, batch_size)]["median_s"]
                      for e in engines if (e, batch_size) in runs}
            if not ratios:
                lines.append(f"- {what}, batch {batch_size}: not measured in this run.")
                continue
            engine, ratio = max(ratios.items(), key=lambda item: item[1])
            lines.append(f"- {what}, batch {batch_size}: {ratio:.2f}x faster than torch float32 ({engine}); "
                         f"target >= {minimum}x: {'MET' if ratio >= minimum else 'MISSED'}")
        over = [f"{e} {r['peak_rss_mib'] / torch_run['peak_rss_mib']:.2f}x / {_working(r) / _working(torch_run):.2f}x"
                for (e, b), r in sorted(runs.items()) if b == batch_size and not e.startswith("torch")]
        lines.append(f"- Peak RSS / working memory vs torch at batch {batch_size} (target <= 1.00x): "
                     + ", ".join(over))
        split = [f"{e} {r['runtime_rss_mib']:,.0f} MiB ({100 * r['runtime_rss_mib'] / r['peak_rss_mib']:.0f}% of "
                 f"its peak; model + activations {_model_memory(r):,.0f} MiB)"
                 for (e, b), r in sorted(runs.items()) if b == batch_size and "runtime_rss_mib" in r]
        if split:
            lines.append(f"- Runtime's own footprint at batch {batch_size} (RSS after the engine's imports, before "
                         "its model is built): " + ", ".join(split))
    return lines or ["- The reference did not run: no ratios."]
