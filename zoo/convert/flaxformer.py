"""Convert the parameters of the T5X Perceiver AR (google/flaxformer) into our `PerceiverAR`.

The paper's authors published Perceiver AR for T5X in flaxformer
(`flaxformer/architectures/perceiver_ar`, gin files `flaxformer/t5x/configs/perceiver_ar`): a T5 1.1
decoder whose first layer's queries are the last `num_latents` positions; in our terms, the layout
`perceiver_keras.perceiver_ar.T5X_LAYOUT`. Parameters are a nested mapping as flax keeps them
(`variables["params"]`, or a T5X checkpoint's `target`), or a flat one with "/"-joined names;
kernels are already (in, out).

The gin files hold what the parameters do not: heads, head width, latents and the window length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from perceiver_keras.perceiver_ar import T5X_LAYOUT, PerceiverAR
from zoo.convert.weights import CheckpointTensors, assign

T5X_ARCHITECTURE = dict(T5X_LAYOUT, pad_id=0)
"""`PerceiverAR` arguments of flaxformer's layout (`T5X_LAYOUT`); T5 pads with id 0."""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for name, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{name}/"))
        else:
            flat[f"{prefix}{name}"] = np.asarray(value)
    return flat


def _decoder_tensors(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    flat = _flatten(params)
    for root in ("", "params/", "target/"):
        if any(name.startswith(root + "decoder/") for name in flat):
            return {name[len(root) + len("decoder/"):]: value for name, value in flat.items()
                    if name.startswith(root + "decoder/")}
    raise ValueError("flaxformer parameters must hold a 'decoder' tree (as `variables['params']` or a T5X "
                     f"checkpoint's 'target'). Received top-level names: {sorted(params)[:8]}")


def flaxformer_arguments(tensors: Mapping[str, np.ndarray], *, num_heads: int, head_channels: int, num_latents: int,
                         max_sequence_length: int, rotary_fraction: float = 1.0) -> dict[str, Any]:
    """Our `PerceiverAR` arguments for a flaxformer decoder's tensors and the gin values they lack."""
    vocabulary_size, channels = tensors["token_embedder/embedding"].shape
    layers = sorted({int(name.split("/")[0][len("layers_"):]) for name in tensors if name.startswith("layers_")})
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"flaxformer decoder layers must be layers_0..layers_(n-1). Received: {layers}")
    hidden = tensors["layers_0/mlp/wi_0/kernel"].shape[1]
    if hidden % channels:
        raise ValueError(f"The MLP width must be a multiple of the embedding width. Received: mlp width {hidden}, "
                         f"embedding width {channels}")
    inner = tensors["layers_0/self_attention/query/kernel"].shape[-1]
    if inner != num_heads * head_channels:
        raise ValueError(f"num_heads * head_channels must equal the query kernel's width {inner}. "
                         f"Received: num_heads={num_heads}, head_channels={head_channels}")
    rotary_channels = int(head_channels * rotary_fraction) // 2 * 2  # flaxformer's _to_even(dim * fraction)
    return dict(T5X_ARCHITECTURE, vocabulary_size=int(vocabulary_size), max_sequence_length=max_sequence_length,
                num_latents=num_latents, num_channels=int(channels), num_heads=num_heads, head_channels=head_channels,
                rotary_channels=rotary_channels, num_self_attention_layers=len(layers) - 1,
                num_cross_attention_layers=1, widening_factor=hidden // channels)


def _load_mlp(mlp, tensors: CheckpointTensors, prefix: str) -> None:
    assign(mlp.norm.scale, tensors[prefix + "pre_mlp_layer_norm/scale"], prefix + "pre_mlp_layer_norm/scale")
    for ours, theirs in ((mlp.dense_in, "wi_0"), (mlp.dense_gate, "wi_1"), (mlp.dense_out, "wo")):
        name = f"{prefix}mlp/{theirs}/kernel"
        assign(ours.kernel, tensors[name], name)


def _kernels(tensors: CheckpointTensors, prefix: str, parts: tuple[str, ...], head_channels: int) -> np.ndarray:
    """The kernels of `parts` side by side; the query's times sqrt(head_channels).

    T5 has no 1/sqrt(head_channels) in its attention: flaxformer folds it into the query kernel's
    initializer (`rescale_logits=False`). Our attentions scale the queries, so the query kernel is
    scaled back here and the scores are the same.
    """
    kernels = [tensors[f"{prefix}self_attention/{part}/kernel"] for part in parts]
    if parts[0] == "query":
        kernels[0] = kernels[0] * np.sqrt(head_channels).astype(kernels[0].dtype)
    return np.concatenate(kernels, axis=-1)


def from_flaxformer(params: Mapping[str, Any], *, num_heads: int, num_latents: int, max_sequence_length: int,
                    head_channels: int = 64, rotary_fraction: float = 1.0, **overrides: Any) -> PerceiverAR:
    """Our `PerceiverAR` with the parameters of a flaxformer Perceiver AR `DecoderOnly`.

    Args:
        params: its parameters (nested as flax keeps them, or flat with "/"-joined names).
        num_heads, head_channels, num_latents: the gin values NUM_HEADS, HEAD_DIM, NUM_LATENTS.
        max_sequence_length: the window the model reads (the task's "targets" feature length).
        rotary_fraction: the attention's `rotary_embedding_fraction_to_rotate`.
        **overrides: further `PerceiverAR` arguments (dropout, prefix_dropout, dtype, ...).

    Every parameter must be used (a leftover means another architecture).

    Example:
    >>> model = from_flaxformer(variables["params"], num_heads=8, num_latents=1024,
    ...                         max_sequence_length=8192)  # doctest: +SKIP
    """
    flat = _decoder_tensors(params)
    arguments = flaxformer_arguments(flat, num_heads=num_heads, head_channels=head_channels, num_latents=num_latents,
                                     max_sequence_length=max_sequence_length, rotary_fraction=rotary_fraction)
    model = PerceiverAR(**{**arguments, **overrides})
    tensors = CheckpointTensors(flat, source="flaxformer decoder parameters")
    assign(model.embedding.token_embeddings, tensors["token_embedder/embedding"], "token_embedder/embedding")
    cross, cross_mlp = model.cross_layers[0]
    assign(cross.norm.scale, tensors["layers_0/pre_self_attention_layer_norm/scale"],
           "layers_0/pre_self_attention_layer_norm/scale")
    assign(cross.query_dense.kernel, _kernels(tensors, "layers_0/", ("query",), head_channels),
           "layers_0/self_attention/query")
    assign(cross.key_value_dense.kernel, _kernels(tensors, "layers_0/", ("key", "value"), head_channels),
           "layers_0/self_attention/key and value")
    assign(cross.output_dense.kernel, tensors["layers_0/self_attention/out/kernel"], "layers_0/self_attention/out")
    _load_mlp(cross_mlp, tensors, "layers_0/")
    for i, (attention, mlp) in enumerate(model.self_layers, start=1):
        prefix = f"layers_{i}/"
        assign(attention.norm.scale, tensors[prefix + "pre_self_attention_layer_norm/scale"],
               prefix + "pre_self_attention_layer_norm/scale")
        assign(attention.qkv_dense.kernel, _kernels(tensors, prefix, ("query", "key", "value"), head_channels),
               prefix + "self_attention/query, key and value")
        assign(attention.output_dense.kernel, tensors[prefix + "self_attention/out/kernel"],
               prefix + "self_attention/out")
        _load_mlp(mlp, tensors, prefix)
    assign(model.output_norm.scale, tensors["decoder_norm/scale"], "decoder_norm/scale")
    assign(model.head.kernel, tensors["logits_dense/kernel"], "logits_dense/kernel")
    if tensors.unused():
        raise ValueError(f"flaxformer parameters hold tensors this architecture does not use: {tensors.unused()}")
    return model
