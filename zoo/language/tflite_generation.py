"""A Perceiver AR's two .tflite files, `prefill_<q>.tflite` and `decode_step_<q>.tflite`: traced, run, checked.

`step_functions` traces the two signatures that `zoo.language.causal_export.write_step_files` (and
`python -m export RUN` of a causal language model run) converts: batch 1, static shapes, builtin ops
only. `prefill` reads a full window of L token ids (right-padded beyond its tokens) into next-token
logits (1, N, V) and the cache; `decode_step` takes one `token` (1,) at a window `position` (1,)
(not a scalar: vela keeps every op reading a shapeless tensor on the CPU) with the cache and returns
the next logits (1, V) and the updated cache. The cache is named tensors, exactly `PerceiverAR.prefill`'s: `token_ids` (1, L) int32 and `cross_keys`, `cross_values`
(layers, 1, H, L, d), `self_keys`, `self_values` (layers, 1, H, N, d). Neither file returns
`token_ids`: the caller knows them (`with_token` places a decoded token), and an int32 select would
keep the decode step out of TensorFlow Lite Micro. Integer files take and return float caches here
(quantized and dequantized with each tensor's own scale), so caches pass between the files like Keras'.

`check_steps` compares the files with Keras step by step. `TFLiteGenerator.generate` follows
`zoo.language.generate` step for step (left padding to P + 1, a prompt longer than L cut from the
left with a warning, strided sliding when the window is full, the same NumPy sampling), so it gives
the same bytes as the Keras model, greedy or with a seed, when the logits agree.

    generator = TFLiteGenerator("exports/pydoc_ar/prefill_float32.tflite",
                                "exports/pydoc_ar/decode_step_float32.tflite")
    print(generator.generate("The for statement", max_new_bytes=64, greedy=True))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from export.verify import TFLiteRunner
from perceiver_keras.perceiver_ar import PAD_ID, PerceiverAR
from zoo.language.generation import check_sampling, check_stride, prompt_window, sample_continuation

PREFILL, DECODE_STEP = "prefill", "decode_step"
"""The signature names of the two files (and the stems of their file names)."""


def _flatbuffer(file: str | os.PathLike | bytes) -> bytes:
    return bytes(file) if isinstance(file, (bytes, bytearray)) else Path(file).read_bytes()


def _run(runner: TFLiteRunner, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One call of a batch-1 signature (no batching: a cache's first axis is its layers, not the batch)."""
    return runner.dequantize(runner.runner(**runner.quantize(feed)))


class TFLiteGenerator:
    """A Perceiver AR's prefill and decode step in LiteRT, and cached generation over them.

    Args:
        prefill: the prefill .tflite file (path or bytes), signature "prefill".
        decode_step: the decode step .tflite file (path or bytes), signature "decode_step".
        pad_id: the model's padding id (left padding of short prompts).
        num_threads: CPU threads of each interpreter.

    Attributes:
        max_sequence_length, num_latents, prefix_length: L, N and P = L - N, read from the files.
        cache_shapes: name -> shape of every cache tensor the decode step takes.
    """

    def __init__(self, prefill: str | os.PathLike | bytes, decode_step: str | os.PathLike | bytes,
                 pad_id: int = PAD_ID, num_threads: int = 1):
        self.prefill_runner = TFLiteRunner(_flatbuffer(prefill), PREFILL, num_threads=num_threads)
        self.decode_runner = TFLiteRunner(_flatbuffer(decode_step), DECODE_STEP, num_threads=num_threads)
        self.cache_shapes = {name: tuple(int(d) for d in detail["shape"])
                             for name, detail in self.decode_runner.inputs.items() if name not in ("token", "position")}
        self.max_sequence_length = int(self.prefill_runner.inputs["token_ids"]["shape"][1])
        self.num_latents = int(self.prefill_runner.outputs["logits"]["shape"][1])
        self.prefix_length = self.max_sequence_length - self.num_latents
        self.pad_id = pad_id

    def prefill(self, token_ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A full window (1, L) -> (logits (1, N, V), cache)."""
        token_ids = np.asarray(token_ids)
        expected = (1, self.max_sequence_length)
        if token_ids.shape != expected:
            raise ValueError(f"The prefill file takes a full window token_ids of shape {expected}. "
                             f"Received: token_ids.shape={token_ids.shape}")
        outputs = _run(self.prefill_runner, {"token_ids": token_ids.astype(np.int32)})
        cache = {name: outputs[name] for name in self.cache_shapes if name in outputs}
        cache["token_ids"] = token_ids.astype(np.int32)
        return outputs["logits"], cache

    def decode_step(self, token: np.ndarray, position: int, cache: Mapping[str, np.ndarray]
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`token` (1,) placed at window `position` (P <= position < L) -> (logits (1, V), the updated cache)."""
        self.check_cache(cache)
        token = np.asarray(token)
        if token.shape != (1,):
            raise ValueError(f"The decode_step file takes one token of shape (1,). Received: token.shape={token.shape}")
        if not self.prefix_length <= int(position) < self.max_sequence_length:
            raise ValueError(f"`position` must lie in [prefix_length={self.prefix_length}, max_sequence_length="
                             f"{self.max_sequence_length}). Received: position={position}")
        # (1,) in files written since the position became a 1-D input (a scalar one is "shapeless" to vela,
        # which then keeps the ops that read it on the CPU); () in earlier files.
        shape = tuple(int(d) for d in self.decode_runner.inputs["position"]["shape"])
        feed = {**cache, "token": token.astype(np.int32), "position": np.array(position, np.int32).reshape(shape)}
        outputs = _run(self.decode_runner, feed)
        updated = {name: outputs[name] for name in self.cache_shapes if name != "token_ids"}
        return outputs["logits"], {**updated, "token_ids": with_token(cache["token_ids"], token, position)}

    def check_cache(self, cache: Mapping[str, np.ndarray]) -> None:
        """Raises ValueError unless `cache` has the decode step file's names and shapes."""
        if not isinstance(cache, Mapping) or set(cache) != set(self.cache_shapes):
            received = sorted(cache) if isinstance(cache, Mapping) else type(cache).__name__
            raise ValueError(f"`cache` must be the dict `prefill` returns, with keys {sorted(self.cache_shapes)}. "
                             f"Received: {received}")
        for name, shape in self.cache_shapes.items():
            got = tuple(np.shape(cache[name]))
            if got != shape:
                raise ValueError(f"cache[{name!r}] must have shape {shape}, the decode_step file's input "
                                 f"{name!r}. Received: cache[{name!r}].shape={got}")

    def read(self, window: list[int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Next-token logits (V,) after `window` (P < len(window) <= L ids), and the window's cache."""
        padded = np.array([window + [self.pad_id] * (self.max_sequence_length - len(window))], np.int32)
        logits, cache = self.prefill(padded)
        return logits[0, len(window) - 1 - self.prefix_length], cache

    def generate(self, prompt: str | bytes, max_new_bytes: int = 256, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None, *,
                 greedy: bool = False, stride: int | None = None, return_bytes: bool = False,
                 vocabulary: Any = None) -> str | bytes:
        """Continues `prompt` by up to `max_new_bytes` bytes (tokens of `vocabulary`); the arguments as
        `zoo.language.generate`'s."""
        check_sampling(max_new_bytes, temperature, top_k, top_p, greedy)
        stride = check_stride(stride, self.num_latents)
        window = prompt_window(prompt, self.max_sequence_length, self.prefix_length, self.pad_id, vocabulary)

        def step(token: int, position: int, cache: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            logits, cache = self.decode_step(np.array([token]), position, cache)
            return logits[0], cache

        out = sample_continuation(window, self.read, step, length=self.max_sequence_length, stride=stride,
                                  max_new_bytes=max_new_bytes, rng=np.random.default_rng(seed), greedy=greedy,
                                  temperature=temperature, top_k=top_k, top_p=top_p, vocabulary=vocabulary)
        return out if return_bytes else out.decode("utf-8", errors="replace")


def with_token(token_ids: np.ndarray, token: np.ndarray, position: int) -> np.ndarray:
    """A copy of the cache's `token_ids` (1, L) with `token` (1,) at window `position`."""
    updated = np.array(token_ids, np.int32)
    updated[:, int(position)] = np.asarray(token).reshape(-1)
    return updated


def _cache_dtype(model: PerceiverAR) -> tf.DType:
    return tf.as_dtype(model.embedding.compute_dtype)


def step_functions(model: PerceiverAR) -> tuple[Any, Any]:
    """`tf.function`s (prefill, decode_step) of batch 1 with static shapes and the cache as named tensors."""
    shapes = model.cache_shapes(1)
    names = [name for name in shapes if 0 not in shapes[name]]  # no self-attention layers: no self cache

    def prefill(inputs):
        logits, cache = model.prefill(inputs["token_ids"])
        return {"logits": logits, **{name: cache[name] for name in names if name != "token_ids"}}

    def decode_step(inputs):
        cache = {name: inputs[name] if name in names else tf.zeros(shape, _cache_dtype(model))
                 for name, shape in shapes.items()}
        logits, updated = model.decode_step(inputs["token"], inputs["position"], cache)
        return {"logits": logits, **{name: updated[name] for name in names if name != "token_ids"}}

    # One dict argument each: the SavedModel and .tflite signatures name their inputs after its keys.
    window = {"token_ids": tf.TensorSpec((1, model.max_sequence_length), tf.int32, name="token_ids")}
    step = {"token": tf.TensorSpec((1,), tf.int32, name="token"),
            "position": tf.TensorSpec((1,), tf.int32, name="position"),
            **{name: tf.TensorSpec(shapes[name], tf.int32 if name == "token_ids" else _cache_dtype(model), name=name)
               for name in names}}
    return (tf.function(prefill, input_signature=[window], autograph=False),
            tf.function(decode_step, input_signature=[step], autograph=False))


def step_samples(model: PerceiverAR, windows: np.ndarray, num_steps: int, functions: tuple | None = None
                 ) -> tuple[list[dict], list[dict]]:
    """Keras' inputs of both files along `windows` (n, L): each prefilled with its first L - num_steps ids
    (right-padded), then its next `num_steps` ids decoded one by one (the int8 files' calibration data).
    `functions`: `step_functions(model)`, when already traced."""
    prefill, decode = functions or step_functions(model)
    length = model.max_sequence_length
    known = length - num_steps
    prefills, steps = [], []
    for window in np.asarray(windows, np.int32):
        start = np.concatenate([window[:known], np.full(num_steps, model.pad_id, np.int32)])[None]
        prefills.append({"token_ids": start})
        cache = {"token_ids": start, **{k: v.numpy() for k, v in prefill({"token_ids": start}).items() if k != "logits"}}
        for position in range(known, length):
            feed = {"token": window[position:position + 1], "position": np.array([position], np.int32), **cache}
            steps.append(feed)
            cache = {k: v.numpy() for k, v in decode(feed).items() if k != "logits"}
            cache["token_ids"] = with_token(feed["token_ids"], feed["token"], position)
    return prefills, steps


def check_steps(model: PerceiverAR, generator: TFLiteGenerator, windows: np.ndarray, num_steps: int,
                functions: tuple | None = None) -> dict[str, Any]:
    """The TFLite pair against Keras, step by step, on the same windows and tokens.

    Each window (n, L) is prefilled with its first L - num_steps ids on both sides (logits of the real
    latent rows compared), then its next `num_steps` ids are decoded one at a time, each side feeding
    back its own cache. Returns {"max_abs_diff", "prefill_top1_agreement" (over the prefill's real
    latent rows), "decode_top1_agreement" (over every decode step), "steps": [per step: "step" (0: the
    prefill), "max_abs_diff", "top1_agreement"]}, agreement as the fraction of argmax predictions equal.
    """
    prefill, decode = functions or step_functions(model)
    length, prefix = model.max_sequence_length, model.prefix_length
    known = length - num_steps
    diffs = [[] for _ in range(num_steps + 1)]
    agree = [[] for _ in range(num_steps + 1)]
    for window in np.asarray(windows, np.int32):
        start = np.concatenate([window[:known], np.full(num_steps, model.pad_id, np.int32)])[None]
        keras_out = {k: v.numpy() for k, v in prefill({"token_ids": start}).items()}
        keras_cache = {"token_ids": start, **{k: v for k, v in keras_out.items() if k != "logits"}}
        logits, cache = generator.prefill(start)
        rows = slice(0, known - prefix)  # the latent rows after real ids
        pairs = [(keras_out["logits"][0, rows], logits[0, rows])]
        for position in range(known, length):
            token = window[position:position + 1]
            keras_out = {k: v.numpy() for k, v in decode(
                {"token": token, "position": np.array([position], np.int32), **keras_cache}).items()}
            keras_cache = {**{k: v for k, v in keras_out.items() if k != "logits"},
                           "token_ids": with_token(keras_cache["token_ids"], token, position)}
            logits, cache = generator.decode_step(token, position, cache)
            pairs.append((keras_out["logits"], logits))
        for step, (want, got) in enumerate(pairs):
            diffs[step].append(float(np.max(np.abs(want.astype(np.float64) - got))))
            agree[step].extend(np.argmax(want, -1) == np.argmax(got, -1))
    steps = [{"step": step, "max_abs_diff": max(diffs[step]), "top1_agreement": float(np.mean(agree[step]))}
             for step in range(num_steps + 1)]
    return {"max_abs_diff": max(s["max_abs_diff"] for s in steps), "prefill_top1_agreement": steps[0]["top1_agreement"],
            "decode_top1_agreement": float(np.mean(np.concatenate([np.asarray(a, bool) for a in agree[1:]]))),
            "steps": steps}
