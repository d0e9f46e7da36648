"""The learning-parity page and plot, from the results dict `benchmarks.learning.run` writes as JSON.

`python -m benchmarks.learning_report benchmarks/results/learning.json` re-renders both from a saved run.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks import harness

FRAMEWORKS = {"torch": "PyTorch (transformers, plain loop)", "keras": "Keras (perceiver-keras, model.fit)"}
COLOURS = {"torch": "tab:orange", "keras": "tab:blue"}
GOAL_POINTS = 1.0  # The Keras mean accuracy may trail the PyTorch mean by at most this many points.


def finished(results: dict[str, Any], framework: str) -> list[dict[str, Any]]:
    """The framework's runs that finished, in seed order."""
    runs = results["runs"].get(framework, {})
    return [runs[seed] for seed in sorted(runs, key=int) if "error" not in runs[seed]]


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summary(results: dict[str, Any], framework: str) -> dict[str, Any]:
    """Mean, sample std, min and max over seeds of the final test accuracy and loss, and step times."""
    runs = finished(results, framework)
    return {
        "runs": len(runs),
        "accuracy": _spread([100 * r["final_test_accuracy"] for r in runs]),
        "loss": _spread([r["final_test_loss"] for r in runs]),
        "train_loss": _spread([r["final_train_loss"] for r in runs]),
        "median_step_s": statistics.median([r["median_step_s"] for r in runs]) if runs else math.nan,
    }


def goal_line(results: dict[str, Any]) -> str:
    torch_summary, keras_summary = summary(results, "torch"), summary(results, "keras")
    if not (torch_summary["runs"] and keras_summary["runs"]):
        return "- Goal (Keras mean accuracy within 1 point of PyTorch's, or better): NOT MEASURED (a side has no run)."
    difference = keras_summary["accuracy"]["mean"] - torch_summary["accuracy"]["mean"]
    verdict = "MET" if difference >= -GOAL_POINTS else "MISSED"
    error = math.sqrt(sum(s["accuracy"]["std"] ** 2 / s["runs"] for s in (torch_summary, keras_summary)))
    return (f"- Goal (Keras mean final test accuracy within {GOAL_POINTS:g} point of PyTorch's, or better): "
            f"**{verdict}**: Keras {keras_summary['accuracy']['mean']:.2f}% - PyTorch "
            f"{torch_summary['accuracy']['mean']:.2f}% = {difference:+.2f} points (standard error of this "
            f"difference, from the seeds' spread: {error:.2f} points).")


def _check_rows(check: dict[str, Any]) -> list[list[Any]]:
    parameters, no_decay = check["parameters"], check["no_decay_parameters"]

    def same(a, b) -> str:
        return "equal" if a == b else "**DIFFER**"

    return [
        ["parameters", f"{parameters['torch']:,}", f"{parameters['keras']:,}",
         same(parameters["torch"], parameters["keras"])],
        ["parameters without weight decay", f"{no_decay['torch']:,}", f"{no_decay['keras']:,}",
         same(no_decay["torch"], no_decay["keras"])],
        ["forward pass, torch weights copied (64 test images)", f"max abs logit {check['forward_max_abs_logit']:.3g}",
         f"max abs diff {check['forward_max_abs_diff']:.2g}", "-"],
        ["learning rate at 5 steps (Keras schedule vs torch LambdaLR)", "-",
         f"max abs diff {check['schedule_max_abs_diff']:.2g}", "-"],
        ["3 AdamW steps from the same weights, same batches",
         f"max abs logit {check['three_steps_max_abs_logit']:.3g} (moved by {check['three_steps_logit_change']:.3g})",
         f"max abs diff {check['three_steps_max_abs_diff']:.2g}", "-"],
        ["the same 3 steps with epsilon 1e-12 on both sides", "-",
         f"max abs diff {check['three_steps_tiny_epsilon_max_abs_diff']:.2g}", "-"],
    ]


def _pm(spread: dict[str, float], digits: int) -> str:
    return f"{spread['mean']:.{digits}f} ± {spread['std']:.{digits}f}"


def _range(spread: dict[str, float], digits: int) -> str:
    return f"{spread['min']:.{digits}f}-{spread['max']:.{digits}f}"


def _start_sentence(results: dict[str, Any]) -> str:
    if results.get("keras_start") == "torch":
        return ("Control run: each Keras run starts from the torch run's initial weights of the same seed "
                "(transformers' `_init_weights`, written with `save_pretrained` and loaded with "
                "`from_transformers`), so both sides start from the same point and see the same batches. ")
    return ("Each side starts from its own fresh initialisation, seeded with the seed: PyTorch from transformers' "
            "`_init_weights`; Keras from perceiver_keras' default initialisers at the commit above (the model "
            "`from_transformers` builds, re-created with `from_config`, so no torch weights are carried over). ")


def page(results: dict[str, Any], image: str = "learning.png") -> str:
    settings, config, check = results["settings"], results["config"], results["check"]
    summaries = {f: summary(results, f) for f in results["runs"]}
    rows = []
    for framework, s in summaries.items():
        rows.append([FRAMEWORKS[framework], s["runs"], _pm(s["accuracy"], 2), _range(s["accuracy"], 2),
                     _pm(s["loss"], 4), _range(s["loss"], 4), _pm(s["train_loss"], 4),
                     1000 * s["median_step_s"]])
    seed_rows = []
    for seed in results["seeds"]:
        row: list[Any] = [seed]
        for key, scale in (("final_test_accuracy", 100), ("final_test_loss", 1), ("median_step_s", 1000)):
            for framework in results["runs"]:
                run = results["runs"][framework].get(str(seed), {"error": "not run"})
                row.append(run["error"][:60] if "error" in run else scale * run[key])
        seed_rows.append(row)
    frameworks = list(results["runs"])
    seed_columns = ["seed", *[f"{f} accuracy %" for f in frameworks], *[f"{f} loss" for f in frameworks],
                    *[f"{f} step (ms)" for f in frameworks]]
    ratio = (summaries.get("keras", {}).get("median_step_s", math.nan)
             / summaries.get("torch", {}).get("median_step_s", math.nan)) if len(summaries) == 2 else math.nan
    code = results["code"]
    code_line = f"commit `{code['commit']}`" + (
        f", with uncommitted changes in {', '.join(code['uncommitted'])}" if code["uncommitted"] else
        " (no uncommitted changes in perceiver_keras/, zoo/ or benchmarks/learning.py)")
    jit = {run.get("jit_compile") for run in finished(results, "keras")}
    model_text = ", ".join(f"{k}={v}" for k, v in config.items())
    tiny = settings["steps"] < 100
    return "\n".join([
        harness.header("Learning parity: Keras `model.fit` beside a PyTorch loop", results["command"]),
        f"- Measured at {code_line}; runs started {results['date']}.",
        "",
        f"Both sides train transformers' `{results['head']}` architecture ({model_text}; "
        f"{check['parameters']['torch']:,} parameters) on scikit-learn's digits with the zoo's split and "
        f"normalisation (`zoo.image_classification.data`: {check['train_examples']} training, "
        f"{check['test_examples']} test images; (x / 16 - 0.3054) / 0.3761), the grey channel repeated to the 3 "
        "channels transformers' image preprocessor takes. No augmentation, no dropout, no label smoothing, "
        f"float32. Batch {settings['batch_size']}, {settings['steps']} steps; the batches are the same on both "
        "sides (per-epoch permutations of the training set from `numpy.random.default_rng(seed)`, read in "
        "order). Sparse cross-entropy on the logits. AdamW with learning rate "
        f"{settings['learning_rate']:g}, weight decay {settings['weight_decay']:g}, betas "
        f"{tuple(check['betas'])}, epsilon {check['epsilon']:g}; the rate rises linearly over "
        f"{settings['warmup_steps']} steps, then follows a cosine to zero at step {settings['steps']} "
        "(`zoo.schedules.FlatCosineSchedule(flat_fraction=0)` on the Keras side, a `LambdaLR` computing the "
        "same value per step on the torch side). Decayed: every kernel/weight and the latent array; not "
        "decayed: biases, LayerNorm parameters and the trainable position encodings (the classification "
        "query, and the input positions of the learned head) - `zoo.schedules.make_optimizer`'s rule, mirrored in torch parameter groups.",
        "",
        _start_sentence(results)
        + f"Test accuracy and loss are measured on all test images every {settings['eval_every']} steps "
        "(Keras: `fit`'s `validation_data`); the training loss plotted is the mean over those steps. "
        f"Each run is a fresh process; TensorFlow (intra- and inter-op) and torch both get {results['threads']} "
        f"thread(s). Keras `jit_compile` resolved to {', '.join(map(str, sorted(jit))) or 'n/a'} (the "
        "default, `\"auto\"`).",
        "",
        "## Set-up checks (one preparation process, torch seed 0)",
        "",
        harness.markdown_table(["check", "PyTorch", "Keras", ""], _check_rows(check)),
        "## Final test accuracy and loss (mean ± sample std over seeds; min-max)",
        "",
        harness.markdown_table(["framework", "seeds", "test accuracy %", "accuracy min-max", "test loss",
                                "loss min-max", "final train loss", "median step (ms)"], rows),
        goal_line(results),
        f"- Median step time, Keras / PyTorch: {ratio:.2f}x (training steps only, evaluation excluded; "
        "the first 10 steps of each run excluded; on shared cores, so a guide only).",
        *(["", "**Tiny budget: a smoke test of the pipeline; its figures are not evidence.**"] if tiny else []),
        "",
        "## Per seed",
        "",
        harness.markdown_table(seed_columns, seed_rows),
        f"![Training loss, test loss and test accuracy of both frameworks, every seed]({image})",
        "",
        "Remaining differences: the initial weights (each framework's own initialisers and random streams, "
        "unless `--keras-start torch`); where Adam adds epsilon: Keras adds it to sqrt(v) before the bias "
        "correction, torch after, so Keras' effective epsilon is larger by 1/sqrt(1 - beta_2^t) (about 32x at "
        "step 1, 3x at step 100, 1.3x at step 1000) - this is the whole of the 3-step difference above, as the "
        "row with epsilon 1e-12 shows (`--epsilon` sets it on both sides); Keras computes the schedule in "
        "float32; TensorFlow and torch kernels sum in different orders. In this under-trained regime a run is "
        "chaotic: a difference that small at step 1 grows into a different outcome (`--keras-start torch`, "
        "the same start and batches on both sides, shows how far runs from one start spread).",
        "",
    ])


def plot(results: dict[str, Any], path: Path) -> Path:
    """Training loss, test loss and test accuracy against the step: each seed thin, the mean thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = (("train_steps", "train_loss", "training loss (mean over the interval)", True),
              ("eval_steps", "test_loss", "test loss", True),
              ("eval_steps", "test_accuracy", "test accuracy (%)", False))
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for axis, (x_key, y_key, title, log) in zip(axes, panels):
        for framework in results["runs"]:
            runs = finished(results, framework)
            scale = 100 if y_key == "test_accuracy" else 1
            for index, run in enumerate(runs):
                axis.plot(run["curves"][x_key], scale * np.asarray(run["curves"][y_key]), color=COLOURS[framework],
                          alpha=0.35, linewidth=0.8, label=f"{framework} seeds" if index == 0 else None)
            if runs:
                mean = scale * np.mean([run["curves"][y_key] for run in runs], axis=0)
                axis.plot(runs[0]["curves"][x_key], mean, color=COLOURS[framework], linewidth=2,
                          label=f"{FRAMEWORKS[framework]}, mean")
        axis.set_title(title)
        axis.set_xlabel("step")
        if log:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[2].legend(loc="lower right", fontsize=8)
    figure.suptitle(f"Digits, {results['head']} ({results['check']['parameters']['torch']:,} parameters), "
                    f"batch {results['settings']['batch_size']}, seeds {results['seeds']}")
    figure.tight_layout()
    partial = path.with_name(path.name + ".partial")
    figure.savefig(partial, dpi=100, format="png")
    plt.close(figure)
    os.replace(partial, path)
    return path


def main(argv: list[str]) -> int:
    json_path = Path(argv[0])
    results = json.loads(json_path.read_text())
    plot(results, json_path.with_suffix(".png"))
    harness.write_page(json_path.with_suffix(".md"), page(results, image=json_path.with_suffix(".png").name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
