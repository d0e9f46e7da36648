"""Optical-flow presets: the paper's model (AutoFlow-trained checkpoint) and a small one that trains here.

The paper preset's parameter count equals transformers' PerceiverForOpticalFlow at
deepmind/optical-flow-perceiver's configuration (pinned in tests/test_flow_models.py).
"""

from zoo.optical_flow.model import build_optical_flow_model
from zoo.registry import Preset, register_preset

_PRESETS = {
    "optical_flow": (
        dict(frame_size=(368, 496), max_resolution=(368, 496), num_bands=64, patch_channels=64, num_latents=2048,
             num_latent_channels=512, num_blocks=1, num_self_attention_layers_per_block=24,
             num_cross_attention_heads=1, num_self_attention_heads=16),
        dict(dataset="autoflow", input_shape=(2, 368, 496, 3), parameter_count=41_057_134,
             weights="deepmind/optical-flow-perceiver", license="Apache-2.0 (DeepMind's released checkpoint)",
             # DeepMind's colab: frames scaled to [-1, 1]; the model's outputs times 20 are pixels
             # (its training targets were divided by 20); larger frames are tiled at 368 x 496.
             normalization="minus_one_to_one", flow_scale_factor=20.0,
             description="3x3 patches of both frames (54 -> 64) + 2D Fourier features (64 bands, 322 channels), "
                         "2,048 x 512 latents, 24 self-attention layers; queries are the inputs."),
    ),
    "flow_small": (
        # Small enough for two CPU cores: 32x32 frames (1,024 pixels), 128 latents of 128 channels,
        # 74-channel inputs (64 patch channels + 2 Fourier bands). Training decodes 512 random pixels
        # per pair (`use_output_indices=True`). Three departures from the paper's model make it learn
        # in minutes: the decoder keeps its query residual (each pixel's own patches reach the decoder
        # MLP, not only through the attention weights), its projection starts random (a zero one
        # leaves every other layer without gradient until the projection finds a feature that predicts
        # the flow: below, it sat at zero flow for 700 of 1,200 steps) and the synthetic pairs keep
        # the most textured of 8 windows (`window_candidates`; with one, half the held-out pairs were
        # flat sky or blur, where motion is invisible) with flows up to 2 px (`max_flow`).
        #
        #   python -m zoo train optical_flow --preset flow_small --out runs/flow_small
        #
        # 1,200 steps (12 epochs of 100), 505 s of training on two cores shared with other jobs (load
        # average 4.5-9.4): test EPE 0.202 px against 0.539 px for zero flow on the 128 held-out pairs
        # (62% lower). Same seed and data, per-sub-layer initializers (fan-in kernels): 600 steps gave
        # 0.407 px (24% lower, 278 s; still falling); the paper's zero projection stayed at zero flow
        # for 600 steps (0.539 px) and at 1,200 steps reached 0.405 px (25% lower, 601 s). Before the
        # per-sub-layer initializers (one shared unseeded instance), 600 steps gave 0.452 px (16% lower, 648 s).
        dict(frame_size=(32, 32), num_bands=2, patch_channels=64, num_latents=128, num_latent_channels=128,
             num_blocks=1, num_self_attention_layers_per_block=4, num_cross_attention_heads=1,
             num_self_attention_heads=4, self_attention_widening_factor=2, decoder_widening_factor=4,
             decoder_query_residual=True, decoder_projection_initializer="glorot_uniform",
             kernel_initializer="lecun_normal"),  # fan-in kernels, as tuned (see the image presets)
        dict(dataset="synthetic_flow", input_shape=(2, 32, 32, 3), parameter_count=710_804,
             normalization="minus_one_to_one",
             flow_scale_factor=20.0, description="A small flow model trained offline on synthetic frame pairs.",
             training=dict(epochs=12, steps_per_epoch=100, batch_size=16, optimizer="adamw", learning_rate=2e-3,
                           weight_decay=0.01, schedule="cosine", warmup_epochs=1, decoded_pixels=512,
                           max_flow=2.0, window_candidates=8)),
    ),
}

for _name, (_config, _metadata) in _PRESETS.items():
    register_preset(Preset(_name, "optical_flow", build_optical_flow_model, _config, _metadata))
