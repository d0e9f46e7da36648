"""Copy transformers' Perceiver weights (a flat name -> array mapping) into our layers.

Names follow `transformers.models.perceiver.modeling_perceiver`; PyTorch `Linear` weights are
(out, in) and are transposed to Keras' (in, out) kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from perceiver_keras import CrossAttentionBlock, PerceiverDecoder, PerceiverEncoder, SelfAttentionBlock


class CheckpointTensors:
    """A read-once view of a checkpoint's tensors that remembers which ones were used."""

    def __init__(self, tensors: Mapping[str, np.ndarray], source: str = "checkpoint"):
        self._tensors = tensors
        self.source = source
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._tensors:
            raise ValueError(f"{self.source} has no tensor named '{name}' (expected by the architecture in config.json)")
        self.used.add(name)
        return np.asarray(self._tensors[name])

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def unused(self) -> list[str]:
        return sorted(set(self._tensors) - self.used)


def assign(variable, value: np.ndarray, name: str) -> None:
    """Assigns `value` to `variable`, naming both when their shapes differ."""
    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(
            f"Checkpoint tensor '{name}' has shape {tuple(value.shape)}; "
            f"the Keras weight '{variable.path}' expects {tuple(variable.shape)}"
        )
    variable.assign(value.astype(variable.dtype))


def load_dense(dense, tensors: CheckpointTensors, prefix: str) -> None:
    assign(dense.kernel, tensors[prefix + "weight"].T, prefix + "weight")
    if dense.bias is not None:
        assign(dense.bias, tensors[prefix + "bias"], prefix + "bias")


def load_layer_norm(norm, tensors: CheckpointTensors, prefix: str) -> None:
    assign(norm.gamma, tensors[prefix + "weight"], prefix + "weight")
    assign(norm.beta, tensors[prefix + "bias"], prefix + "bias")


def _load_attention_and_mlp(block, tensors: CheckpointTensors, prefix: str) -> None:
    attention = block.attention
    for ours, theirs in ((attention.query_dense, "query"), (attention.key_dense, "key"),
                         (attention.value_dense, "value")):
        load_dense(ours, tensors, f"{prefix}attention.self.{theirs}.")
    load_dense(attention.output_dense, tensors, f"{prefix}attention.output.dense.")
    load_layer_norm(block.mlp_norm, tensors, prefix + "layernorm.")
    load_dense(block.mlp.dense_in, tensors, prefix + "mlp.dense1.")
    load_dense(block.mlp.dense_out, tensors, prefix + "mlp.dense2.")


def load_cross_attention_block(block: CrossAttentionBlock, tensors: CheckpointTensors, prefix: str) -> None:
    """Loads a transformers `PerceiverLayer(is_cross_attention=True)` at `prefix`."""
    load_layer_norm(block.query_norm, tensors, prefix + "attention.self.layernorm1.")
    load_layer_norm(block.key_value_norm, tensors, prefix + "attention.self.layernorm2.")
    _load_attention_and_mlp(block, tensors, prefix)


def load_self_attention_block(block: SelfAttentionBlock, tensors: CheckpointTensors, prefix: str) -> None:
    """Loads a transformers `PerceiverLayer(is_cross_attention=False)` at `prefix`."""
    load_layer_norm(block.norm, tensors, prefix + "attention.self.layernorm1.")
    _load_attention_and_mlp(block, tensors, prefix)


def load_encoder(encoder: PerceiverEncoder, tensors: CheckpointTensors, prefix: str = "") -> None:
    """Loads `embeddings.latents` and `encoder.*` of a transformers `PerceiverModel` at `prefix`."""
    if encoder.num_cross_attends != 1:
        raise ValueError(
            "transformers' Perceiver has one cross-attend; this encoder has "
            f"num_cross_attends={encoder.num_cross_attends}"
        )
    assign(encoder.latents, tensors[prefix + "embeddings.latents"], prefix + "embeddings.latents")
    load_cross_attention_block(encoder.cross_attentions[0], tensors, prefix + "encoder.cross_attention.")
    for i, layer in enumerate(encoder.self_attention_stacks[0]):
        load_self_attention_block(layer, tensors, f"{prefix}encoder.self_attends.{i}.")


def load_decoder(decoder: PerceiverDecoder, tensors: CheckpointTensors, prefix: str) -> None:
    """Loads a transformers `PerceiverBasicDecoder`'s attention and final layer at `prefix`."""
    load_cross_attention_block(decoder.cross_attention, tensors, prefix + "decoding_cross_attention.")
    if decoder.projection is not None:
        load_dense(decoder.projection, tensors, prefix + "final_layer.")


def load_trainable_position_encoding(encoding, tensors: CheckpointTensors, prefix: str) -> None:
    """Loads a transformers `PerceiverTrainablePositionEncoding` at `prefix`."""
    assign(encoding.embeddings, tensors[prefix + "position_embeddings"], prefix + "position_embeddings")
