"""zoo.tuning: the search space around presets, every task's HyperModel, a two-trial search on digits."""

import csv
import json
import math
import re

import keras_tuner
import pytest

from zoo import cli, registry, tuning

pytestmark = pytest.mark.tensorflow_only

DIGITS_TINY = dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1,
                   num_self_attention_heads=2, num_bands=2, out_channels=16)
# (task, preset, toy builder overrides, options): build-only checks, one per task.
TOY_TASKS = [
    ("image_classification", "digits", DIGITS_TINY, {}),
    ("masked_language_modeling", "pydoc_mlm",
     dict(embedding_channels=32, num_latents=8, num_latent_channels=32, qk_channels=16, v_channels=32,
          num_self_attention_layers_per_block=1, decoder_qk_channels=16), {}),
    ("text_classification", "source_type",
     dict(sequence_length=32, embedding_channels=32, num_latents=8, num_latent_channels=32, qk_channels=16,
          v_channels=32, num_self_attention_layers_per_block=1), {}),
    ("optical_flow", "flow_small",
     dict(frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16,
          num_self_attention_layers_per_block=1, num_self_attention_heads=2), dict(decoded_pixels=32)),
    ("multimodal_autoencoding", "multimodal_small",
     dict(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, image_num_bands=2, audio_num_bands=3,
          input_padding=4, label_query_channels=6, num_latents=4, num_latent_channels=16,
          num_self_attention_layers_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2,
          decoder_num_heads=4, decoder_output_channels=8), dict(decoded_pixels=16, decoded_audio_patches=2)),
]

OBJECTIVES = {"image_classification": ("val_accuracy", "max"), "masked_language_modeling": ("val_masked_accuracy", "max"),
              "text_classification": ("val_accuracy", "max"), "optical_flow": ("val_epe", "min"),
              "multimodal_autoencoding": ("val_loss", "min")}


def _divisible(config):
    channels = config["num_latent_channels"]
    heads = (config["num_self_attention_heads"], config.get("num_cross_attention_heads", 1),
             config.get("decoder_num_heads", 1))
    widths = [channels] + [config[k] for k in ("qk_channels", "v_channels") if config.get(k)]
    return all(width % h == 0 for width in widths for h in heads)


@pytest.mark.parametrize("name", ["imagenet_fourier", "language_perceiver", "glue_cola", "optical_flow",
                                  "multimodal_autoencoding", "mnist", "pydoc_mlm", "multimodal_small"])
def test_search_space_is_centred_on_the_preset_and_keeps_heads_dividing_channels(name):
    preset = registry.get_preset(name)
    options = dict(preset.metadata.get("training", {"learning_rate": 1e-3, "weight_decay": 0.1}))
    config = tuning.builder_config(preset)
    space = tuning.search_space(config, options)
    for key, choices in space.choices.items():
        assert config[key] == space.centre[key] in choices and len(choices) == 3, (key, choices)
    for channels in space.choices["num_latent_channels"]:
        for heads in space.choices["num_self_attention_heads"]:
            assert _divisible({**config, "num_latent_channels": channels, "num_self_attention_heads": heads})
    low, high = space.learning_rate
    assert low < options["learning_rate"] < high


@pytest.mark.parametrize("task, preset, overrides, options", TOY_TASKS, ids=[t[0] for t in TOY_TASKS])
def test_every_task_hypermodel_builds_sampled_configurations(task, preset, overrides, options):
    hypermodel = tuning.PresetHyperModel(task, preset, overrides, dict(options, steps_per_epoch=2, batch_size=4))
    hp = keras_tuner.HyperParameters()
    assert hypermodel.declare(hp) == {**hypermodel.space.centre, "learning_rate": hp["learning_rate"],
                                      "weight_decay": hp["weight_decay"]}
    choices = hypermodel.space.choices
    # the narrowest latents with the most heads, then the widest with the fewest: both corners must build
    for pick, other in ((0, -1), (-1, 0)):
        hp.values.update({name: values[pick] for name, values in choices.items()})
        hp.values["num_self_attention_heads"] = choices["num_self_attention_heads"][other]
        hp.values["learning_rate"] = hypermodel.space.learning_rate[1]
        model = hypermodel.build(hp)
        built = {**hypermodel.config, **hypermodel.builder_overrides(hp.values)}
        assert _divisible(built) and model.optimizer is not None and model.count_params() > 0
    goal = tuning.objective(task, hypermodel.preset)
    assert (goal.name, goal.direction) == OBJECTIVES[task]


def test_bad_tuner_and_max_trials_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--tuner must be one of bayesian, hyperband, random. Received: --tuner 'grid'"):
        tuning.tune("image_classification", "digits", tmp_path, tuner="grid", max_trials=2)
    with pytest.raises(ValueError, match=r"--max-trials must be an integer from 1 to 2147483647. Received: --max-trials 0"):
        tuning.tune("image_classification", "digits", tmp_path, max_trials=0)
    for bad in (0, -1):
        argv = ["tune", "image_classification", "--preset", "digits", "--out", str(tmp_path), "--max-trials", str(bad)]
        assert cli.main(argv) == cli.EXIT_INPUT_ERROR
        assert re.search(f"argument --max-trials: expected an integer from 1 to .*Received: '{bad}'",
                         capsys.readouterr().err)
    with pytest.raises(ValueError, match="belongs to task 'image_classification'"):
        tuning.tune("optical_flow", "digits", tmp_path, max_trials=1)
    assert not (tmp_path / "tuner").exists()


def test_two_trial_search_on_digits_retrains_and_exports_the_best(tmp_path, capsys):
    out = tmp_path / "tune"
    overrides = [f"--set={key}={value}" for key, value in DIGITS_TINY.items()]
    budget = ["--epochs", "1", "--batch-size", "64", "--take", "128", "--no-jit"]
    assert cli.main(["tune", "image_classification", "--preset", "digits", "--out", str(out), "--tuner", "random",
                     "--max-trials", "2", "--quantize", "float32", "--latency-runs", "0", *budget, *overrides]) == 0
    assert "| trial | status |" in capsys.readouterr().out
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    names = [*tuning.ARCHITECTURE, "learning_rate", "weight_decay"]
    assert len(rows) == 2 and {row["status"] for row in rows} == {"COMPLETED"}
    assert len({tuple(row[n] for n in names) for row in rows}) == 2  # distinct configurations
    for row in rows:
        assert 0.0 <= float(row["objective"]) <= 1.0 and not math.isnan(float(row["objective"]))
        assert int(row["parameter_count"]) > 0 and float(row["seconds"]) > 0
    results = json.loads((out / "results.json").read_text())
    assert results["objective"] == "val_accuracy" and results["direction"] == "max"
    best = results["best"]
    assert best["objective"] == max(float(row["objective"]) for row in rows)
    run = json.loads((out / "best" / "run.json").read_text())
    assert run["status"] == "finished" and (out / "best" / "model.keras").is_file()
    assert {k: run["model_overrides"][k] for k in best["model_overrides"]} == best["model_overrides"]
    assert run["options"]["learning_rate"] == best["options"]["learning_rate"]
    assert json.loads((out / "export" / "report.json").read_text())["passed"] and results["export"]["passed"]
    assert "| trial |" in (out / "results.md").read_text()

    # Run again: the search resumes from tuner/ (nothing left to try) and keeps the finished retraining.
    again = tuning.tune("image_classification", "digits", out, max_trials=2, model_overrides=DIGITS_TINY,
                        export=False, verbose=0, epochs=1, batch_size=64, take=128, jit_compile=False)
    assert [row["trial"] for row in again["trials"]] == [row["trial"] for row in rows]
    assert json.loads((out / "best" / "run.json").read_text())["started"] == run["started"]
