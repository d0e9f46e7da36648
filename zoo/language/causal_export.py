"""Exporting a Perceiver AR byte model: a SavedModel that generates text, and a prefill/decode-step TFLite pair.

`export_causal_language_model` (and `python -m export RUN` of a `causal_language_modeling` run,
whose run.json names `export_arrays`) writes, through `export.export_model`:

- `saved_model/` with "serving_default" (token ids (B, W) -> logits (B, W - P, V), as the .tflite
  variants) and "generate": `prompt` (tf.string, a scalar or any shape of prompts),
  `max_new_bytes` (int32), `temperature` (float32), `top_k` (int32, 0: no top-k), `top_p`
  (float32, 1: no nucleus), `seed` (int64, < 0: fresh randomness) and `greedy` (bool) -> `continuation`
  (tf.string, the prompt's shape): prefill and decode steps in one `tf.while_loop`, with
  `zoo.language.generate`'s window, stride and left padding (greedy: the same bytes; sampling draws
  from the same distribution with TensorFlow's stateless generator, so not the same bytes as NumPy's).
  Tokenizing (UTF-8 bytes + 6) happens inside, with core string ops.
- `model_<q>.tflite`: the full forward pass over a window (batch 1), verified as every export.
- `prefill_<q>.tflite` and `decode_step_<q>.tflite` (float32 and int8 by default): batch 1, static
  shapes, builtin ops only, the cache as named inputs and outputs (`zoo.language.tflite_generation`
  runs them). Integer files keep `token_ids`, `token` and `position` int32; the logits and the cache
  are int8. They are checked against Keras step by step (`tflite_generation.check_steps`: the same windows prefilled,
  then the same tokens decoded, each side feeding back its own cache), and the per-step max abs
  diff and top-1 agreement go into the report's "extra_artifacts" (float32 held to
  `STEP_LIMITS`; int8 reported).

    report = export_causal_language_model(model, "exports/pydoc_ar", windows=held_out_windows)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export.accelerators import accelerator_reports, float_ops, summary_line
from export.api import export_model
from export.report import ExportReport, Thresholds
from export.savedmodel import ExtraSignature
from export.tflite import INTEGER_QUANTIZATIONS, check_quantizations, convert, op_histogram
from export.verify import TFLiteRunner, measure_latency_ms
from perceiver_keras import integer_friendly
from perceiver_keras.byte_tokenizer import BYTE_OFFSET
from perceiver_keras.perceiver_ar import PerceiverAR
from zoo.language.export import LANGUAGE_QUANTIZATIONS, MASKED_LM_THRESHOLDS
from zoo.language.generation import generate
from zoo.language.tflite_generation import DECODE_STEP, PREFILL, TFLiteGenerator, check_steps, step_functions, step_samples

GENERATE_SIGNATURE = "generate"
STEP_QUANTIZATIONS = ("float32", "int8")
STEP_LIMITS = {"float32": 1e-4}
"""Max abs diff from Keras' logits at every step of the TFLite pair; other quantizations are reported only."""

CAUSAL_LM_THRESHOLDS = MASKED_LM_THRESHOLDS
"""Logits over 262 byte ids, as the masked LM's: float limits held, integer agreement reported only."""


def _sample(logits, greedy, temperature, top_k, top_p, seed):
    """One id from logits (V,), as `zoo.language.generation.next_byte_id` (only bytes; top-k, then top-p)."""
    vocabulary = logits.shape[0]
    logits = tf.where(tf.range(vocabulary) < BYTE_OFFSET, tf.cast(-np.inf, logits.dtype), logits)

    def draw():
        scaled = logits / temperature
        kth = tf.sort(scaled, direction="DESCENDING")[tf.clip_by_value(top_k, 1, vocabulary) - 1]
        scaled = tf.where(tf.logical_and(top_k > 0, scaled < kth), tf.cast(-np.inf, scaled.dtype), scaled)
        probs = tf.nn.softmax(scaled)
        order = tf.argsort(probs, direction="DESCENDING", stable=True)
        ordered = tf.gather(probs, order)
        keep = tf.scatter_nd(order[:, None], tf.cumsum(ordered) - ordered < top_p, [vocabulary])
        probs = tf.where(keep, probs, 0.0)
        return tf.cast(tf.random.stateless_categorical(tf.math.log(probs)[None], 1, seed)[0, 0], tf.int32)

    return tf.cond(greedy, lambda: tf.cast(tf.argmax(logits), tf.int32), draw)


def generate_function(model: PerceiverAR, stride: int | None = None) -> Any:
    """The SavedModel's "generate" `tf.function` (see the module docstring): generation in one graph."""
    length, latents, prefix, pad = model.max_sequence_length, model.num_latents, model.prefix_length, model.pad_id
    stride = max(1, latents // 2) if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= latents:
        raise ValueError(f"`stride` must be an integer in [1, num_latents={latents}]. Received: stride={stride!r}")
    byte_strings = tf.constant([bytes([b]) for b in range(256)])

    def read(window, count):
        logits, cache = model.prefill(tf.reshape(window, (1, length)))  # a static shape for prefill
        return logits[0, count - 1 - prefix], cache

    def continue_one(prompt, index, max_new_bytes, sampling, seed):
        ids = tf.cast(tf.io.decode_raw(prompt, tf.uint8), tf.int32) + BYTE_OFFSET
        checks = [tf.debugging.Assert(tf.size(ids) > 0, ["`prompt` must hold at least one byte. Received: ''"])]
        with tf.control_dependencies(checks):
            ids = ids[-length:]  # a longer prompt keeps its last L bytes (the caller was warned)
        count = tf.maximum(tf.size(ids), prefix + 1)
        window = tf.concat([tf.fill([count - tf.size(ids)], pad), ids, tf.fill([length - count], pad)], 0)
        logits, cache = read(window, count)
        seed = tf.stack([seed, tf.cast(index, tf.int64)])  # each prompt its own stream, each step its own seed

        def body(i, count, logits, cache, new):
            token = _sample(logits, *sampling, tf.random.experimental.stateless_fold_in(seed, i))
            new = new.write(i, token)

            def slide():  # full: slide by `stride` and read the window again
                window = tf.concat([cache["token_ids"][0, stride:], token[None], tf.fill([stride - 1], pad)], 0)
                return (length + 1 - stride, *read(window, length + 1 - stride))

            def step():
                step_logits, updated = model.decode_step(token[None], count, cache)
                return count + 1, step_logits[0], updated

            branches = [lambda: (count, logits, cache), slide, step]
            branch = tf.where(i == max_new_bytes - 1, 0, tf.where(count == length, 1, 2))
            return (i + 1, *tf.switch_case(branch, branches), new)

        new = tf.TensorArray(tf.int32, size=max_new_bytes)
        *_, new = tf.while_loop(lambda i, *_: i < max_new_bytes, body, (0, count, logits, cache, new))
        return tf.strings.reduce_join(tf.gather(byte_strings, new.stack() - BYTE_OFFSET))

    def warn():
        message = (f"WARNING: a prompt is longer than the model's window of max_sequence_length={length} bytes: "
                   f"generating from its last {length} bytes.")
        with tf.control_dependencies([tf.print(message, output_stream=sys.stderr)]):
            return tf.constant(True)

    def generate_text(prompt, max_new_bytes, temperature, top_k, top_p, seed, greedy):
        checks = [
            tf.debugging.Assert(max_new_bytes >= 0, ["`max_new_bytes` must be >= 0. Received: max_new_bytes=",
                                                     max_new_bytes]),
            tf.debugging.Assert(tf.logical_or(greedy, temperature > 0), [
                "`temperature` must be > 0 (or pass greedy=True). Received: temperature=", temperature]),
            tf.debugging.Assert(top_k >= 0, ["`top_k` must be >= 0 (0: no top-k). Received: top_k=", top_k]),
            tf.debugging.Assert(tf.logical_and(top_p > 0, top_p <= 1), [
                "`top_p` must lie in (0, 1]. Received: top_p=", top_p]),
        ]
        too_long = tf.strings.length(prompt) > length
        with tf.control_dependencies(checks):
            warned = tf.cond(tf.reduce_any(too_long), warn, lambda: tf.constant(False))
        seed = tf.where(seed < 0, tf.random.uniform([], 0, 2**62, tf.int64), seed)
        flat = tf.reshape(prompt, [-1])
        with tf.control_dependencies([warned]):
            sampling = (greedy, temperature, top_k, top_p)
            continuation = tf.map_fn(
                lambda args: continue_one(args[0], args[1], max_new_bytes, sampling, seed),
                (flat, tf.range(tf.size(flat))), fn_output_signature=tf.string)
        return {"continuation": tf.reshape(continuation, tf.shape(prompt))}

    specs = [tf.TensorSpec(None, tf.string, "prompt"), tf.TensorSpec((), tf.int32, "max_new_bytes"),
             tf.TensorSpec((), tf.float32, "temperature"), tf.TensorSpec((), tf.int32, "top_k"),
             tf.TensorSpec((), tf.float32, "top_p"), tf.TensorSpec((), tf.int64, "seed"),
             tf.TensorSpec((), tf.bool, "greedy")]
    return tf.function(generate_text, input_signature=specs, autograph=False)


def generate_signature(model: PerceiverAR, prompts: list[bytes], max_new_bytes: int = 32,
                       stride: int | None = None) -> dict[str, ExtraSignature]:
    """{"generate": the signature, checked greedily on `prompts` against `zoo.language.generate`'s bytes}."""
    with warnings.catch_warnings():  # a prompt longer than the window is one of the cases checked
        warnings.filterwarnings("ignore", message="The prompt has")
        expected = [generate(model, prompt, max_new_bytes, greedy=True, stride=stride, return_bytes=True)
                    for prompt in prompts]
    example = dict(prompt=np.array(prompts, dtype=object), max_new_bytes=np.int32(max_new_bytes),
                   temperature=np.float32(1.0), top_k=np.int32(0), top_p=np.float32(1.0), seed=np.int64(0),
                   greedy=np.bool_(True))
    return {GENERATE_SIGNATURE: ExtraSignature(generate_function(model, stride), example,
                                               {"continuation": np.array(expected, dtype=object)})}


def prompts_of(windows: np.ndarray, prefix_length: int) -> list[bytes]:
    """Three prompts from token-id windows (n, L): a short one (left-padded), one filling most of a window,
    and one longer than the window (cut from the left): the bytes of their ids, special ids dropped."""
    ids = np.asarray(windows).ravel()
    text = bytes(int(i) - BYTE_OFFSET for i in ids if i >= BYTE_OFFSET)
    length = np.asarray(windows).shape[1]
    return [text[:max(1, prefix_length // 2)], text[:max(prefix_length + 2, length - 3)], text[:length + 5]]


def with_left_padding(windows: np.ndarray, prefix_length: int, pad_id: int) -> np.ndarray:
    """`windows` with every second one's first half-prefix replaced by padding, as a short prompt's window."""
    padded = np.array(windows, np.int32)
    padded[1::2, :prefix_length // 2] = pad_id
    return padded


@dataclasses.dataclass
class StepReport:
    """What `write_step_files` measured: per quantization the two files and their step-by-step parity."""

    num_windows: int
    num_steps: int
    variants: dict[str, dict[str, Any]]
    keras_latency_ms: dict[str, float]

    @property
    def passed(self) -> bool:
        return all(not variant["failures"] for variant in self.variants.values())

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}

    def summary(self) -> str:
        keras_ms = self.keras_latency_ms
        lines = [f"prefill/decode_step TFLite pair ({self.num_windows} windows, a prefill then {self.num_steps} "
                 f"decode steps each, caches fed back); Keras latency prefill {keras_ms.get('prefill', 0):.2f} ms, "
                 f"decode step {keras_ms.get('decode_step', 0):.2f} ms:"]
        for name, v in self.variants.items():
            result = "PASS" if not v["failures"] else "FAIL: " + "; ".join(v["failures"])
            latency = v["latency_ms"]
            lines.append(
                f"  {name}: {v['prefill_bytes'] / 1024:.1f} + {v['decode_step_bytes'] / 1024:.1f} KiB; max abs diff "
                f"{v['max_abs_diff']:.3g} (prefill {v['steps'][0]['max_abs_diff']:.3g}, last step "
                f"{v['steps'][-1]['max_abs_diff']:.3g}), top-1 agreement prefill {v['prefill_top1_agreement']:.4f}, "
                f"decode steps {v['decode_top1_agreement']:.4f}; latency "
                f"prefill {latency.get('prefill', 0):.2f} ms, decode step {latency.get('decode_step', 0):.2f} ms; "
                f"float ops {v['float_ops']}  {result}")
            for file, report in v.get("accelerators", {}).items():
                lines.append(f"    {file} {summary_line(report)}")
        return "\n".join(lines)


def write_step_files(model: PerceiverAR, out_dir: str | os.PathLike, *, windows: np.ndarray,
                     calibration_windows: np.ndarray | None = None,
                     quantizations: tuple[str, ...] = STEP_QUANTIZATIONS, num_steps: int | None = None,
                     latency_runs: int = 20) -> StepReport:
    """Writes `prefill_<q>.tflite` and `decode_step_<q>.tflite` into `out_dir`, checked by `check_steps`.

    Args:
        model: a `PerceiverAR`.
        out_dir: the folder to write into (created if missing).
        windows: held-out token ids (n, L) to check on (left padding with the pad id allowed).
        calibration_windows: windows (n, L) calibrating the integer files (`windows` when None):
            prefills and decode steps along them, as `step_samples`.
        quantizations: of `export.tflite.QUANTIZATIONS` ("float32" held to `STEP_LIMITS`, others reported).
        num_steps: decode steps per window (default min(8, N - 1)).
        latency_runs: timed batch-1 calls of each file, one thread (0: not timed).
    """
    if not isinstance(model, PerceiverAR):
        raise ValueError(f"Expected a perceiver_keras.PerceiverAR. Received: {type(model).__name__}")
    quantizations = check_quantizations(quantizations)
    num_steps = min(8, model.num_latents - 1) if num_steps is None else num_steps
    if not 1 <= num_steps < model.num_latents:
        raise ValueError(f"`num_steps` must lie in [1, num_latents={model.num_latents}). Received: num_steps={num_steps}")
    windows = np.asarray(windows, np.int32)
    if windows.ndim != 2 or windows.shape[1] != model.max_sequence_length or not len(windows):
        raise ValueError(f"`windows` must be token ids (n, max_sequence_length={model.max_sequence_length}). "
                         f"Received: shape {windows.shape}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    integer = any(q in INTEGER_QUANTIZATIONS for q in quantizations)
    keras_steps = step_functions(model)  # traced once for every Keras side; the files' sources are traced apart
    calibration = step_samples(model, windows if calibration_windows is None else calibration_windows,
                               num_steps, keras_steps) if integer else None
    scratch = {False: out_dir / ".steps_saved_model", True: out_dir / ".steps_integer_saved_model"}
    try:
        for traced_integer in (False, True) if integer else (False,):
            archive = keras.export.ExportArchive()
            archive.track(model)
            with integer_friendly() if traced_integer else contextlib.nullcontext():
                for name, function in zip((PREFILL, DECODE_STEP), step_functions(model)):
                    archive.add_endpoint(name, function)
                archive.write_out(os.fspath(scratch[traced_integer]), verbose=False)
        example = step_samples(model, windows[:1], 1, keras_steps)
        variants = {}
        for quantization in quantizations:
            files = {}
            for index, name in enumerate((PREFILL, DECODE_STEP)):
                flatbuffer = convert(scratch[quantization in INTEGER_QUANTIZATIONS], name, quantization,
                                     representative_dataset=(lambda i=index: iter(calibration[i])) if calibration else None)
                (out_dir / f"{name}_{quantization}.tflite").write_bytes(flatbuffer)
                files[name] = flatbuffer
            generator = TFLiteGenerator(files[PREFILL], files[DECODE_STEP], pad_id=model.pad_id)
            variant = {"prefill": f"{PREFILL}_{quantization}.tflite", "decode_step": f"{DECODE_STEP}_{quantization}.tflite",
                       "prefill_bytes": len(files[PREFILL]), "decode_step_bytes": len(files[DECODE_STEP]),
                       **check_steps(model, generator, windows, num_steps, keras_steps),
                       "latency_ms": {name: measure_latency_ms(files[name], name, example[i][0], 1, latency_runs)
                                      for i, name in enumerate((PREFILL, DECODE_STEP)) if latency_runs > 0},
                       "ops": {name: op_histogram(files[name]) for name in files},
                       "float_ops": {name: float_ops(files[name]).get("count") for name in files}}
            if quantization in INTEGER_QUANTIZATIONS:
                variant["accelerators"] = _accelerators(files, quantization, example)
            limit = STEP_LIMITS.get(quantization)
            variant["failures"] = [] if limit is None or variant["max_abs_diff"] <= limit else [
                f"max_abs_diff {variant['max_abs_diff']:.3g} > {limit:g}"]
            variants[quantization] = variant
    finally:
        for folder in scratch.values():
            if folder.exists():
                tf.io.gfile.rmtree(os.fspath(folder))
    return StepReport(len(windows), num_steps, variants, _keras_latency_ms(keras_steps, example, latency_runs))


def _accelerators(files: dict[str, bytes], quantization: str, example: tuple[list[dict], list[dict]]
                  ) -> dict[str, dict[str, Any]]:
    """`export.accelerators` reports of an integer pair: vela per Ethos-U configuration and a TensorFlow
    Lite Micro call of each file on one Keras step sample, its outputs compared with LiteRT's."""
    reports = {}
    for index, name in enumerate((PREFILL, DECODE_STEP)):
        feed = {key: np.asarray(value) for key, value in example[index][0].items()}
        runner = TFLiteRunner(files[name], name)
        feed = {key: value for key, value in feed.items() if key in runner.inputs}
        litert = runner.runner(**runner.quantize(feed))
        reports[name] = accelerator_reports(files[name], quantization, feed, litert, batched=False)
    return reports


def _keras_latency_ms(functions: tuple, example: tuple[list[dict], list[dict]], runs: int) -> dict[str, float]:
    """Median ms of one batch-1 prefill and decode step of the Keras model, each a traced tf.function."""
    if runs <= 0:
        return {}
    timed = {}
    for function, name, feed in zip(functions, (PREFILL, DECODE_STEP), (example[0][0], example[1][0])):
        feed = {key: tf.constant(value) for key, value in feed.items()}
        for _ in range(3):
            function(feed)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            [value.numpy() for value in function(feed).values()]
            times.append(time.perf_counter() - start)
        timed[name] = statistics.median(times) * 1e3
    return timed


def export_causal_language_model(model: PerceiverAR, out_dir: str | os.PathLike, *, windows: np.ndarray,
                                 labels: np.ndarray | None = None, calibration_windows: np.ndarray | None = None,
                                 prompts: list[str | bytes] | None = None, max_new_bytes: int | None = None,
                                 stride: int | None = None,
                                 quantizations: tuple[str, ...] = LANGUAGE_QUANTIZATIONS,
                                 step_quantizations: tuple[str, ...] = STEP_QUANTIZATIONS,
                                 num_step_windows: int = 8, num_steps: int | None = None,
                                 **export_kwargs: Any) -> ExportReport:
    """The SavedModel (with "generate"), the window .tflite variants and the prefill/decode-step pair, verified.

    Args:
        model: a `PerceiverAR`, e.g. a causal_language_modeling run's model.keras.
        out_dir: the directory to create.
        windows: held-out token ids (n, L), e.g. `causal_lm_dataset` windows.
        labels: their next ids (n, N), for the variants' accuracy.
        calibration_windows: int8 calibration windows (`windows` when None).
        prompts: the "generate" signature's check prompts (default: `prompts_of(windows)`).
        max_new_bytes: bytes generated per check prompt (default: stride + 2, so a full window slides once).
        stride: the window's slide of "generate" (default num_latents // 2, as `zoo.language.generate`).
        quantizations: the window model's variants.
        step_quantizations: the prefill/decode-step pair's variants.
        num_step_windows: windows the pair is checked on.
        num_steps: decode steps per window (default min(8, N - 1)).
        **export_kwargs: further `export_model` arguments (`batch_size`, `latency_runs`, `num_eval`, ...).
    """
    windows = np.asarray(windows, np.int32)
    calibration = windows if calibration_windows is None else np.asarray(calibration_windows, np.int32)
    hooks = causal_hooks(windows, calibration, prompts=prompts, max_new_bytes=max_new_bytes, stride=stride,
                         step_quantizations=step_quantizations, num_step_windows=num_step_windows,
                         num_steps=num_steps, latency_runs=export_kwargs.get("latency_runs", 20))
    thresholds = export_kwargs.pop("thresholds", None) or Thresholds(**hooks["thresholds"])
    return export_model(model, out_dir, quantizations=quantizations, calibration_data=calibration,
                        eval_data=windows if labels is None else (windows, np.asarray(labels)),
                        extra_signatures=hooks["extra_signatures"](model), thresholds=thresholds,
                        extra_artifacts=hooks["extra_artifacts"], **export_kwargs)


def causal_hooks(windows: np.ndarray, calibration_windows: np.ndarray, *, prompts: list[str | bytes] | None = None,
                 max_new_bytes: int | None = None, stride: int | None = None,
                 step_quantizations: tuple[str, ...] = STEP_QUANTIZATIONS, num_step_windows: int = 8,
                 num_steps: int | None = None, latency_runs: int = 20, text_signature: bool = True) -> dict[str, Any]:
    """The export hooks of a Perceiver AR (`export.run_export`): "extra_signatures" ("generate"),
    "extra_artifacts" (`write_step_files`), "thresholds" and "quantizations".

    `text_signature=False` (a model of another vocabulary than bytes) leaves out the "generate"
    signature, whose tokenizer is `ByteTokenizer`'s ops; the step files work on ids of any vocabulary.
    """

    def signatures(model: PerceiverAR) -> dict[str, ExtraSignature]:
        if not text_signature:
            return {}
        checked = prompts if prompts is not None else prompts_of(windows, model.prefix_length)
        checked = [p.encode("utf-8") if isinstance(p, str) else bytes(p) for p in checked]
        slide = max(1, model.num_latents // 2) if stride is None else stride
        return generate_signature(model, checked, slide + 2 if max_new_bytes is None else max_new_bytes, stride)

    def artifacts(model: PerceiverAR, folder: Path) -> dict[str, Any]:
        def padded(some: np.ndarray) -> np.ndarray:  # the pair must mask the padding of short prompts too
            return with_left_padding(some, model.prefix_length, model.pad_id)

        report = write_step_files(model, folder, windows=padded(windows[:num_step_windows]),
                                  calibration_windows=padded(calibration_windows[:4 * num_step_windows]),
                                  quantizations=step_quantizations, num_steps=num_steps, latency_runs=latency_runs)
        return {"passed": report.passed, "summary": report.summary(), "steps": report.to_dict()}

    return {"extra_signatures": signatures, "extra_artifacts": artifacts, "thresholds": dict(CAUSAL_LM_THRESHOLDS),
            "quantizations": LANGUAGE_QUANTIZATIONS}


def export_arrays(dataset: str, sequence_length: int, num_latents: int, data_dir: str | None = None,
                  files: str | list[str] | None = None, num_calibration: int = 64, num_eval: int | None = 256,
                  seed: int = 0, tokenizer: str = "bytes", vocabulary_size: int | None = None,
                  sentencepiece_model: str | None = None) -> dict[str, Any]:
    """The `python -m export` data builder of a causal_language_modeling run (named in run.json's "data").

    Returns:
        `{"calibration": token ids (n, L), "eval": (token ids (n, L), next ids (n, N))}` (training and
        validation windows, cut as in training, in the run's vocabulary: `tokenizer`, with
        `vocabulary_size` and `sentencepiece_model` as `zoo.language.vocabulary.make_vocabulary`) and the
        hooks of `causal_hooks`.
    """
    from zoo.language import causal_data
    from zoo.language.vocabulary import make_vocabulary

    vocabulary = make_vocabulary(tokenizer, vocabulary_size, sentencepiece_model)

    def windows(split: str, take: int | None):
        docs = causal_data.causal_documents(dataset, split, data_dir=data_dir, files=files)
        ds = causal_data.causal_lm_dataset(docs, sequence_length=sequence_length, num_latents=num_latents,
                                           batch_size=64, training=False, seed=seed, take=take,
                                           vocabulary=vocabulary)
        x, y = zip(*ds.as_numpy_iterator())
        return np.concatenate(x), np.concatenate(y)

    calibration, _ = windows("train", num_calibration)
    evaluation = windows("validation", num_eval)
    return {"calibration": calibration, "eval": evaluation,
            **causal_hooks(evaluation[0], calibration, text_signature=vocabulary.name == "bytes")}
