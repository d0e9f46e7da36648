"""`--precision mixed_bfloat16` and `--jit` on every zoo task, each on a toy preset.

Per task: one XLA-compiled step under mixed bfloat16; the run finishes with a finite loss and finite
metrics; the reloaded model keeps float32 variables and bfloat16 computation in every layer; its
outputs are float32; and it agrees with a float32 copy of the same weights to bfloat16 accuracy.
"""

import csv
import json
import math

import keras
import numpy as np
import pytest

from zoo import cli, registry, training

pytestmark = [pytest.mark.tensorflow_only, pytest.mark.slow]

_LANGUAGE = dict(num_self_attention_layers_per_block=1, embedding_channels=32, num_latents=8, num_latent_channels=32,
                 qk_channels=16, v_channels=32)
# task -> (toy preset, model overrides, training options): the toy configs of the tasks' own tests.
TASKS = {
    "image_classification": ("digits", dict(
        num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1,
        num_self_attention_heads=2, num_bands=2), dict(batch_size=8, take=16)),
    "masked_language_modeling": ("pydoc_mlm", dict(_LANGUAGE, decoder_qk_channels=16), dict(batch_size=4, eval_take=8)),
    "text_classification": ("source_type", dict(_LANGUAGE, sequence_length=32), dict(batch_size=4, eval_take=8)),
    "causal_language_modeling": ("pydoc_ar", dict(
        max_sequence_length=48, num_latents=16, num_channels=32, num_heads=2, head_channels=16, rotary_channels=16,
        num_self_attention_layers=1, widening_factor=2), dict(batch_size=4, eval_take=8)),
    "optical_flow": ("flow_small", dict(
        frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16,
        num_self_attention_layers_per_block=1, num_self_attention_heads=2), dict(batch_size=2, decoded_pixels=32,
                                                                                 eval_take=2)),
    "multimodal_autoencoding": ("multimodal_small", dict(
        num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, image_num_bands=2, audio_num_bands=3,
        input_padding=4, label_query_channels=6, num_latents=4, num_latent_channels=16,
        num_self_attention_layers_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2,
        decoder_num_heads=1, decoder_output_channels=8), dict(batch_size=2, decoded_pixels=16,
                                                              decoded_audio_patches=2, take=4, eval_take=2)),
}
COMMON = dict(epochs=1, steps_per_epoch=1, tensorboard=False, verbose=0)
# Relative RMS error of the outputs against float32 with the same weights. bfloat16 keeps 8 significant
# bits (relative rounding 2^-9) and a forward pass rounds weights and activations dozens of times;
# measured 1.1% (optical flow) to 3.9% (image classification) on these toy models.
BF16_TOLERANCE = 0.08


def test_registry_has_no_task_without_a_precision_case():
    assert set(TASKS) == set(registry.TASK_MODULES)


def _first_batch(task, run):
    preset = training.with_overrides(registry.get_preset(run["preset"]), run["model_overrides"])
    _, test = registry.get_recipe(task).datasets(preset, run["options"]["batch_size"], 0, run["options"])
    return next(iter(test))[0]


def _as_float32(outputs):
    return [np.asarray(x, "float32") for x in keras.tree.flatten(outputs)]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_mixed_bfloat16_with_xla_on_every_task(task, tmp_path):
    preset_name, overrides, options = TASKS[task]
    if task == "masked_language_modeling":  # through the CLI's flags, on the task fed dicts of masks and ids
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**options, **COMMON}.items()
                 if k not in ("verbose", "tensorboard")]
        assert cli.main(["train", task, "--preset", preset_name, "--out", str(tmp_path / "run"), "--precision",
                         "mixed_bfloat16", "--jit", *flags, *(f"--set={k}={v}" for k, v in overrides.items())]) == 0
        run = json.loads((tmp_path / "run" / "run.json").read_text())
    else:
        run = training.train(task, preset_name, tmp_path / "run", model_overrides=overrides,
                             precision="mixed_bfloat16", jit_compile=True, **options, **COMMON)
    assert run["status"] == "finished" and run["options"]["jit_compile"] is True
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    with open(tmp_path / "run" / "history.csv") as f:
        assert all(math.isfinite(float(row["loss"])) for row in csv.DictReader(f))
    assert all(math.isfinite(value) for value in run["test_metrics"].values()), run["test_metrics"]

    model, _ = training.load_run(tmp_path / "run")  # loaded under the float32 global policy
    policies = {layer.path: layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)}
    assert set(policies.values()) == {"mixed_bfloat16"}, policies
    first = getattr(model, "encoder", None) or model.get_layer("cross_attention_0")  # PerceiverAR has no encoder
    assert first.compute_dtype == "bfloat16"
    assert {w.dtype for w in model.weights} == {"float32"}

    inputs = _first_batch(task, run)
    mixed = model(inputs)
    assert {keras.backend.standardize_dtype(x.dtype) for x in keras.tree.flatten(mixed)} == {"float32"}
    full = registry.create_model(preset_name, **run["model_overrides"])  # float32, the same weights
    full.set_weights(model.get_weights())
    for half, reference in zip(_as_float32(mixed), _as_float32(full(inputs))):
        assert np.all(np.isfinite(half))
        error = float(np.linalg.norm(half - reference) / np.linalg.norm(reference))
        assert error <= BF16_TOLERANCE, error


def test_mixed_float16_scales_the_loss(tmp_path, monkeypatch):
    optimizers = []
    original_fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        optimizers.append(self.optimizer)
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    preset_name, overrides, options = TASKS["image_classification"]
    run = training.train("image_classification", preset_name, tmp_path / "run", model_overrides=overrides,
                         precision="mixed_float16", **options, **COMMON)
    assert isinstance(optimizers[0], keras.optimizers.LossScaleOptimizer)  # Keras wraps it for float16
    assert all(math.isfinite(value) for value in run["test_metrics"].values())
    model, _ = training.load_run(tmp_path / "run")
    assert model.encoder.compute_dtype == "float16" and model.encoder.latents.dtype == "float32"
