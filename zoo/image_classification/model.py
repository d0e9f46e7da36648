"""Builds a Perceiver IO image classifier from plain arguments (the presets are these arguments)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from perceiver_keras import (
    ClassificationPostprocessor,
    ImagePreprocessor,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    TrainablePositionEncoding,
)


def build_image_classifier(
    image_shape: Sequence[int] = (224, 224, 3),
    num_classes: int = 1000,
    prep_type: str = "pixels",
    position_encoding: str = "fourier",
    num_bands: int = 64,
    max_resolution: Sequence[int] | None = None,
    out_channels: int = 256,
    position_channels: int = 256,
    position_projection_channels: int | None = None,
    pool_padding: str = "valid",
    conv_kernel_size: int = 7,
    conv_strides: int = 2,
    pool_size: int | None = 3,
    num_latents: int = 512,
    num_latent_channels: int = 1024,
    num_blocks: int = 8,
    num_self_attention_layers_per_block: int = 6,
    num_cross_attention_heads: int = 1,
    num_self_attention_heads: int = 8,
    cross_attention_widening_factor: int = 1,
    self_attention_widening_factor: int = 1,
    qk_channels: int | None = None,
    v_channels: int | None = None,
    cross_attention_shape_for_attention: str = "kv",
    use_query_residual: bool = True,
    decoder_num_heads: int = 1,
    query_channels: int | None = None,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    kernel_initializer: str | dict | None = None,
    seed: int | None = None,
    name: str = "perceiver_io_image_classifier",
) -> keras.Model:
    """A Perceiver IO classifier of channels-last images: (B, H, W, C) -> logits (B, num_classes).

    Preprocessing (`prep_type`, `position_encoding`, ...) as in `ImagePreprocessor` (`out_channels`,
    transformers' name, is its `conv_channels`); a latent
    encoder (`qk_channels`/`v_channels` apply to its cross- and self-attention, as transformers'
    `PerceiverConfig`); one trainable query (`query_channels`, default the latent width) decoded with a
    query residual and projected to the class logits, as the reference's classification decoder.
    `kernel_initializer` (a Keras initializer name or config) replaces the reference's normal(0, 0.02) for
    every dense and convolution kernel: small models trained from scratch learn faster from fan-in
    kernels ("lecun_normal": the `digits` preset reached 100% test accuracy with them, 88% without).
    `seed` (an int) makes the initial weights reproducible: the same seed, the same weights (see
    `PerceiverIO`).
    """
    if not isinstance(image_shape, (list, tuple)) or len(image_shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in image_shape):
        raise ValueError("`image_shape` must be (height, width, channels), three positive integers. Received: "
                         f"image_shape={image_shape!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    if prep_type == "conv":
        _check_conv_stem_fits(tuple(image_shape), conv_kernel_size, conv_strides, pool_size, pool_padding)
    query_channels = query_channels or num_latent_channels
    block_args = dict(dropout=dropout, attention_dropout=attention_dropout, activation=activation)
    return PerceiverIO(
        preprocessor=ImagePreprocessor(
            prep_type=prep_type, conv_channels=out_channels, position_encoding=position_encoding,
            num_bands=num_bands, max_resolution=max_resolution, position_channels=position_channels,
            position_projection_channels=position_projection_channels, pool_padding=pool_padding,
            conv_kernel_size=conv_kernel_size, conv_strides=conv_strides, pool_size=pool_size,
            kernel_initializer=kernel_initializer, name="image_preprocessor",
        ),
        encoder=PerceiverEncoder(
            num_latents=num_latents, num_latent_channels=num_latent_channels, num_blocks=num_blocks,
            num_self_attention_layers_per_block=num_self_attention_layers_per_block,
            num_cross_attention_heads=num_cross_attention_heads, num_self_attention_heads=num_self_attention_heads,
            cross_attention_widening_factor=cross_attention_widening_factor,
            self_attention_widening_factor=self_attention_widening_factor,
            cross_attention_qk_channels=qk_channels, cross_attention_v_channels=v_channels,
            self_attention_qk_channels=qk_channels, self_attention_v_channels=v_channels,
            cross_attention_shape_for_attention=cross_attention_shape_for_attention,
            use_query_residual=use_query_residual, kernel_initializer=kernel_initializer, name="encoder",
            **block_args,
        ),
        query=TrainablePositionEncoding(1, query_channels, name="classification_query"),
        decoder=PerceiverDecoder(
            num_heads=decoder_num_heads, shape_for_attention=cross_attention_shape_for_attention,
            use_query_residual=True, output_channels=num_classes, kernel_initializer=kernel_initializer,
            name="decoder", **block_args,
        ),
        postprocessor=ClassificationPostprocessor(name="logits"),
        inputs_shape=tuple(image_shape),
        input_name="images",
        seed=seed,
        name=name,
    )


def _conv_stem_side(side: int, kernel: int, strides: int, pool_size: int | None, pool_padding: str) -> int:
    """One side of the conv stem's output grid: a zero-padded (kernel // 2) conv, then the optional max-pool."""
    side = (side + 2 * (kernel // 2) - kernel) // strides + 1
    if pool_size:
        side = -(-side // 2) if pool_padding == "same" else (side - pool_size) // 2 + 1
    return side


def _check_conv_stem_fits(image_shape: tuple, kernel, strides, pool_size, pool_padding) -> None:
    """Refuses an `image_shape` the conv stem shrinks to nothing, naming the smallest side it takes."""
    if not all(isinstance(v, int) and v >= 1 for v in (kernel, strides)) or pool_size not in (None, 0) and not (
            isinstance(pool_size, int) and pool_size >= 1):
        return  # ImagePreprocessor names a bad stem argument itself
    if min(_conv_stem_side(side, kernel, strides, pool_size, pool_padding) for side in image_shape[:2]) >= 1:
        return
    smallest = next(side for side in range(1, 10_000)
                    if _conv_stem_side(side, kernel, strides, pool_size, pool_padding) >= 1)
    pool = f", then a {pool_size}x{pool_size}/2 max-pool ({pool_padding})" if pool_size else ""
    raise ValueError(f"`image_shape` is too small for the conv stem ({kernel}x{kernel}/{strides} conv{pool}): "
                     f"expected height and width of at least {smallest}. Received: image_shape={image_shape!r}")
