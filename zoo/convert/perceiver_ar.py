"""Convert a perceiver-ar-pytorch (lucidrains) `PerceiverAR` into our `PerceiverAR`.

perceiver-ar-pytorch saves no config, so the conversion takes its constructor arguments
(`num_tokens`, `dim`, `depth`, `max_seq_len`, `cross_attn_seq_len`, `dim_head`, `heads`, `ff_mult`,
`perceive_depth`) beside its state dict. Names follow `perceiver_ar_pytorch.perceiver_ar_pytorch`;
PyTorch `Linear` weights are (out, in) and become Keras' (in, out) kernels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from perceiver_keras.perceiver_ar import PerceiverAR
from zoo.convert.weights import CheckpointTensors, assign, load_dense, load_layer_norm

REFERENCE_DEFAULTS = {"dim_head": 64, "heads": 8, "ff_mult": 4, "perceive_depth": 1}


def perceiver_ar_arguments(reference: Mapping[str, Any]) -> dict[str, Any]:
    """Our `PerceiverAR` arguments for perceiver-ar-pytorch's constructor arguments."""
    required = ("num_tokens", "dim", "depth", "max_seq_len", "cross_attn_seq_len")
    missing = [name for name in required if name not in reference]
    if missing:
        raise ValueError(f"perceiver-ar-pytorch arguments need {list(required)}. Missing: {missing}")
    args = {**REFERENCE_DEFAULTS, **reference}
    if not 0 <= args["cross_attn_seq_len"] < args["max_seq_len"]:
        raise ValueError("`cross_attn_seq_len` must lie in [0, max_seq_len). "
                         f"Received: cross_attn_seq_len={args['cross_attn_seq_len']}, max_seq_len={args['max_seq_len']}")
    return dict(
        vocabulary_size=args["num_tokens"], max_sequence_length=args["max_seq_len"],
        num_latents=args["max_seq_len"] - args["cross_attn_seq_len"], num_channels=args["dim"],
        num_heads=args["heads"], head_channels=args["dim_head"], num_self_attention_layers=args["depth"],
        num_cross_attention_layers=args["perceive_depth"], widening_factor=args["ff_mult"],
        rotary_channels=max(32, args["dim_head"] // 2), pad_id=0,
    )


def _read_state_dict(state: Mapping[str, Any] | str | os.PathLike) -> dict[str, np.ndarray]:
    if not isinstance(state, Mapping):
        import torch

        state = torch.load(os.fspath(state), map_location="cpu", weights_only=True)
    return {name: (value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value))
            for name, value in state.items()}


def _load_mlp(mlp, tensors: CheckpointTensors, prefix: str) -> None:
    load_layer_norm(mlp.norm, tensors, prefix + "0.")
    load_dense(mlp.dense_in, tensors, prefix + "1.")
    load_dense(mlp.dense_out, tensors, prefix + "4.")


def from_perceiver_ar_pytorch(state: Mapping[str, Any] | str | os.PathLike, **reference: Any) -> PerceiverAR:
    """Our `PerceiverAR` with the weights of a perceiver-ar-pytorch `PerceiverAR`.

    Args:
        state: its `state_dict()` (tensors or arrays) or the path of a file `torch.save` wrote it to.
        **reference: the constructor arguments the PyTorch model was built with.

    Every tensor of the state dict must be used (a leftover means another architecture).
    """
    tensors = CheckpointTensors(_read_state_dict(state), source="perceiver-ar-pytorch state dict")
    model = PerceiverAR(**perceiver_ar_arguments(reference))
    assign(model.embedding.token_embeddings, tensors["token_emb.weight"], "token_emb.weight")
    assign(model.embedding.position_embeddings, tensors["pos_emb.weight"], "pos_emb.weight")
    for i, (cross, mlp) in enumerate(model.cross_layers):
        prefix = f"perceive_layers.{i}."
        load_layer_norm(cross.norm, tensors, prefix + "0.norm.")
        load_layer_norm(cross.prefix_norm, tensors, prefix + "0.context_norm.")
        load_dense(cross.query_dense, tensors, prefix + "0.to_q.")
        load_dense(cross.key_value_dense, tensors, prefix + "0.to_kv.")
        load_dense(cross.output_dense, tensors, prefix + "0.to_out.")
        _load_mlp(mlp, tensors, prefix + "1.")
    for i, (attention, mlp) in enumerate(model.self_layers):
        prefix = f"layers.{i}."
        load_layer_norm(attention.norm, tensors, prefix + "0.norm.")
        load_dense(attention.qkv_dense, tensors, prefix + "0.to_qkv.")
        load_dense(attention.output_dense, tensors, prefix + "0.to_out.")
        _load_mlp(mlp, tensors, prefix + "1.")
    load_dense(model.head, tensors, "to_logits.")
    leftover = [name for name in tensors.unused() if not name.endswith("inv_freq")]
    if leftover:
        raise ValueError(f"perceiver-ar-pytorch state dict has tensors this architecture does not use: {leftover}")
    return model
