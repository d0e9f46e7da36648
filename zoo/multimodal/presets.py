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
        # pixel queries per frame), 2,048 audio samples (64 patches of 32), 10 classes, 128 x 128 latents.
        # Trained with subsampled decoding (`use_output_indices=True`: 512 pixels and 32 audio patches
        # a clip), the label masked half of the time so that the model both autoencodes it and learns
        # to classify (evaluated rebuilt with label_mask_probability=1.0). Departures from the paper's
        # proportions, chosen in 450-step trials on the synthetic clips: 8 encoder cross-attention heads
        # (80 input channels: input_padding 5), 4 decoder heads, 4 video and 8 audio Fourier bands, 2
        # latent self-attention layers (video 16.3 -> 17.3 dB, label accuracy 0.91 -> 1.0 against the
        # paper's 1 head, 8 and 32 bands and 4 layers at these sizes).
        #
        # Audio: 32-sample patches and tones locked to them (option tone_period=32, see
        # zoo.multimodal.synthetic: class c's tone makes c + 1 cycles a patch, 500 Hz-5 kHz). With
        # free tones (250-2000 Hz, random detuning) and 16-sample patches the audio never left the
        # silence baseline (900 steps: 14.11 dB against 14.14 dB for the mean clip). Widening the
        # decoder (label_query_channels 128) with 8 video bands did worse in 600 steps (audio 15.0 dB,
        # video 16.8 dB on 64 clips); 1,200 steps (4 epochs) gave audio 18.55 dB but lost the video
        # (16.29 dB, at the mean clip's 16.19 dB).
        #
        #   python -m zoo train multimodal_autoencoding --preset multimodal_small --out runs/multimodal_small
        #
        # 1,800 steps of 8 clips (6 epochs of 300), 406 s of training on two cores shared with other jobs
        # (load average 4.3-7.1). On the 256 validation clips, label masked: audio 28.23 dB (mean clip,
        # about silence: 14.15 dB), video 17.55 dB (mean clip 16.19 dB, each clip's mean frame 21.35 dB),
        # label accuracy 1.000 (chance and majority class 0.10). The model reads each clip's class,
        # colours, tone and phase; its video stays below the mean frame (mostly the clip's own textured
        # background, with a smear of the shape). With the per-sub-layer initializers, same seed and clips:
        # 600 steps (the earlier 2 epochs, 199 s) gave audio 17.08 dB, video 17.25 dB, label 1.000;
        # 1,800 steps with the video loss weighted 4 (435 s) gave video 17.74 dB, audio 28.68 dB, its
        # video curve flat at 17.6-17.8 dB from step 600 on. Before them (one shared unseeded
        # initializer), 600 steps gave audio 18.89 dB, video 17.49 dB, label 1.000 (672 s on one core).
        dict(num_frames=8, frame_size=(32, 32), num_audio_samples=2_048, num_classes=10, patch_size=(1, 4, 4),
             samples_per_patch=32, image_num_bands=4, audio_num_bands=8, input_padding=5,
             label_query_channels=64, query_padding=2, label_mask_probability=0.5, num_latents=128,
             num_latent_channels=128, num_blocks=1, num_self_attention_layers_per_block=2,
             num_cross_attention_heads=8, num_self_attention_heads=4, decoder_num_heads=4,
             decoder_output_channels=128, kernel_initializer="lecun_normal"),  # fan-in kernels, as tuned
        dict(dataset="synthetic_audiovisual", parameter_count=357_255,
             input_shapes=dict(image=(8, 32, 32, 3), audio=(2_048, 1), label=(10,)),
             description="A small multimodal autoencoder for synthetic audio-visual clips.",
             # Loss weights (video, audio, label) 1, 1, 1 rather than the paper's 0.03, 1, 0.0001: the
             # synthetic tones are loud (their L1 dwarfs the frames') and the run is short.
             training=dict(epochs=6, steps_per_epoch=300, batch_size=8, optimizer="adamw", learning_rate=3e-3,
                           weight_decay=0.01, schedule="cosine", warmup_epochs=1, image_loss_weight=1.0,
                           audio_loss_weight=1.0, label_loss_weight=1.0, tone_period=32)),
    ),
}

for _name, (_config, _metadata) in _PRESETS.items():
    register_preset(Preset(_name, "multimodal_autoencoding", build_multimodal_autoencoder, _config, _metadata))
