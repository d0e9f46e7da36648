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
        # Small enough for two CPU cores: 4,096 pixels, 128 latents of 128 channels, 98-channel
        # inputs (and queries). Decoding dominates the cost, so train with subsampled decoding
        # (`use_output_indices=True`): measured on two shared CPU cores, a step of 16 pairs took
        # 1.1 s with 512 decoded pixels per pair and 5.8 s with all 4,096.
        # `python -m zoo train optical_flow --preset flow_small --out runs/flow_small` (300 steps,
        # 520 s on two shared cores) does NOT learn flow yet: test EPE 1.7152 px against 1.7151 px
        # for zero flow on the 128 held-out pairs. In that budget the model stays on the zero-flow
        # plateau (also at 32x32, with LAMB, learning rates up to 1e-2 and up to 2,000 steps).
        dict(frame_size=(64, 64), num_bands=16, patch_channels=32, num_latents=128, num_latent_channels=128,
             num_blocks=1, num_self_attention_layers_per_block=4, num_cross_attention_heads=1,
             num_self_attention_heads=4, self_attention_widening_factor=2),
        dict(dataset="synthetic_flow", input_shape=(2, 64, 64, 3), parameter_count=705_102,
             normalization="minus_one_to_one",
             flow_scale_factor=20.0, description="A small flow model trained offline on synthetic frame pairs.",
             training=dict(epochs=5, steps_per_epoch=60, batch_size=16, optimizer="adamw", learning_rate=1e-3,
                           weight_decay=0.01, schedule="cosine", warmup_epochs=1, decoded_pixels=512)),
    ),
}

for _name, (_config, _metadata) in _PRESETS.items():
    register_preset(Preset(_name, "optical_flow", build_optical_flow_model, _config, _metadata))
