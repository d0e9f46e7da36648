"""Training step time: our `model.fit` (float32 and mixed bfloat16, with and without XLA) beside
a PyTorch training step of transformers' model with the same weights, batch and optimizer.

Each engine runs in its own worker process (`harness.run_worker`), so its peak memory is its own
and TensorFlow's thread pools never compete with torch's. Keras steps are timed inside `fit` by a
callback, because that is the loop a user runs: the numbers include Keras' per-step overhead.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness, models

LEARNING_RATE = 1e-4
WEIGHT_DECAY = 0.01
# Keras engines: name -> (dtype policy, jit_compile).
KERAS_ENGINES = {
    "keras-float32": ("float32", False),
    "keras-float32-xla": ("float32", True),
    "keras-mixed_bfloat16": ("mixed_bfloat16", False),
    "keras-mixed_bfloat16-xla": ("mixed_bfloat16", True),
}
ENGINES = ("torch", *KERAS_ENGINES)
# Issue targets: best Keras engine of a policy must be this much faster than the torch float32 step.
TARGETS = {"float32": 1.2, "mixed_bfloat16": 2.0}


def without_attention_dropout(model: models.BenchModel) -> models.BenchModel:
    """The reference config with attention dropout off.

    `from_transformers` builds our model without dropout (config.json's
    attention_probs_dropout_prob is not read), while `PerceiverConfig` defaults it to 0.1; turning
    it off on the reference makes both sides do the same work per step.
    """
    return dataclasses.replace(model, config={**model.config, "attention_probs_dropout_prob": 0.0})


def training_batch(model: models.BenchModel, batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Channels-last images and random integer labels; every engine trains on this same batch."""
    labels = np.random.default_rng(seed + 1).integers(0, model.config["num_labels"], batch_size)
    return models.images(model, batch_size, seed), labels.astype("int64")


def torch_job(job: dict[str, Any]) -> dict[str, Any]:
    """One worker: transformers' model, AdamW, cross-entropy; a step is zero_grad/forward/backward/step."""
    import torch

    torch.set_num_threads(harness.threads())
    model = models.get(job["model"])
    reference = models.load_reference(model, Path(job["folder"])).train()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    images, labels = training_batch(model, job["batch_size"])
    pixels = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    targets = torch.from_numpy(labels)
    losses, durations = [], []

    def step() -> None:
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(reference(pixel_values=pixels).logits, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        durations.append(time.perf_counter() - start)

    timing = harness.time_calls(step, job["warmup"], job["steps"])
    dropouts = [m.p for m in reference.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]

    def forward():
        return torch.nn.functional.cross_entropy(reference(pixel_values=pixels).logits, targets)

    def forward_backward():
        optimizer.zero_grad()
        forward().backward()

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        forward_backward()
    return {
        "median_s": timing["median_s"], "first_step_s": durations[0], "mean_loss": statistics.fmean(losses),
        "parameters": sum(p.numel() for p in reference.parameters()), "active_dropout_layers": len(dropouts),
        "dtype_policy": "float32", "loss_scale": "none", "step_flops": int(counter.get_total_flops()),
        **_breakdown(forward, forward_backward, optimizer.step, job),
    }


def _breakdown(forward, forward_backward, apply, job: dict[str, Any]) -> dict[str, float]:
    """Median seconds of the forward pass (with the loss), of forward + backward, and of the optimizer update
    alone (on the last gradients), each timed on its own: where a step's time goes."""
    timed = {name: harness.time_calls(fn, job["warmup"], job["steps"])["median_s"]
             for name, fn in (("forward_s", forward), ("forward_backward_s", forward_backward), ("optimizer_s", apply))}
    return {**timed, "backward_s": timed["forward_backward_s"] - timed["forward_s"]}


def keras_job(job: dict[str, Any]) -> dict[str, Any]:
    """One worker: `from_transformers` under the job's dtype policy, compiled and trained with `fit`."""
    import keras
    import tensorflow as tf

    from zoo.convert import from_transformers

    keras.config.set_dtype_policy(job["dtype_policy"])  # Before the model is built, so its layers take it.
    model_spec = models.get(job["model"])
    model = from_transformers(job["folder"])
    model.compile(
        optimizer=keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=job["jit_compile"],
    )
    images, labels = training_batch(model_spec, job["batch_size"])
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(job["batch_size"]).repeat()
    timer = harness.step_timer()
    history = model.fit(data, steps_per_epoch=job["warmup"] + job["steps"], epochs=1, verbose=0, callbacks=[timer])
    dropouts = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout) and layer.rate > 0]
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    return {
        "median_s": statistics.median(timer.durations[job["warmup"]:]), "first_step_s": timer.durations[0],
        "mean_loss": float(history.history["loss"][-1]), "parameters": model.count_params(),
        "active_dropout_layers": len(dropouts), "dtype_policy": model.dtype_policy.name,
        "loss_scale": "dynamic" if scaled else "none", **_keras_breakdown(model, images, labels, job),
    }


def _keras_breakdown(model, images: np.ndarray, labels: np.ndarray, job: dict[str, Any]) -> dict[str, float]:
    """The fitted model's forward, forward + backward and optimizer update, each in its own `tf.function`
    compiled as `fit`'s (XLA or not), after the timed `fit`."""
    import tensorflow as tf

    x, y, variables = tf.constant(images), tf.constant(labels), model.trainable_variables

    def loss():
        return model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)

    def gradients():
        with tf.GradientTape() as tape:
            value = loss()
        return tape.gradient(value, variables)

    compiled = dict(jit_compile=job["jit_compile"], autograph=False)
    forward, forward_backward = tf.function(loss, **compiled), tf.function(gradients, **compiled)
    last = forward_backward()
    apply = tf.function(lambda: model.optimizer.apply(last, variables), **compiled)

    return _breakdown(forward, forward_backward, apply, job)  # eager calls of a tf.function return when it is done


def _job(engine: str, model: str, folder: Path, batch_size: int, steps: int, warmup: int) -> dict[str, Any]:
    job = dict(model=model, folder=str(folder), batch_size=batch_size, steps=steps, warmup=warmup)
    if engine == "torch":
        return {"run": "benchmarks.training:torch_job", **job}
    dtype_policy, jit_compile = KERAS_ENGINES[engine]
    return {"run": "benchmarks.training:keras_job", "dtype_policy": dtype_policy, "jit_compile": jit_compile, **job}


def run(out_dir: Path, *, model: str = "small_fourier", batch_size: int = 8, steps: int = 3, warmup: int = 1,
        toy: bool = False, command: str = "python -m benchmarks training") -> Path:
    """Times training steps of each engine, writes out_dir/'training.md', returns its path."""
    if toy:
        model, batch_size, steps, warmup = "toy_fourier", 2, 2, 1
    if batch_size < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"Expected batch_size >= 1, steps >= 1, warmup >= 0. "
                         f"Received: batch_size={batch_size}, steps={steps}, warmup={warmup}")
    spec = without_attention_dropout(models.get(model))
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    path = Path(out_dir) / "training.md"
    peak = harness.run_worker({"run": "benchmarks.inference:matmul_peak_job", "repeats": 5 if toy else 20})
    with tempfile.TemporaryDirectory(prefix="perceiver-training-") as folder:
        models.save_reference(spec, Path(folder))
        for index, engine in enumerate(ENGINES, 1):
            results[engine] = harness.run_worker(
                _job(engine, spec.name, Path(folder), batch_size, steps, warmup), timeout_s=600 if toy else 7200
            )
            if index < len(ENGINES):  # a crash or Ctrl-C keeps the engines measured so far
                page = _page(spec, batch_size, steps, warmup, results, command, toy, (load_before, os.getloadavg()[0]),
                             peak)
                harness.write_page(path, f"**Incomplete: {index} of {len(ENGINES)} engines measured so far.**\n\n"
                                         + page)
    load = (load_before, os.getloadavg()[0])
    return harness.write_page(path, _page(spec, batch_size, steps, warmup, results, command, toy, load, peak))


def _ok(result: dict[str, Any]) -> bool:
    return "error" not in result and math.isfinite(result.get("median_s", math.nan))


def _speedup(results: dict[str, dict[str, Any]], engine: str, key: str = "median_s") -> float | None:
    torch_result, result = results.get("torch", {}), results.get(engine, {})
    if not (_ok(torch_result) and _ok(result)):
        return None
    return torch_result[key] / result[key] if key == "median_s" else result[key] / torch_result[key]


def _target_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for policy, target in TARGETS.items():
        ratios = {e: _speedup(results, e) for e, (p, _) in KERAS_ENGINES.items() if p == policy}
        ratios = {e: r for e, r in ratios.items() if r is not None}
        if not ratios:
            lines.append(f"- {policy}: >= {target}x faster than torch: NOT MEASURED (an engine failed).")
            continue
        best = max(ratios, key=ratios.get)
        verdict = "MET" if ratios[best] >= target else "MISSED"
        lines.append(f"- {policy}: >= {target}x faster than torch: **{verdict}** ({best}: {ratios[best]:.2f}x)")
    return lines


def _peak_sentence(peak: dict[str, Any]) -> str:
    if "error" in peak or not peak:
        return f"Matmul peak: not measured ({peak.get('error', 'no result')})."
    return (f"Matmul peak measured in this run (2048^3 float32, `inference.matmul_peak_job`): torch "
            f"{peak['torch']:.1f} GFLOP/s (its GEMM library: MKL), TensorFlow {peak['tensorflow']:.1f} GFLOP/s "
            "(oneDNN): a float32 step is mostly matmuls, and its GFLOP/s against its own framework's peak says how much of "
            "that library's speed it gets.")


def _dropout_sentence(results: dict[str, dict[str, Any]]) -> str:
    counts = {e: r["active_dropout_layers"] for e, r in results.items() if "active_dropout_layers" in r}
    if not counts:
        return "Dropout could not be checked (every engine failed)."
    if not any(counts.values()):
        return ("Neither side runs dropout: our converted model has none and the reference is saved with "
                "`attention_probs_dropout_prob=0.0` (its default is 0.1), so both do the same work.")
    return "Active dropout layers differ: " + ", ".join(f"{e}: {n}" for e, n in counts.items()) + "."


def _page(spec: models.BenchModel, batch_size: int, steps: int, warmup: int,
          results: dict[str, dict[str, Any]], command: str, toy: bool,
          load: tuple[float, float], peak: dict[str, Any]) -> str:
    parameters = next((r["parameters"] for r in results.values() if "parameters" in r), None)
    config = ", ".join(f"{k}={v}" for k, v in spec.config.items())
    columns = ["engine", "median step (s)", "samples/s", "speed-up vs torch", "step GFLOP/s", "forward (s)",
               "backward (s)", "optimizer (s)", "peak RSS (MiB)", "peak RSS / torch", "mean loss", "first step (s)",
               "dtype policy", "loss scale"]
    step_flops = results.get("torch", {}).get("step_flops")
    rows = []
    for engine, result in results.items():
        if not _ok(result):
            error = str(result.get("error", "no timing")).replace("|", "/").replace("\n", " ")
            rows.append([engine, f"error: {error}", *[None] * (len(columns) - 2)])
            continue
        rows.append([
            engine, result["median_s"], batch_size / result["median_s"], _speedup(results, engine),
            step_flops / result["median_s"] / 1e9 if step_flops else None,
            *[result.get(key) for key in ("forward_s", "backward_s", "optimizer_s")], result["process_peak_rss_mib"], _speedup(results, engine, "process_peak_rss_mib"),
            result["mean_loss"], result["first_step_s"], result["dtype_policy"], result["loss_scale"],
        ])
    isa = harness.cpu_description()["isa"]
    bf16_note = ("This CPU has native bfloat16 instructions." if {"avx512_bf16", "amx_bf16"} & set(isa) else
                 "This CPU has no bfloat16 instructions (no avx512_bf16/amx_bf16): bfloat16 matmuls are "
                 "converted/emulated, so mixed bfloat16 is expected to be slower than float32 here.")
    parameter_text = f"{parameters:,}" if parameters is not None else "unknown"
    return "\n".join([
        harness.header("Training step time", command),
        f"Model `{spec.name}` (transformers `{spec.head}`; {config}), {parameter_text} parameters, batch "
        f"{batch_size}, AdamW (learning rate {LEARNING_RATE}, weight decay {WEIGHT_DECAY}), sparse "
        "cross-entropy on the logits against random integer labels. One step is forward, backward and "
        "the optimizer update (torch: zero_grad, forward, `loss.backward()`, `optimizer.step()`; Keras: one "
        f"`model.fit` batch). Median of {steps} steps after {warmup} warm-up step(s), each engine in a fresh "
        "process; both sides start from the same random weights (`from_transformers` of the saved reference) "
        "and train on the same batch.",
        "",
        "Keras steps are timed inside `model.fit` by a callback (`time.perf_counter()` at "
        "`on_train_batch_begin`/`on_train_batch_end`); with `steps_per_execution=1` that boundary is one step, "
        "including fit's per-step overhead, as a user sees it. Peak RSS is the whole worker process "
        "(framework, model, optimizer state and activations). Mean loss: over all steps (Keras' epoch loss), "
        "a sanity check that training is finite. First step includes tracing and, for `-xla`, compilation. "
        + _dropout_sentence(results),
        "",
        harness.markdown_table(columns, rows),
        "Forward (with the loss), backward (forward + backward less forward) and optimizer (the update alone, on the "
        "last gradients) are timed on their own after the steps, each a median of the same count (Keras: each in a "
        "`tf.function` compiled as `fit`'s, XLA or not; torch: as in its step), so they need not add up to the step. "
        "Step GFLOP/s = the FLOPs torch counts in one forward + backward pass (`torch.utils.flop_counter`: "
        f"{step_flops / 1e9:.1f} GFLOP) / step time, reference-equivalent: our cross-attention folds its key/value "
        "projections and so executes fewer FLOPs than it is credited with." if step_flops else "",
        _peak_sentence(peak),
        "",
        *(["**Toy configuration: a smoke test of the pipeline; its times and ratios are not evidence.**", ""]
          if toy else []),
        "Targets (speed-up = torch float32 step time / Keras step time, best engine of each policy):",
        "",
        *_target_lines(results),
        "",
        bf16_note,
        "",
        f"1-minute load average on {harness.threads()} cores: {load[0]:.1f} before the run, {load[1]:.1f} after "
        "it. A load near or above the core count before the run means other processes competed for the "
        "cores and inflated the times (torch's OpenMP threads suffer most: they wait on each other).",
        "",
    ])
