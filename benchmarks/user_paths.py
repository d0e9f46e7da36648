"""The calls users make, timed against each other in one process: `python -m benchmarks user-paths`.

One model as `zoo.create_model` returns it (no compile of ours) is called through each user path,
round after round, the paths interleaved, so a slow spell of a shared machine hits every path alike
(the cross-process `inference` page runs each engine in its own process, minutes apart). The
reference point is the fastest float32 Keras engine of the `inference` page, `predict_on_batch` of
a copy compiled with `jit_compile=False`. Writes results/user_paths.md and .json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

PATHS = ("predict", "predict_on_batch", "call (eager)", "tf.function(model)", "compiled predict_on_batch")


def measure(preset: str, rounds: int, batch_size: int = 1) -> dict[str, Any]:
    """Median and min seconds per path over `rounds` interleaved rounds (after two warm-up calls each)."""
    import keras
    import tensorflow as tf

    import zoo

    model = zoo.create_model(preset, seed=0)
    compiled = zoo.create_model(preset, seed=0)
    compiled.compile(jit_compile=False)
    x = np.random.default_rng(0).normal(size=(batch_size, *model.input_shape[1:])).astype("float32")
    function = tf.function(model)
    calls = {
        "predict": lambda: model.predict(x, verbose=0),
        "predict_on_batch": lambda: model.predict_on_batch(x),
        "call (eager)": lambda: keras.ops.convert_to_numpy(model(x, training=False)),
        "tf.function(model)": lambda: function(x, training=False).numpy(),
        "compiled predict_on_batch": lambda: compiled.predict_on_batch(x),
    }
    outputs = {name: np.asarray(call()) for name, call in calls.items()}
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    reference = outputs["compiled predict_on_batch"]
    return {name: {"median_s": statistics.median(values), "min_s": min(values),
                   "max_abs_diff": float(np.max(np.abs(outputs[name] - reference)))}
            for name, values in times.items()}


def page(results: dict[str, Any], command: str) -> str:
    rows = []
    for preset, paths in results["presets"].items():
        reference = paths["compiled predict_on_batch"]["median_s"]
        for name in PATHS:
            run = paths[name]
            rows.append([preset, name, run["median_s"] * 1e3, run["min_s"] * 1e3, run["median_s"] / reference,
                         run["max_abs_diff"]])
    return "\n".join([
        harness.header("User paths: the calls users make, against the fastest float32 Keras engine", command),
        f"Each preset as `zoo.create_model` returns it, batch 1, {results['rounds']} rounds with the paths interleaved "
        "in one process (after two warm-up calls each); `vs compiled` is the median over that of `predict_on_batch` "
        "on a copy compiled with `jit_compile=False` (the `keras-tf` engine of the inference page). The goal: "
        "every path within 1.10.",
        "",
        harness.markdown_table(["preset", "path", "median (ms)", "min (ms)", "vs compiled", "max abs diff"], rows),
    ])


def main(argv: list[str], command: str) -> Path:
    parser = argparse.ArgumentParser(prog="python -m benchmarks user-paths", description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["imagenet_fourier", "digits"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1. Received: --rounds {args.rounds}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"rounds": args.rounds, "presets": {}}
    for preset in args.presets:  # each preset in its own process: its memory and thread pools are its own
        result = harness.run_worker({"run": "benchmarks.user_paths:job", "preset": preset, "rounds": args.rounds})
        if "error" in result:
            raise RuntimeError(f"{preset}: {result['error']}")
        result.pop("process_peak_rss_mib", None)
        results["presets"][preset] = result
        print(f"{preset}: " + ", ".join(f"{k} {v['median_s'] * 1e3:.1f} ms" for k, v in result.items()), flush=True)
        harness.write_page(args.out / "user_paths.json", json.dumps(results, indent=1))
        harness.write_page(args.out / "user_paths.md", page(results, command))
    return args.out / "user_paths.md"


def job(job: dict[str, Any]) -> dict[str, Any]:
    return measure(job["preset"], job["rounds"])
