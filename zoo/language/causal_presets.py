"""Perceiver AR presets: byte causal language models (`causal_language_modeling`).

`pydoc_ar` trains here offline: 1,024-byte windows whose last 128 bytes are latents. `pydoc_transformer`
is the baseline of the paper's argument: the same width and depth as a plain causal Transformer over
the last 128 bytes only (num_latents = max_sequence_length). Both are evaluated on the same held-out
bytes (windows of `eval_window` bytes, the last 128 of each scored).
"""

from perceiver_keras.perceiver_ar import PerceiverAR
from zoo.registry import Preset, register_preset


def build_causal_language_model(**config) -> PerceiverAR:
    """A `PerceiverAR` from a preset's config (its constructor arguments)."""
    return PerceiverAR(**config)


_SMALL = dict(num_latents=128, num_channels=128, num_heads=4, head_channels=32, num_self_attention_layers=3,
              widening_factor=4, dropout=0.1)
_SMALL_TRAINING = dict(epochs=10, steps_per_epoch=100, batch_size=16, optimizer="adamw", learning_rate=1e-3,
                       weight_decay=0.01, schedule="cosine", warmup_epochs=1)

CAUSAL_PRESETS = {
    "pydoc_ar": (
        dict(_SMALL, max_sequence_length=1024, prefix_dropout=0.25),
        dict(dataset="pydoc", eval_window=1024, training=_SMALL_TRAINING,
             description="A small byte Perceiver AR trained offline on Python's own documentation: "
                         "1,024-byte context, 128 latents."),
    ),
    "pydoc_transformer": (
        dict(_SMALL, max_sequence_length=128),
        dict(dataset="pydoc", eval_window=1024, training=_SMALL_TRAINING,
             description="The baseline of pydoc_ar: a causal Transformer of the same width and depth that "
                         "sees only the last 128 bytes."),
    ),
}

for _name, (_config, _metadata) in CAUSAL_PRESETS.items():
    register_preset(Preset(_name, "causal_language_modeling", build_causal_language_model, _config, _metadata))
