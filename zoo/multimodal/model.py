"""Builds the Perceiver IO multimodal autoencoder from plain arguments (the presets are these arguments)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from perceiver_keras import (
    AudioPreprocessor,
    FourierQuery,
    MultimodalPerceiverIO,
    MultimodalPostprocessor,
    MultimodalPreprocessor,
    MultimodalQuery,
    OneHotPreprocessor,
    PerceiverDecoder,
    PerceiverEncoder,
    TrainablePositionEncoding,
    VideoPreprocessor,
)


def build_multimodal_autoencoder(
    num_frames: int = 16,
    frame_size: Sequence[int] = (224, 224),
    num_audio_samples: int = 30_720,
    num_classes: int = 700,
    patch_size: Sequence[int] = (1, 4, 4),
    samples_per_patch: int = 16,
    image_num_bands: int = 32,
    audio_num_bands: int = 192,
    input_padding: int = 4,
    label_query_channels: int = 1024,
    query_padding: int = 2,
    label_mask_probability: float = 1.0,
    num_latents: int = 784,
    num_latent_channels: int = 512,
    num_blocks: int = 1,
    num_self_attention_layers_per_block: int = 8,
    num_cross_attention_heads: int = 1,
    num_self_attention_heads: int = 8,
    cross_attention_widening_factor: int = 1,
    self_attention_widening_factor: int = 1,
    qk_channels: int | None = None,
    v_channels: int | None = None,
    cross_attention_shape_for_attention: str = "kv",
    use_query_residual: bool = True,
    decoder_num_heads: int = 1,
    decoder_widening_factor: int = 1,
    decoder_output_channels: int = 512,
    use_output_indices: bool = False,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    activation: str = "gelu",
    kernel_initializer: str | dict | None = None,
    seed: int | None = None,
    name: str = "perceiver_io_multimodal_autoencoder",
) -> keras.Model:
    """Perceiver IO's video autoencoder: {"audio", "image", "label"} in, the same modalities decoded out.

    Inputs (keys): "audio" (B, S, 1), S = `num_audio_samples`; "image" (B, T, H, W, 3) with T =
    `num_frames`, (H, W) = `frame_size`; "label" (B, K), K = `num_classes`, one-hot or soft.
    Preprocessing: audio patches of `samples_per_patch` samples + 1D Fourier features (`audio_num_bands`,
    Nyquist S), video `patch_size` space-time patches + 3D Fourier features (`image_num_bands`,
    Nyquist (T, H, W)), the label as one input; each padded with a learned vector to the widest plus
    `input_padding` channels (704 for the paper) and concatenated (audio, image, label). The label is
    replaced by a learned mask token with `label_mask_probability` in training, and at inference
    when that probability is 1 (the paper's model: it classifies from video and audio alone).
    A latent encoder (`qk_channels`/`v_channels` apply to its cross- and self-attention, as
    transformers' `PerceiverConfig`) reads them. Decoding: one query per pixel (3D Fourier features
    of (t, y, x)), per audio patch (1D Fourier features) and one trainable label query of
    `label_query_channels`, padded to the widest plus `query_padding` (1026 for the paper); one
    cross-attention (no query residual) to `decoder_output_channels`, then linear heads to RGB per
    pixel, `samples_per_patch` samples per audio patch and K logits. The defaults are the paper's
    model (transformers' PerceiverForMultimodalAutoencoding, 19,858,855 parameters).

    Outputs: "image" (B, T, H, W, 3), "audio" (B, S, 1), "label" (B, K). With `use_output_indices`
    the model also takes "image_indices" (B, O_i) and "audio_indices" (B, O_a), int32, and decodes
    only those points: "image" (B, O_i, 3), where index i is pixel (t, y, x) of i = (t H + y) W + x;
    "audio" (B, O_a, samples_per_patch), where index p is the patch of samples [p P, (p + 1) P);
    "label" (B, K) as always. The reference's `subsampled_output_points` (one index vector for the
    whole batch), per example. `kernel_initializer` (a Keras initializer name or config) replaces the
    reference's normal(0, 0.02) for every dense kernel: small models trained from scratch learn faster
    from fan-in kernels ("lecun_normal"). `seed` (an int) makes the initial weights and the
    training-time label masks reproducible.
    """
    frame_size = tuple(frame_size)
    if len(frame_size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in frame_size):
        raise ValueError(f"`frame_size` must be (height, width), two positive ints. Received: frame_size={frame_size}")
    video_size = (num_frames, *frame_size)
    block_args = dict(dropout=dropout, attention_dropout=attention_dropout, activation=activation,
                      kernel_initializer=kernel_initializer)
    preprocessor = MultimodalPreprocessor(
        modalities={
            "audio": AudioPreprocessor(num_audio_samples, samples_per_patch, audio_num_bands, name="audio"),
            "image": VideoPreprocessor(num_frames, frame_size, 3, patch_size, image_num_bands, name="image"),
            "label": OneHotPreprocessor(num_classes, name="label"),
        },
        mask_probabilities={"audio": 0.0, "image": 0.0, "label": label_mask_probability},
        min_padding_size=input_padding, seed=seed, name="preprocessor",
    )
    query = MultimodalQuery(
        queries={
            "audio": FourierQuery(num_audio_samples // samples_per_patch, audio_num_bands,
                                  max_resolution=num_audio_samples, name="audio"),
            "image": FourierQuery(video_size, image_num_bands, max_resolution=video_size, name="image"),
            "label": TrainablePositionEncoding(1, label_query_channels, name="label"),
        },
        min_padding_size=query_padding, name="query",
    )
    return MultimodalPerceiverIO(
        preprocessor=preprocessor,
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
        query=query,
        decoder=PerceiverDecoder(
            num_heads=decoder_num_heads, shape_for_attention=cross_attention_shape_for_attention,
            widening_factor=decoder_widening_factor, use_query_residual=False,
            output_channels=decoder_output_channels, name="decoder", **block_args,
        ),
        postprocessor=MultimodalPostprocessor(
            output_channels={"audio": samples_per_patch, "image": 3, "label": num_classes},
            output_shapes={"audio": (num_audio_samples, 1), "image": (*video_size, 3), "label": (num_classes,)},
            kernel_initializer=kernel_initializer, name="postprocessor",
        ),
        subsampled_modalities=("audio", "image") if use_output_indices else (),
        seed=seed,
        name=name,
    )
