"""Text generation with a Perceiver AR model, cached: each new byte (token) costs one latent step.

The model reads windows of up to L bytes whose first P are the prefix. Generation keeps one window:
a prompt longer than L keeps its last L bytes (with a warning), one shorter than P + 1 is
left-padded (the padding is masked). With the cache, the window is read once (`prefill`), and each
new byte is one `decode_step` at the next position, which attends to the cached keys and values.
When the window is full, it slides by `stride` bytes and is read again: the paper's strided
sampling, a full pass every `stride` bytes and one latent step for each of the others. Without the
cache, every byte is a full pass over the same window, so both give the same logits (greedy
decoding the same bytes; `tests/test_causal_generation.py` checks it).

A model of another vocabulary than bytes (a SentencePiece preset) generates with its
`zoo.language.vocabulary` vocabulary: lengths then count its tokens.

Example:
    >>> model = zoo.create_model("pydoc_ar")
    >>> text = generate(model, "The for statement", max_new_bytes=64, top_p=0.9, seed=0)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from perceiver_keras.perceiver_ar import VOCAB_SIZE

BYTE_OFFSET = VOCAB_SIZE - 256  # byte b is token id b + 6 (ByteTokenizer's ids)

_FUNCTIONS = "_generation_functions"


def check_sampling(max_new_bytes: int, temperature: float, top_k: int | None, top_p: float | None,
                   greedy: bool) -> None:
    """Raises ValueError naming the argument, its range and the value received."""
    if isinstance(max_new_bytes, bool) or not isinstance(max_new_bytes, int) or max_new_bytes < 0:
        raise ValueError(f"`max_new_bytes` must be an integer >= 0. Received: max_new_bytes={max_new_bytes!r}")
    if not greedy and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"`temperature` must be > 0 (or pass greedy=True). Received: temperature={temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"`top_k` must be an integer >= 1 or None. Received: top_k={top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"`top_p` must lie in (0, 1] or be None. Received: top_p={top_p!r}")


def next_byte_id(logits: np.ndarray, rng: np.random.Generator, *, greedy: bool, temperature: float,
                 top_k: int | None, top_p: float | None, allowed: np.ndarray | None = None) -> int:
    """One token id from next-token logits (V,): only byte ids (>= BYTE_OFFSET), or the ids where `allowed`
    (V,) holds, are ever chosen."""
    logits = np.asarray(logits, np.float64).copy()
    if allowed is None:
        logits[:BYTE_OFFSET] = -np.inf
    else:
        logits[~np.asarray(allowed, bool)] = -np.inf
    if greedy:
        return int(np.argmax(logits))
    logits /= temperature
    if top_k is not None and top_k < len(logits):
        logits[logits < np.sort(logits)[-top_k]] = -np.inf
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, kind="stable")
        keep = np.cumsum(probs[order]) - probs[order] < top_p  # the smallest head whose mass reaches top_p
        probs[order[~keep]] = 0.0
        probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


def _compiled(model: keras.Model) -> dict[str, Callable]:
    """`prefill` and `decode_step` of `model`, traced once per model on TensorFlow and JAX; on PyTorch eager
    in inference mode (no autograd graph; `torch.compile` took 100 s to compile a 1M-parameter model's step
    and ran it slower than eager)."""
    functions = model.__dict__.get(_FUNCTIONS)
    if functions is None:
        functions = {"prefill": model.prefill, "decode_step": model.decode_step, "forward": model}
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            functions = {name: tf.function(function, reduce_retracing=True) for name, function in functions.items()}
        elif keras.backend.backend() == "jax":
            functions.update(prefill=_jax_jit(model, model.prefill), decode_step=_jax_jit(model, model.decode_step),
                             forward=_jax_jit(model, model))
        elif keras.backend.backend() == "torch":
            import torch

            functions = {name: torch.inference_mode()(function) for name, function in functions.items()}
        # Set past Keras' attribute tracking, so that saving the model never sees these functions.
        object.__setattr__(model, _FUNCTIONS, functions)
    return functions


def _jax_jit(model: keras.Model, method: Callable) -> Callable:
    """`method` compiled with `jax.jit`, the model's weights passed in on every call (never baked in as constants)."""
    import jax

    def stateless(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(model.variables, values))):
            return method(*args)

    compiled = jax.jit(stateless)
    return lambda *args: compiled([variable.value for variable in model.variables], *args)


def generate(model: keras.Model, prompt: str | bytes, max_new_bytes: int = 256, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None, *,
             greedy: bool = False, use_cache: bool = True, stride: int | None = None,
             return_bytes: bool = False, vocabulary: Any = None) -> str | bytes:
    """Continues `prompt` by up to `max_new_bytes` bytes sampled from a `PerceiverAR` model.

    Args:
        model: a `perceiver_keras.PerceiverAR` (e.g. `zoo.create_model("pydoc_ar")` or a run's model).
        prompt: text (UTF-8 encoded) or bytes; at least one byte. Longer than the model's window: its
            last `max_sequence_length` bytes are kept, with a warning.
        max_new_bytes: bytes to generate (>= 0).
        temperature: > 0; logits are divided by it before sampling.
        top_k: sample among the k most likely bytes only.
        top_p: sample from the smallest set of bytes whose probability reaches top_p (nucleus), in (0, 1].
        seed: seeds the sampling (None: fresh randomness).
        greedy: take the most likely byte each step (temperature, top_k, top_p unused).
        use_cache: one latent step per byte (True) or a full pass over the window per byte.
        stride: bytes the window slides by when it is full, 1..num_latents (default num_latents // 2).
        return_bytes: return the new bytes rather than their UTF-8 decoding (invalid bytes replaced).
        vocabulary: the model's `zoo.language.vocabulary` vocabulary when it is not bytes (e.g.
            `vocabulary_for(preset)` of a SentencePiece preset); `max_new_bytes` then counts tokens.

    Returns:
        The generated continuation (without the prompt).
    """
    check_sampling(max_new_bytes, temperature, top_k, top_p, greedy)
    for name in ("prefill", "decode_step", "max_sequence_length", "num_latents", "prefix_length"):
        if not hasattr(model, name):
            raise ValueError(f"`model` must be a perceiver_keras.PerceiverAR (it has no `{name}`). "
                             f"Received: {type(model).__name__}")
    if vocabulary is None and getattr(model, "vocabulary_size", VOCAB_SIZE) < VOCAB_SIZE:
        raise ValueError(f"`model` must predict byte ids (vocabulary_size >= {VOCAB_SIZE}: 6 special ids, then the "
                         f"256 bytes). Received: vocabulary_size={model.vocabulary_size}")
    if vocabulary is not None and vocabulary.size != getattr(model, "vocabulary_size", vocabulary.size):
        raise ValueError(f"`vocabulary` must have the model's vocabulary_size={model.vocabulary_size} ids. "
                         f"Received: a vocabulary of {vocabulary.size}")
    length, latents, prefix = model.max_sequence_length, model.num_latents, model.prefix_length
    stride = check_stride(stride, latents)
    window = prompt_window(prompt, length, prefix, model.pad_id, vocabulary)
    functions = _compiled(model)

    def read(window: list[int]) -> tuple[np.ndarray, Any]:
        """Next-token logits after `window` (and, cached, the window's cache)."""
        # Right-padded to the full window (the model is causal: padding after the last token changes no
        # earlier logit), so each function sees one shape and is traced or compiled once.
        padded = np.array([window + [model.pad_id] * (length - len(window))], "int32")
        if not use_cache:
            return keras.ops.convert_to_numpy(functions["forward"](padded))[0, len(window) - 1 - prefix], None
        logits, cache = functions["prefill"](padded)
        return keras.ops.convert_to_numpy(logits)[0, len(window) - 1 - prefix], cache

    def step(token: int, position: int, cache: Any) -> tuple[np.ndarray, Any]:
        logits, cache = functions["decode_step"](np.array([token], "int32"), np.array(position, "int32"), cache)
        return keras.ops.convert_to_numpy(logits)[0], cache

    out = sample_continuation(window, read, step if use_cache else None, length=length, stride=stride,
                              max_new_bytes=max_new_bytes, rng=np.random.default_rng(seed),
                              greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, vocabulary=vocabulary)
    return out if return_bytes else out.decode("utf-8", errors="replace")


def check_stride(stride: int | None, latents: int) -> int:
    """`stride`, or its default num_latents // 2; a ValueError unless it lies in [1, num_latents]."""
    stride = max(1, latents // 2) if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= latents:
        raise ValueError(f"`stride` must be an integer in [1, num_latents={latents}]. Received: stride={stride!r}")
    return stride


def prompt_window(prompt: str | bytes, length: int, prefix: int, pad_id: int, vocabulary: Any = None) -> list[int]:
    """The first window's token ids: the prompt's last `length` bytes (tokens of `vocabulary`; with a warning
    if cut), left-padded to P + 1."""
    data = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
    if not data:
        raise ValueError("`prompt` must hold at least one byte. Received: prompt=''")
    window = [b + BYTE_OFFSET for b in data] if vocabulary is None else vocabulary.encode(data)
    unit = "bytes" if vocabulary is None else f"{vocabulary.unit}s"
    if not window:
        raise ValueError(f"`prompt` must hold at least one {vocabulary.unit}. Received: prompt={prompt!r}")
    if len(window) > length:
        warnings.warn(f"The prompt has {len(window)} {unit}, more than the model's window of max_sequence_length="
                      f"{length}: generating from its last {length} {unit}.", stacklevel=3)
        window = window[-length:]
    return [pad_id] * max(0, prefix + 1 - len(window)) + window


def sample_continuation(window: list[int], read: Callable[[list[int]], tuple[np.ndarray, Any]],
                        step: Callable[[int, int, Any], tuple[np.ndarray, Any]] | None, *, length: int, stride: int,
                        max_new_bytes: int, rng: np.random.Generator, vocabulary: Any = None, **sampling: Any) -> bytes:
    """The generation loop, whatever runs the model (Keras here, LiteRT in `tflite_generation`).

    `read(window)` gives the next-token logits (V,) after a window and its cache; `step(token, position,
    cache)` the logits after one more token at `position` and the updated cache (None: read the
    window again for every byte). A full window slides by `stride` and is read again. Returns the new
    bytes (the decoding of the new ids by `vocabulary` when it is not bytes).
    """
    window, new = list(window), []
    allowed = None if vocabulary is None else vocabulary.sampling_mask()
    logits, cache = read(window)
    for _ in range(max_new_bytes):
        token = next_byte_id(logits, rng, allowed=allowed, **sampling)
        new.append(token)
        if len(new) == max_new_bytes:
            break
        if len(window) == length:  # full: slide by `stride` and read the window again
            window = (window + [token])[-(length + 1 - stride):]
            logits, cache = read(window)
        else:
            window.append(token)
            logits, cache = read(window) if step is None else step(token, len(window) - 1, cache)
    return bytes(t - BYTE_OFFSET for t in new) if vocabulary is None else vocabulary.decode(new)
