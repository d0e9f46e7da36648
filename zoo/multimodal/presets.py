"""Multimodal autoencoding presets: the paper's Kinetics-700 model and a small one that trains here.

The paper preset's parameter count equals transformers' PerceiverForMultimodalAutoencoding at
deepmind/multimodal-perceiver's configuration (pinned in tests/test_multimodal_models.py).
"""

from zoo.multimodal.model import build_multimodal_autoencoder
from zoo.registry import Preset, register_preset

_PRESETS = {
    "multimodal_autoencoding": (
        dict(num_frames=16, frame_size=(224, 224), num_audio_samples=30_720, num_classes=700, patch_size=(1, 4, 4),
             samples_per_patch=16, image_num_bands=32, audio_num_bands=192, input_padding=4,
             label_query_channels=1024, query_padding=2, label_mask_probability=1.0, num_latents=784,
             num_latent_channels=512, num_blocks=1, num_self_attention_layers_per_block=8,
             num_cross_attention_heads=1, num_self_attention_heads=8, decoder_output_channels=512),
        dict(dataset="kinetics700", parameter_count=19_858_855, weights="deepmind/multimodal-perceiver",
             license="Apache-2.0 (DeepMind's released checkpoint)",
             input_shapes=dict(image=(16, 224, 224, 3), audio=(30_720, 1), label=(700,)),
             # 16 frames at 25 fps (0.64 s) with 48 kHz audio (1,920 samples a frame), as DeepMind's colab.
             frames_per_second=25, audio_sample_rate=48_000,
             description="1x4x4 video patches + 3D Fourier features (32 bands), 16-sample audio patches + 1D "
                         "Fourier features (192 bands) and the (masked) label, padded to 704 channels; "
                         "784 x 512 latents, 8 self-attention layers; 1026-channel queries per pixel, audio "
                         "patch and label. Decode in chunks (`zoo.multimodal.reconstruct`): all 802,816 "
                         "pixel queries at once do not fit in memory."),
    ),
    "multimodal_small": (
        # Small enough for two CPU cores: 8 frames of 32 x 32 (512 video patches of 48 values, 1,024
        # pixel queries per frame), 2,048 audio samples (128 patches), 10 classes, 128 x 128 latents.
        # Train with subsampled decoding (`use_output_indices=True`), a few hundred pixels and audio
        # patches per clip, as the paper does; the label is masked half of the time so that the model
        # both autoencodes it and learns to classify (rebuild with label_mask_probability=1.0).
        dict(num_frames=8, frame_size=(32, 32), num_audio_samples=2_048, num_classes=10, patch_size=(1, 4, 4),
             samples_per_patch=16, image_num_bands=8, audio_num_bands=32, input_padding=4,
             label_query_channels=64, query_padding=2, label_mask_probability=0.5, num_latents=128,
             num_latent_channels=128, num_blocks=1, num_self_attention_layers_per_block=4,
             num_cross_attention_heads=1, num_self_attention_heads=4, decoder_output_channels=128),
        dict(dataset="synthetic_audiovisual", parameter_count=569_450,
             input_shapes=dict(image=(8, 32, 32, 3), audio=(2_048, 1), label=(10,)),
             description="A small multimodal autoencoder for synthetic audio-visual clips."),
    ),
}

for _name, (_config, _metadata) in _PRESETS.items():
    register_preset(Preset(_name, "multimodal_autoencoding", build_multimodal_autoencoder, _config, _metadata))
