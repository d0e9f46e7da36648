"""Perceiver AR presets: byte causal language models (`causal_language_modeling`).

`pydoc_ar` trains here offline: 1,024-byte windows whose last 128 bytes are latents. `pydoc_transformer`
is the baseline of the paper's argument: the same width and depth as a plain causal Transformer over
the last 128 bytes only (num_latents = max_sequence_length). Both are evaluated on the same held-out
bytes (windows of `eval_window` bytes, the last 128 of each scored).
"""

from perceiver_keras.perceiver_ar import PAD_ID, T5X_LAYOUT, VOCAB_SIZE, PerceiverAR
from zoo.registry import Preset, register_preset


def build_causal_language_model(vocabulary_size: int = VOCAB_SIZE, max_sequence_length: int = 1024,
                                num_latents: int = 128, num_channels: int = 128, num_heads: int = 4,
                                head_channels: int = 32, num_self_attention_layers: int = 3,
                                num_cross_attention_layers: int = 1, widening_factor: int = 4,
                                rotary_channels: int | None = None, dropout: float = 0.0, prefix_dropout: float = 0.0,
                                pad_id: int = PAD_ID, epsilon: float = 1e-5, kernel_initializer: str | None = None,
                                seed: int | None = None, name: str | None = None, **layout) -> PerceiverAR:
    """A `PerceiverAR` (its constructor arguments; `layout`: normalization, position_embedding, ... as
    `perceiver_keras.PerceiverAR`)."""
    return PerceiverAR(vocabulary_size=vocabulary_size, max_sequence_length=max_sequence_length,
                       num_latents=num_latents, num_channels=num_channels, num_heads=num_heads,
                       head_channels=head_channels, num_self_attention_layers=num_self_attention_layers,
                       num_cross_attention_layers=num_cross_attention_layers, widening_factor=widening_factor,
                       rotary_channels=rotary_channels, dropout=dropout, prefix_dropout=prefix_dropout, pad_id=pad_id,
                       epsilon=epsilon, kernel_initializer=kernel_initializer, seed=seed, name=name, **layout)


# Fan-in kernels (lecun_normal), as the small Perceiver IO presets: with the reference's normal(0.02), 1,000 steps
# left pydoc_ar at 2.84 held-out bits per byte (behind pydoc_transformer's 2.46), its attention over 1,024 positions
# still nearly uniform; with lecun_normal 2.33 and 2.37 (66 windows' last 128 bytes, the evaluation then).
_SMALL = dict(num_latents=128, num_channels=128, num_heads=4, head_channels=32, num_self_attention_layers=3,
              widening_factor=4, dropout=0.1, kernel_initializer="lecun_normal")
_SMALL_TRAINING = dict(epochs=10, steps_per_epoch=100, batch_size=16, optimizer="adamw", learning_rate=1e-3,
                       weight_decay=0.01, schedule="cosine", warmup_epochs=1)

# The T5X Perceiver AR configurations of the paper's authors (google/flaxformer,
# flaxformer/t5x/configs/perceiver_ar: models/perceiver_ar_{small,base}.gin, examples/c4_lm.gin): C4 with
# T5's SentencePiece vocabulary (32,000 pieces + 100 extra ids, rounded to 32,128), 8,192-token windows,
# 1,024 latents, NUM_DECODER_LAYERS counting the cross-attention layer; Adafactor (decay 0.8) at
# 1 / sqrt(max(step, 10,000)) (t5x's pretrain.gin), batch 128, 100,000 steps, no dropout. The parameter
# counts are flaxformer's own (`python tests/reference/flaxformer_fixture.py --count`).
_T5X = dict(T5X_LAYOUT, vocabulary_size=32_128, max_sequence_length=8192, num_latents=1024, head_channels=64,
            rotary_channels=64, widening_factor=4, kernel_initializer="lecun_normal")
_T5X_TRAINING = dict(epochs=100, steps_per_epoch=1000, batch_size=128, optimizer="adafactor", learning_rate=0.01,
                     weight_decay=0.0, schedule="rsqrt", warmup_epochs=10)
_T5X_DATA = dict(dataset="c4", tokenizer="t5_sentencepiece", eval_window=8192, training=_T5X_TRAINING)

CAUSAL_PRESETS = {
    "c4_ar_small": (
        dict(_T5X, num_channels=512, num_heads=8, num_self_attention_layers=5),
        dict(_T5X_DATA, parameter_count=58_071_552,
             description="The T5X Perceiver AR small (perceiver_ar_small.gin): 6 layers of 512 channels, 8 heads, "
                         "on C4 with T5's vocabulary."),
    ),
    "c4_ar_base": (
        dict(_T5X, num_channels=768, num_heads=12, num_self_attention_layers=11),
        dict(_T5X_DATA, parameter_count=162_614_016,
             description="The T5X Perceiver AR base (perceiver_ar_base.gin, c4_lm.gin): 12 layers of 768 channels, "
                         "12 heads, on C4 with T5's vocabulary."),
    ),
    "wikitext103_ar": (
        # krasserm/perceiver-io's published WikiText-103 byte model ("Model 1", docs/training-examples.md):
        # 4,096-byte context, 512 latents x 512 channels, 8 self-attention layers, 8 heads, rotary on 32 of
        # each head's 64 channels plus learned absolute positions, cross-attention dropout 0.5 (DeepMind's
        # perceiver-ar code publishes no language configuration). krasserm's docs give 30.7M parameters; his
        # model ties the logits to the token embedding and adds 262 output biases, ours has an untied
        # 512 x 262 logits kernel and no bias: 30,696,960.
        dict(max_sequence_length=4096, num_latents=512, num_channels=512, num_heads=8, head_channels=64,
             rotary_channels=32, num_self_attention_layers=8, widening_factor=4, prefix_dropout=0.5),
        dict(dataset="wiki40b", eval_window=4096, parameter_count=30_696_960,
             training=dict(epochs=100, steps_per_epoch=1000, batch_size=24, optimizer="adamw", learning_rate=2e-4,
                           weight_decay=0.01, schedule="cosine", warmup_epochs=1),
             description="Byte Perceiver AR of krasserm's WikiText-103 shape (TFDS has no WikiText: Wiki-40B "
                         "English by default)."),
    ),
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
