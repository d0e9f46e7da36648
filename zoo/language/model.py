"""Builds the byte-level masked language model and text classifiers (the presets are these arguments)."""

from __future__ import annotations

import keras

from perceiver_keras import (
    ClassificationPostprocessor,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    TextPreprocessor,
    SinusoidalInitializer,
    TrainablePositionEncoding,
)

# 256 byte values + PAD, BOS, EOS, MASK, CLS, SEP (perceiver_keras.byte_tokenizer; not imported here so
# that building a model needs no TensorFlow, e.g. on the JAX backend).
VOCAB_SIZE = 262
POSITION_INITIALIZERS = ("random", "sinusoidal")


def _position_initializer(name: str):
    """The reference's random (normal, stddev 0.02) position tables, or sine/cosine-initialised ones."""
    if name not in POSITION_INITIALIZERS:
        raise ValueError(f"Unknown position_initializer. Expected one of {list(POSITION_INITIALIZERS)}. "
                         f"Received: position_initializer={name!r}")
    return SinusoidalInitializer() if name == "sinusoidal" else None

def _check_sizes(**values) -> None:
    """The builder's own size arguments, checked under their names (the layers call them otherwise)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _text_encoder(arguments: dict, **block_args) -> PerceiverEncoder:
    """The latent encoder both builders share, from their own (identically named) arguments."""
    qk, v = arguments["qk_channels"], arguments["v_channels"]
    return PerceiverEncoder(
        **{name: arguments[name] for name in (
            "num_latents", "num_latent_channels", "num_blocks", "num_self_attention_layers_per_block",
            "num_cross_attention_heads", "num_self_attention_heads", "cross_attention_widening_factor",
            "self_attention_widening_factor", "cross_attention_shape_for_attention", "use_query_residual")},
        cross_attention_qk_channels=qk, cross_attention_v_channels=v, self_attention_qk_channels=qk,
        self_attention_v_channels=v, name="encoder", **block_args,
    )


def build_masked_language_model(
    sequence_length: int = 2048,
    vocab_size: int = VOCAB_SIZE,
    embedding_channels: int = 768,
    num_latents: int = 256,
    num_latent_channels: int = 1280,
    num_blocks: int = 1,
    num_self_attention_layers_per_block: int = 26,
    num_cross_attention_heads: int = 8,
    num_self_attention_heads: int = 8,
    qk_channels: int | None = 256,
    v_channels: int | None = 1280,
    cross_attention_widening_factor: int = 1,
    self_attention_widening_factor: int = 1,
    cross_attention_shape_for_attention: str = "kv",
    use_query_residual: bool = True,
    decoder_num_heads: int = 8,
    decoder_qk_channels: int | None = 256,
    decoder_v_channels: int | None = None,
    decoder_widening_factor: int = 1,
    use_output_indices: bool = False,
    position_initializer: str = "random",
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    kernel_initializer: str | dict | None = None,
    seed: int | None = None,
    name: str = "perceiver_io_masked_lm",
) -> keras.Model:
    """Perceiver IO's byte masked language model: {token_ids, padding_mask} (B, L) -> logits (B, L, V).

    Bytes are embedded (`embedding_channels`) plus trainable positions, added; the latent encoder
    cross-attends to the unpadded bytes; L trainable queries of `embedding_channels` decode the latents
    (no query residual, no final projection: the queries carry only position); logits are the
    decoder output times the transposed byte embedding plus a bias (tied weights). The defaults are
    the released model (transformers' PerceiverForMaskedLM, 201,108,230 parameters).

    With `use_output_indices`, the model also takes "output_indices" (B, O) and returns logits for
    those positions only (B, O, V): decoding only the masked bytes in training.
    `position_initializer="sinusoidal"` starts the input positions and the output queries from
    sine/cosine tables (same weights, same function): a small model learns to route bytes by
    position far sooner (to copy its input: 50% after 384 steps, against chance with random tables);
    "random" is the reference's initialisation (normal, stddev 0.02). `kernel_initializer` (a Keras
    initializer name or config) replaces the reference's normal(0, 0.02) for every dense kernel: small
    models trained from scratch learn faster from fan-in kernels ("lecun_normal"). `seed` (an int) makes
    the initial weights reproducible: the same seed, the same weights (see `PerceiverIO`).
    """
    arguments = dict(locals())
    _check_sizes(sequence_length=sequence_length)
    block_args = dict(dropout=dropout, attention_dropout=attention_dropout, activation=activation,
                      kernel_initializer=kernel_initializer)
    return PerceiverIO(
        preprocessor=TextPreprocessor(vocab_size, embedding_channels, sequence_length, output_bias=True,
                                      position_initializer=_position_initializer(position_initializer),
                                      name="text_preprocessor"),
        encoder=_text_encoder(arguments, **block_args),
        query=TrainablePositionEncoding(sequence_length, embedding_channels,
                                        initializer=_position_initializer(position_initializer),
                                        name="output_queries"),
        decoder=PerceiverDecoder(
            num_heads=decoder_num_heads, qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels or embedding_channels, widening_factor=decoder_widening_factor,
            use_query_residual=False, name="decoder", **block_args,
        ),
        tie_embeddings=True,
        inputs_shape=(sequence_length,),
        input_dtype="int32",
        input_name="token_ids",
        use_padding_mask=True,
        use_output_indices=use_output_indices,
        seed=seed,
        name=name,
    )


def build_text_classifier(
    sequence_length: int = 2048,
    num_classes: int = 2,
    vocab_size: int = VOCAB_SIZE,
    embedding_channels: int = 768,
    num_latents: int = 256,
    num_latent_channels: int = 1280,
    num_blocks: int = 1,
    num_self_attention_layers_per_block: int = 26,
    num_cross_attention_heads: int = 8,
    num_self_attention_heads: int = 8,
    qk_channels: int | None = 256,
    v_channels: int | None = 1280,
    cross_attention_widening_factor: int = 1,
    self_attention_widening_factor: int = 1,
    cross_attention_shape_for_attention: str = "kv",
    use_query_residual: bool = True,
    decoder_num_heads: int = 1,
    position_initializer: str = "random",
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    kernel_initializer: str | dict | None = None,
    seed: int | None = None,
    name: str = "perceiver_io_text_classifier",
) -> keras.Model:
    """A byte-level text classifier: {token_ids, padding_mask} (B, L) -> logits (B, num_classes).

    The masked language model's encoder (so its pretrained weights transfer), one trainable query of
    the latent width decoded with a query residual and projected to the classes, as transformers'
    PerceiverForSequenceClassification. `num_classes=1` is a regression head (e.g. STS-B).
    `position_initializer`, `kernel_initializer` and `seed` as in `build_masked_language_model`.
    """
    arguments = dict(locals())
    _check_sizes(sequence_length=sequence_length, num_classes=num_classes)
    block_args = dict(dropout=dropout, attention_dropout=attention_dropout, activation=activation,
                      kernel_initializer=kernel_initializer)
    return PerceiverIO(
        preprocessor=TextPreprocessor(vocab_size, embedding_channels, sequence_length,
                                      position_initializer=_position_initializer(position_initializer),
                                      name="text_preprocessor"),
        encoder=_text_encoder(arguments, **block_args),
        query=TrainablePositionEncoding(1, num_latent_channels, name="classification_query"),
        decoder=PerceiverDecoder(
            num_heads=decoder_num_heads, shape_for_attention=cross_attention_shape_for_attention,
            use_query_residual=True, output_channels=num_classes, name="decoder", **block_args,
        ),
        postprocessor=ClassificationPostprocessor(name="logits"),
        inputs_shape=(sequence_length,),
        input_dtype="int32",
        input_name="token_ids",
        use_padding_mask=True,
        seed=seed,
        name=name,
    )
