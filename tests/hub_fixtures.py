"""Toy zoo models of every task and their inputs, for the keras-hub tests (tests/test_hub_*.py)."""

from __future__ import annotations

import keras
import numpy as np

import zoo

SEQUENCE_LENGTH, BATCH = 16, 2
_ENCODER = dict(num_latents=4, num_latent_channels=16, num_self_attention_layers_per_block=1,
                num_self_attention_heads=2, seed=0)
_TEXT = dict(sequence_length=SEQUENCE_LENGTH, embedding_channels=16, qk_channels=16, v_channels=16,
             num_cross_attention_heads=1, **_ENCODER)
# preset -> (toy overrides, keras-hub base class name whose from_preset must find our task)
TOY = {
    "digits": (dict(num_blocks=1, out_channels=8, **_ENCODER), "ImageClassifier"),
    "source_type": (_TEXT, "TextClassifier"),
    "pydoc_mlm": (dict(_TEXT, decoder_num_heads=2, decoder_qk_channels=16), "MaskedLM"),
    "flow_small": (dict(frame_size=(6, 8), num_bands=2, patch_channels=8, **_ENCODER), "PerceiverOpticalFlow"),
    "multimodal_small": (dict(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, image_num_bands=2,
                              audio_num_bands=3, label_query_channels=6, decoder_output_channels=8, samples_per_patch=16,
                              input_padding=2, num_cross_attention_heads=1, decoder_num_heads=1, **_ENCODER),
                         "PerceiverMultimodalAutoencoder"),
}


def toy_model(preset: str, **overrides) -> keras.Model:
    """The preset's toy model with weights of order one (outputs then depend on every weight and input)."""
    model = zoo.create_model(preset, **{**TOY[preset][0], **overrides})
    rng = np.random.default_rng(0)
    model.set_weights([np.abs(rng.normal(size=w.shape)) + 0.5 if "variance" in w.path
                       else rng.normal(scale=0.3, size=w.shape) for w in model.weights])
    # The tests compare outputs bit for bit with keras-hub's tasks, which Keras runs layer by layer: so does
    # the zoo model here (its eager graph-speed call can differ in the last bit, as any two graphs can).
    model.graph_call = False
    return model


def toy_inputs(preset: str, seed: int = 0):
    """A batch for the preset's toy model, as the zoo model takes it."""
    rng = np.random.default_rng(seed)
    if preset == "digits":
        return rng.normal(size=(BATCH, 8, 8, 1)).astype("float32")
    if preset in ("source_type", "pydoc_mlm"):
        mask = np.ones((BATCH, SEQUENCE_LENGTH), "int32")
        mask[1, -5:] = 0
        return {"token_ids": rng.integers(0, 262, size=(BATCH, SEQUENCE_LENGTH)).astype("int32"), "padding_mask": mask}
    if preset == "flow_small":
        return rng.uniform(-1, 1, size=(BATCH, 2, 6, 8, 3)).astype("float32")
    return {"image": rng.uniform(-1, 1, size=(BATCH, 2, 8, 8, 3)).astype("float32"),
            "audio": rng.uniform(-1, 1, size=(BATCH, 64, 1)).astype("float32"),
            "label": np.eye(5, dtype="float32")[rng.integers(0, 5, size=BATCH)]}


def task_inputs(preset: str, inputs):
    """The zoo model's inputs as the keras-hub task takes them: the masked LM decodes every position."""
    if preset == "pydoc_mlm":
        return dict(inputs, mask_positions=np.tile(np.arange(SEQUENCE_LENGTH, dtype="int32"), (BATCH, 1)))
    return inputs


def numpy_outputs(outputs) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(x)) for x in keras.tree.flatten(outputs)]
