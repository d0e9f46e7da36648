"""Builds the Perceiver IO optical-flow model from plain arguments (the presets are these arguments)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from perceiver_keras import (
    FlowPostprocessor,
    FlowPreprocessor,
    InputQuery,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
)


def build_optical_flow_model(
    frame_size: Sequence[int] = (368, 496),
    max_resolution: Sequence[int] | None = None,
    num_bands: int = 64,
    patch_channels: int = 64,
    patch_size: int = 3,
    num_latents: int = 2048,
    num_latent_channels: int = 512,
    num_blocks: int = 1,
    num_self_attention_layers_per_block: int = 24,
    num_cross_attention_heads: int = 1,
    num_self_attention_heads: int = 16,
    cross_attention_widening_factor: int = 1,
    self_attention_widening_factor: int = 1,
    qk_channels: int | None = None,
    v_channels: int | None = None,
    cross_attention_shape_for_attention: str = "kv",
    use_query_residual: bool = True,
    decoder_num_heads: int = 1,
    decoder_widening_factor: int = 1,
    decoder_query_residual: bool = False,
    decoder_projection_initializer: str | None = "zeros",
    rescale_factor: float = 100.0,
    use_output_indices: bool = False,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    kernel_initializer: str | dict | None = None,
    seed: int | None = None,
    name: str = "perceiver_io_optical_flow",
) -> keras.Model:
    """Perceiver IO's optical flow: frame pairs (B, 2, H, W, 3) -> flow (B, H, W, 2).

    Every pixel's 3x3 patch in both frames (54 values) is projected to `patch_channels` and joined
    by 2D Fourier features (`num_bands`, Nyquist `max_resolution`, default `frame_size`): the inputs,
    one per pixel. A latent encoder (`qk_channels`/`v_channels` apply to its cross- and
    self-attention, as transformers' `PerceiverConfig`) reads them; the decoder's queries are those
    same preprocessed inputs (no query residual: they carry the content already), its projection to
    2 channels starts at zero (None: normal 0.02 as the other kernels, as transformers' freshly built
    model), and the flow is divided by `rescale_factor`. `patch_size`,
    `decoder_query_residual` and `decoder_projection_initializer` depart from that for models trained
    from scratch (see the `flow_small` preset). The defaults are the
    paper's model (transformers' PerceiverForOpticalFlow, 41,057,134 parameters), which DeepMind ran
    on frames scaled to [-1, 1] and whose outputs times 20 are pixels.

    With `use_output_indices`, the model takes {"frames", "output_indices" (B, O) int32 row-major
    pixel indices} and returns the flow of those pixels only, (B, O, 2): subsampled decoding in
    training. `kernel_initializer` (a Keras initializer name or config) replaces the reference's
    normal(0, 0.02) for every dense kernel: small models trained from scratch learn faster from fan-in
    kernels ("lecun_normal"). `seed` (an int) makes the initial weights reproducible: the same seed,
    the same weights (see `PerceiverIO`).
    """
    frame_size = tuple(frame_size)
    if len(frame_size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in frame_size):
        raise ValueError(f"`frame_size` must be (height, width), two positive ints. Received: frame_size={frame_size}")
    block_args = dict(dropout=dropout, attention_dropout=attention_dropout, activation=activation,
                      kernel_initializer=kernel_initializer)
    return PerceiverIO(
        preprocessor=FlowPreprocessor(
            patch_projection_channels=patch_channels, num_bands=num_bands, patch_size=patch_size,
            max_resolution=frame_size if max_resolution is None else max_resolution,
            kernel_initializer=kernel_initializer, name="flow_preprocessor",
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
            use_query_residual=use_query_residual, name="encoder", **block_args,
        ),
        query=InputQuery(name="pixel_queries"),
        decoder=PerceiverDecoder(
            num_heads=decoder_num_heads, shape_for_attention=cross_attention_shape_for_attention,
            widening_factor=decoder_widening_factor, use_query_residual=decoder_query_residual, output_channels=2,
            projection_initializer=decoder_projection_initializer, name="decoder", **block_args,
        ),
        postprocessor=FlowPostprocessor(rescale_factor, image_size=None if use_output_indices else frame_size,
                                        name="flow"),
        inputs_shape=(2, *frame_size, 3),
        input_name="frames",
        use_output_indices=use_output_indices,
        seed=seed,
        name=name,
    )
