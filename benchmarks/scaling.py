"""Scaling: latency and peak memory against input size M and output size O, beside a Transformer.

The Perceiver's claim is that its cost is linear in M (one cross-attention of N latents to M
inputs) and in O (O queries attend to N latents), where a Transformer encoder of the same width
and depth pays M^2 for its attention scores. Each (model, size) point runs in its own worker
process, so its peak memory is its own and an out-of-memory kill ends that point only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

TIMEOUT_S = 900
SCORE_LIMIT_GIB = 8.0  # an OOM kill on a shared 24 GiB machine can take other processes with it
PERCEIVER_REPEATS = 20
TOLERANCE = 0.15  # the target: within +-15% of linear


@dataclass(frozen=True)
class Shape:
    """Widths shared by both models: C input channels, N latents, D width, L layers, heads, E outputs."""

    channels: int = 64
    latents: int = 256
    width: int = 256
    layers: int = 4
    heads: int = 4
    output_channels: int = 256


@dataclass(frozen=True)
class Sweep:
    """The M sweep (at `fixed_outputs`) and the O sweep (at `fixed_inputs`); the fit uses M >= `fit_from`."""

    input_sizes: tuple[int, ...]
    output_sizes: tuple[int, ...]
    fixed_outputs: int
    fixed_inputs: int
    fit_from: int
    shape: Shape


FULL = Sweep((1024, 2048, 4096, 8192, 16384, 32768, 65536), (1024, 4096, 16384, 65536), 256, 4096, 4096, Shape())
TOY = Sweep((256, 512, 1024), (64, 256), 64, 512, 256, Shape(16, 16, 32, 1, 4, 32))


def _perceiver(shape: Shape, inputs: int, outputs: int):
    """PerceiverIO on preprocessed (1, M, C) features with O trainable queries (no position encoding)."""
    from perceiver_keras import PerceiverDecoder, PerceiverEncoder, PerceiverIO, TrainablePositionEncoding

    return PerceiverIO(
        encoder=PerceiverEncoder(
            num_latents=shape.latents, num_latent_channels=shape.width, num_blocks=1,
            num_self_attention_layers_per_block=shape.layers, num_cross_attention_heads=1,
            num_self_attention_heads=shape.heads, name="encoder",
        ),
        # Queries are positions and outputs are features, so no query residual (as the reference's flow decoder).
        decoder=PerceiverDecoder(num_heads=1, use_query_residual=False, output_channels=shape.output_channels,
                                 name="decoder"),
        query=TrainablePositionEncoding(outputs, shape.width, name="output_query"),
        inputs_shape=(inputs, shape.channels),
        name="perceiver_io",
    )


def _transformer(shape: Shape, inputs: int):
    """Pre-LayerNorm Transformer encoder from stock layers, MLP width D (the Perceiver's widening factor 1)."""
    import keras

    features = keras.Input((inputs, shape.channels), name="inputs")
    x = keras.layers.Dense(shape.width, name="input_projection")(features)
    for i in range(shape.layers):
        normed = keras.layers.LayerNormalization(epsilon=1e-5, name=f"attention_norm_{i}")(x)
        attention = keras.layers.MultiHeadAttention(shape.heads, shape.width // shape.heads, name=f"attention_{i}")
        x = keras.layers.Add(name=f"attention_residual_{i}")([x, attention(normed, normed)])
        normed = keras.layers.LayerNormalization(epsilon=1e-5, name=f"mlp_norm_{i}")(x)
        hidden = keras.layers.Dense(shape.width, activation="gelu", name=f"mlp_in_{i}")(normed)
        mlp = keras.layers.Dense(shape.width, name=f"mlp_out_{i}")(hidden)
        x = keras.layers.Add(name=f"mlp_residual_{i}")([x, mlp])
    outputs = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    return keras.Model(features, outputs, name="transformer_encoder")


def _measure(model, inputs: np.ndarray, repeats: int) -> dict[str, Any]:
    """Median latency and working memory of `model(inputs)` in graph mode (tf.function, no XLA).

    The warm-up call traces the graph AND allocates the working memory; the allocator may keep
    it, so the RSS after warm-up can already hold it and the peak during timing barely exceeds
    that. Both deltas are kept (peak during timing over the RSS before and after warm-up) and the
    larger is the point's memory. The graph is traced before the first baseline: tracing is set-up.
    """
    import tensorflow as tf

    forward = tf.function(lambda features: model(features, training=False), jit_compile=False)
    features = tf.constant(inputs)
    traced_from = harness.memory_mib()["rss_mib"]
    forward.get_concrete_function(features)  # tracing is set-up: keep its allocations out of the baseline
    before = harness.memory_mib()["rss_mib"]
    forward(features).numpy()
    warmup_peak = harness.memory_mib()["peak_rss_mib"]
    peak_was_reset = harness.reset_peak_memory()
    baseline = harness.memory_mib()["rss_mib"]
    timing = harness.time_calls(lambda: forward(features).numpy(), warmup=0, repeats=repeats)
    peak = harness.memory_mib()["peak_rss_mib"]
    return {
        "latency_s": timing["median_s"], "min_s": timing["min_s"], "max_s": timing["max_s"],
        "repeats": repeats, "params": model.count_params(), "peak_was_reset": peak_was_reset,
        "tracing_mib": before - traced_from,
        "rss_before_warmup_mib": before, "warmup_peak_mib": warmup_peak, "rss_after_warmup_mib": baseline,
        "timing_peak_mib": peak, "memory_mib": max(peak - before, peak - baseline),
    }


def _features(job: dict[str, Any]) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, job["inputs"], job["channels"]), dtype=np.float32)


def perceiver_job(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry: one Perceiver IO point (`inputs` M, `outputs` O, plus the `Shape` fields)."""
    shape = Shape(**{key: job[key] for key in Shape.__dataclass_fields__})
    return _measure(_perceiver(shape, job["inputs"], job["outputs"]), _features(job), job["repeats"])


def transformer_job(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry: one Transformer encoder point (`inputs` M, plus the `Shape` fields)."""
    shape = Shape(**{key: job[key] for key in Shape.__dataclass_fields__})
    return _measure(_transformer(shape, job["inputs"]), _features(job), job["repeats"])


def score_gib(shape: Shape, inputs: int) -> float:
    """GiB of one layer's float32 attention scores (heads x M x M): a floor on the Transformer's peak."""
    return shape.heads * inputs**2 * 4 / 2**30


def _point(model: str, sweep: Sweep, inputs: int, outputs: int, repeats: int, cache: dict) -> dict[str, Any]:
    key = (model, inputs, outputs)
    if key not in cache:
        if model == "transformer" and score_gib(sweep.shape, inputs) > SCORE_LIMIT_GIB:
            cache[key] = {"error": f"not run: score matrix alone needs {score_gib(sweep.shape, inputs):.0f} GiB"}
        else:
            job = {"run": f"benchmarks.scaling:{model}_job", "inputs": inputs, "outputs": outputs,
                   "repeats": repeats, **asdict(sweep.shape)}
            print(f"scaling: {model} M={inputs} O={outputs}", flush=True)
            cache[key] = harness.run_worker(job, timeout_s=TIMEOUT_S)
    return cache[key]


def linear_fit(sizes: list[int], values: list[float]) -> dict[str, Any]:
    """Least-squares value = a + b * size; each point's relative deviation from the line."""
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(values, float), 1)
    fitted = intercept + slope * np.asarray(sizes, float)
    deviations = [float(v / f - 1.0) for v, f in zip(values, fitted)]
    return {"slope": float(slope), "intercept": float(intercept), "deviations": deviations,
            "passed": all(abs(d) <= TOLERANCE for d in deviations)}


def growth_exponent(sizes: list[int], values: list[float]) -> float | None:
    """Slope of log(value) against log(size): 1 for linear cost, 2 for quadratic."""
    pairs = [(s, v) for s, v in zip(sizes, values) if v > 0]
    if len(pairs) < 2:
        return None
    return float(np.polyfit(np.log([s for s, _ in pairs]), np.log([v for _, v in pairs]), 1)[0])


def _cell(result: dict[str, Any], key: str) -> Any:
    return result.get(key, result.get("error", "-") if key == "latency_s" else None)


def _fit_section(sizes: list[int], points: list[dict[str, Any]], symbol: str, unit: str) -> list[str]:
    """The linearity table and verdict for latency and memory over the given points (symbol M or O)."""
    ran = [(s, p) for s, p in zip(sizes, points) if "latency_s" in p]
    if len(ran) < 3:
        return [f"Linearity: fewer than 3 measured points over {unit}; no verdict.", ""]
    xs = [s for s, _ in ran]
    time_fit = linear_fit(xs, [p["latency_s"] for _, p in ran])
    memory_fit = linear_fit(xs, [p["memory_mib"] for _, p in ran])
    rows = [[s, p["latency_s"] * 1e6 / s, f"{dt:+.1%}", p["memory_mib"] * 1024 / s, f"{dm:+.1%}"]
            for (s, p), dt, dm in zip(ran, time_fit["deviations"], memory_fit["deviations"])]
    verdict = "PASS" if time_fit["passed"] and memory_fit["passed"] else "FAIL"
    return [
        harness.markdown_table([symbol, "µs per item", "time vs fitted line", "KiB per item",
                                "memory vs fitted line"], rows),
        f"Fit over {unit} {xs[0]:,} to {xs[-1]:,}: time = {time_fit['intercept'] * 1e3:.3g} ms + "
        f"**{time_fit['slope'] * 1e6:.3g} ms per 1k {unit}**; memory = {memory_fit['intercept']:.3g} MiB + "
        f"**{memory_fit['slope'] * 1e3:.3g} MiB per 1k {unit}**. Every point within ±{TOLERANCE:.0%} of the "
        f"line: time {'PASS' if time_fit['passed'] else 'FAIL'}, memory "
        f"{'PASS' if memory_fit['passed'] else 'FAIL'} -> **{verdict}**.", "",
    ]


def _plot(path: Path, sweep: Sweep, perceiver: list[dict], transformer: list[dict], outputs: list[dict]) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 9), constrained_layout=True)
    by_m = (f"M sweep (O = {sweep.fixed_outputs:,})", "input size M", sweep.input_sizes,
            [("Perceiver IO", perceiver, "o-"), ("Transformer encoder", transformer, "s-")])
    by_o = (f"O sweep, Perceiver only (M = {sweep.fixed_inputs:,})", "output size O", sweep.output_sizes,
            [("Perceiver IO", outputs, "^-")])
    ylabels = {"latency_s": "latency (s)", "memory_mib": "peak memory increase (MiB)"}
    panels = [(axis, key, *sweep_panel) for row, sweep_panel in zip(axes, (by_m, by_o))
              for axis, key in zip(row, ylabels)]
    for axis, key, title, xlabel, sizes, series in panels:
        measured = []
        for label, points, style in series:
            ran = [(s, p[key]) for s, p in zip(sizes, points) if p.get(key, 0) > 0]
            measured += [value for _, value in ran]
            if ran:
                axis.plot(*zip(*ran), style, label=label)
        # Guides through the last measured point, where constant costs matter least.
        for slope, anchor in ((1, series[0][1]), (2, series[-1][1])):
            ran = [(s, p[key]) for s, p in zip(sizes, anchor) if p.get(key, 0) > 0]
            if ran:
                s0, v0 = ran[-1]
                xs = np.array([sizes[0], sizes[-1]], float)
                axis.plot(xs, v0 * (xs / s0) ** slope, "--" if slope == 1 else "-.", color="gray",
                          linewidth=1, label=f"slope {slope} ({'linear' if slope == 1 else 'quadratic'})")
        skipped = [s for s, p in zip(sizes, series[-1][1]) if "error" in p] if len(series) > 1 else []
        if skipped:
            axis.text(0.02, 0.98, f"Transformer not run / failed at M = {', '.join(f'{s:,}' for s in skipped)}",
                      transform=axis.transAxes, va="top", fontsize=8)
        axis.set(xscale="log", yscale="log", title=title, xlabel=xlabel, ylabel=ylabels[key])
        if measured:  # the guides are clipped to the data, so they do not squash it
            axis.set_ylim(min(measured) / 2, max(measured) * 2)
        axis.set_xticks(sizes, [f"{size // 1024}k" if size >= 1024 else str(size) for size in sizes])
        axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        few_decades = bool(measured) and max(measured) / min(measured) < 100
        axis.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
            lambda value, _, few=few_decades: f"{value:g}" if few and f"{value:.0e}"[0] in "25" else ""))
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="best")
    s = sweep.shape
    figure.suptitle(f"Scaling, batch 1, float32: N={s.latents} latents, D={s.width}, L={s.layers} layers, "
                    f"{s.heads} heads")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _page(sweep: Sweep, command: str, repeats: int, perceiver: list[dict], transformer: list[dict],
          outputs: list[dict]) -> str:
    s, ms = sweep.shape, sweep.input_sizes
    params = {name: next((f"{p['params']:,}" for p in points if "params" in p), "?")
              for name, points in (("Perceiver", perceiver), ("Transformer", transformer))}
    rows = []
    for m, p, t in zip(ms, perceiver, transformer):
        ratio = t["latency_s"] / p["latency_s"] if "latency_s" in t and "latency_s" in p else None
        rows.append([m, _cell(p, "latency_s"), _cell(p, "memory_mib"), _cell(p, "process_peak_rss_mib"),
                     _cell(t, "latency_s"), _cell(t, "memory_mib"), _cell(t, "process_peak_rss_mib"), ratio])
    t_ran = [(m, t) for m, t in zip(ms, transformer) if "latency_s" in t]
    exponents = []
    for name, points in (("Perceiver IO", list(zip(ms, perceiver))), ("Transformer", t_ran)):
        points = [(m, p) for m, p in points if "latency_s" in p]
        for key, what in (("latency_s", "time"), ("memory_mib", "memory")):
            whole = growth_exponent([m for m, _ in points], [p[key] for _, p in points])
            last = growth_exponent([m for m, _ in points[-2:]], [p[key] for _, p in points[-2:]])
            if whole is not None:
                exponents.append(f"- {name} {what}: exponent {whole:.2f} over M = {points[0][0]:,} to "
                                 f"{points[-1][0]:,}; {last:.2f} between its two largest points.")
    fitted = [(m, p) for m, p in zip(ms, perceiver) if m >= sweep.fit_from]
    reset_note = ("" if all(p.get("peak_was_reset", True) for p in perceiver + transformer + outputs)
                  else "**VmHWM could not be reset here, so memory also holds the warm-up peak.** ")
    o_rows = [[o, _cell(p, "latency_s"), _cell(p, "memory_mib"), _cell(p, "process_peak_rss_mib"),
               f"{p['params']:,}" if "params" in p else None] for o, p in zip(sweep.output_sizes, outputs)]
    return "\n".join([
        harness.header("Scaling with input and output size", command),
        f"**Perceiver IO** (`perceiver_keras.PerceiverIO`, {params['Perceiver']} parameters at "
        f"O = {sweep.fixed_outputs:,}; each query adds {s.width}): inputs (1, M, {s.channels}) float32 features "
        f"(already preprocessed, no position encoding); {s.latents} latents of width {s.width}; one "
        f"cross-attention with 1 head; self-attention layers: {s.layers}, {s.heads} heads each; MLPs of widening "
        f"factor 1; a decoder of O trainable queries (width {s.width}, 1 head) projected to {s.output_channels} "
        f"channels. Its cost is O(MN + N^2 L + ON).",
        "",
        f"**Transformer encoder** (stock Keras layers, {params['Transformer']} parameters): Dense "
        f"{s.channels} -> {s.width}, then pre-LayerNorm layers ({s.layers}) of `MultiHeadAttention` ({s.heads} "
        f"heads of {s.width // s.heads}) and an MLP of width {s.width} (GELU), and a final LayerNorm. Its cost "
        f"is O(M^2 L). It emits one vector per input (O = M), so it has no separate O sweep: its M sweep is "
        f"its O sweep. Points whose {s.heads} x M^2 float32 score matrix alone exceeds {SCORE_LIMIT_GIB:.0f} GiB "
        f"are not run.",
        "",
        f"**Method.** Batch 1, TensorFlow backend, `tf.function` graph mode without XLA, each point in a fresh "
        f"worker process (timeout {TIMEOUT_S} s). One warm-up call, then the median of {repeats} "
        f"timed calls ({max(repeats, PERCEIVER_REPEATS)} for the Perceiver's millisecond points). *Memory* is the peak resident memory during the timed calls (VmHWM, reset after the warm-up) "
        f"minus the resident memory before the warm-up or after it, whichever gives more: the warm-up allocates "
        f"the working memory and the allocator may keep it, so the peak over the post-warm-up RSS alone would "
        f"miss it. The graph is traced, and the weights and the input array allocated, before either baseline, so "
        f"this is the forward pass's working memory (activations, scores) plus the executor's first-run set-up. "
        f"{reset_note}"
        f"*Process peak* is the worker's whole peak RSS, including TensorFlow itself "
        f"and graph tracing.",
        "",
        f"## Input size M (O = {sweep.fixed_outputs:,})",
        "",
        harness.markdown_table(["M", "Perceiver latency (s)", "Perceiver memory (MiB)", "Perceiver process peak (MiB)",
                                "Transformer latency (s)", "Transformer memory (MiB)",
                                "Transformer process peak (MiB)", "latency ratio (T / P)"], rows),
        f"### Perceiver linearity (M >= {sweep.fit_from:,}; target: within ±{TOLERANCE:.0%} of a straight line)",
        "",
        *_fit_section([m for m, _ in fitted], [p for _, p in fitted], "M", "inputs"),
        "### Growth exponents (log-log least squares; 1 = linear, 2 = quadratic)",
        "",
        *(exponents or ["- Not enough measured points."]),
        "",
        f"## Output size O (Perceiver only, M = {sweep.fixed_inputs:,})",
        "",
        harness.markdown_table(["O", "latency (s)", "memory (MiB)", "process peak (MiB)", "parameters"], o_rows),
        *_fit_section(list(sweep.output_sizes), outputs, "O", "outputs"),
        "## Plot",
        "",
        "![Latency and memory against M and O, log-log](scaling.png)",
        "",
    ])


class _Journal(dict):
    """The measured points, {(model, M, O): result}, also written to a JSON file after each new one.

    A run that crashes or is stopped keeps what it measured there; the same command run again starts
    from it and measures only the missing points. `run` deletes the file once its page is written.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        if path.exists():
            for entry in json.loads(path.read_text()):
                super().__setitem__(tuple(entry["key"]), entry["result"])

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        entries = [{"key": list(k), "result": v} for k, v in self.items()]
        self.path.write_text(json.dumps(entries))


def run(out_dir: Path, *, toy: bool = False, command: str = "python -m benchmarks scaling",
        repeats: int = 3) -> Path:
    """Runs the sweeps, writes out_dir/'scaling.md' and out_dir/'scaling.png', returns the .md path."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be a positive integer. Received: repeats={repeats!r}")
    out_dir = Path(out_dir)
    sweep, repeats = (TOY, 1) if toy else (FULL, repeats)
    # Perceiver points take milliseconds, so they get more calls: at M = 4k the input-dependent part
    # is a few ms on top of a fixed latent cost, and a 3-call median there is mostly scheduler noise.
    perceiver_repeats = repeats if toy else max(repeats, PERCEIVER_REPEATS)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = _Journal(out_dir / ".scaling.partial.json")
    perceiver = [_point("perceiver", sweep, m, sweep.fixed_outputs, perceiver_repeats, cache)
                 for m in sweep.input_sizes]
    transformer = [_point("transformer", sweep, m, m, repeats, cache) for m in sweep.input_sizes]
    outputs = [_point("perceiver", sweep, sweep.fixed_inputs, o, perceiver_repeats, cache)
               for o in sweep.output_sizes]
    _plot(out_dir / "scaling.png", sweep, perceiver, transformer, outputs)
    page = harness.write_page(out_dir / "scaling.md", _page(sweep, command, repeats, perceiver, transformer, outputs))
    cache.path.unlink(missing_ok=True)
    return page
