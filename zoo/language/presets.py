"""Language presets: the paper's byte masked language model, its GLUE / IMDb classifiers, small ones.

Parameter counts of the paper-sized presets equal transformers' PerceiverForMaskedLM /
PerceiverForSequenceClassification at deepmind/language-perceiver's configuration (pinned in
tests/test_language_models.py).
"""

from zoo.language.model import build_masked_language_model, build_text_classifier
from zoo.registry import Preset, register_preset

_LANGUAGE_META = dict(license="Apache-2.0 (DeepMind's released checkpoint)", weights="deepmind/language-perceiver")
# Section 4.1 / appendix of the paper: LAMB, linear warm-up then cosine decay, batch 512, 500k steps.
_PRETRAINING = dict(epochs=500, steps_per_epoch=1000, batch_size=512, optimizer="lamb", learning_rate=1.25e-3,
                    weight_decay=0.01, schedule="cosine", warmup_epochs=1)
_FINE_TUNING = dict(epochs=10, batch_size=128, optimizer="lamb", learning_rate=2e-5, weight_decay=0.01,
                    schedule="cosine", warmup_epochs=1)

# A small configuration of the same shape for two CPU cores. Sine/cosine-initialised
# positions: with the reference's random ones, it does not even learn to copy its input in 400 steps.
_SMALL = dict(position_initializer="sinusoidal", sequence_length=128, embedding_channels=128, num_latents=32,
              num_latent_channels=128, num_self_attention_layers_per_block=4, num_cross_attention_heads=4,
              num_self_attention_heads=4, qk_channels=64, v_channels=128, self_attention_widening_factor=2,
              cross_attention_widening_factor=2,
              # Fan-in kernels, the scale these small presets were tuned at (the reference's 0.02 trains
              # small models from scratch far more slowly: see zoo/image_classification/presets.py).
              kernel_initializer="lecun_normal")

MASKED_LM_PRESETS = {
    "language_perceiver": (
        dict(sequence_length=2048),
        dict(_LANGUAGE_META, dataset="c4", parameter_count=201_108_230, training=_PRETRAINING,
             description="The paper's byte MLM: 2,048 bytes, 256 x 1280 latents, 26 layers, tied embedding."),
    ),
    "pydoc_mlm": (
        # Narrower and shorter than _SMALL: 32-byte windows, one latent per byte, two layers. In
        # a few minutes here this learns from context (held-out masked accuracy well above the
        # most-frequent byte), where _SMALL's 128-byte windows stayed at that baseline for 1,200 steps.
        # `python -m zoo train masked_language_modeling --preset pydoc_mlm --out runs/pydoc_mlm`
        # (3,000 steps, 703 s on two shared cores): 31.1% of the held-out masked bytes against 17.0% for
        # the most frequent one (31.4% before every sub-layer got its own initializer).
        dict(_SMALL, sequence_length=32, embedding_channels=64, num_latents=32, num_latent_channels=64,
             qk_channels=32, v_channels=64, num_self_attention_layers_per_block=2, decoder_num_heads=4,
             decoder_qk_channels=32, dropout=0.0),
        dict(dataset="pydoc", description="A small byte MLM pretrained offline on Python's own documentation.",
             training=dict(epochs=12, steps_per_epoch=250, batch_size=128, optimizer="adamw", learning_rate=2e-3,
                           weight_decay=0.01, schedule="cosine", warmup_epochs=1)),
    ),
}

# GLUE tasks: (number of classes, 1 = regression) as in the paper's fine-tuning (2,048-byte inputs).
GLUE_CLASSES = {"cola": 2, "sst2": 2, "mrpc": 2, "qqp": 2, "stsb": 1, "mnli": 3, "qnli": 2, "rte": 2, "wnli": 2}
_GLUE_PARAMETERS = {1: 206_097_409, 2: 206_098_690, 3: 206_099_971}

CLASSIFIER_PRESETS = {
    **{
        f"glue_{task}": (
            dict(sequence_length=2048, num_classes=classes),
            dict(_LANGUAGE_META, dataset=f"glue/{task}", num_classes=classes, training=_FINE_TUNING,
                 parameter_count=_GLUE_PARAMETERS[classes],
                 description=f"GLUE {task.upper()} on the paper's language encoder."),
        )
        for task, classes in GLUE_CLASSES.items()
    },
    "imdb_reviews": (
        dict(sequence_length=2048, num_classes=2),
        dict(_LANGUAGE_META, dataset="imdb_reviews", num_classes=2, training=_FINE_TUNING,
             parameter_count=_GLUE_PARAMETERS[2], description="IMDb review sentiment on the paper's encoder."),
    ),
    "imdb_reviews_small": (
        dict(_SMALL, sequence_length=512, num_classes=2, dropout=0.1),
        dict(dataset="imdb_reviews", num_classes=2, description="A small IMDb classifier (first 510 bytes).",
             training=dict(epochs=5, batch_size=32, optimizer="lamb", learning_rate=2e-3, weight_decay=0.01,
                           schedule="cosine", warmup_epochs=1)),
    ),
    "source_type": (
        # 4 epochs (168 s on two shared cores): 87.4% test accuracy against 33.3% for the majority class
        # (84.8% before every sub-layer got its own initializer).
        dict(_SMALL, num_classes=3, dropout=0.1),
        dict(dataset="source_type", num_classes=3,
             description="Offline: is a byte snippet Python source, a C header or English prose?",
             training=dict(epochs=4, batch_size=32, optimizer="lamb", learning_rate=2e-3, weight_decay=0.01,
                           schedule="cosine", warmup_epochs=1)),
    ),
}

for _name, (_config, _metadata) in MASKED_LM_PRESETS.items():
    register_preset(Preset(_name, "masked_language_modeling", build_masked_language_model, _config, _metadata))
for _name, (_config, _metadata) in CLASSIFIER_PRESETS.items():
    register_preset(Preset(_name, "text_classification", build_text_classifier, _config, _metadata))
