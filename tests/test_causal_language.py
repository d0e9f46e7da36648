"""Perceiver AR in the zoo: byte windows, training through the CLI, the baselines, and generation."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import zoo
from perceiver_keras import PerceiverAR
from perceiver_keras.byte_tokenizer import BYTE_OFFSET, EOS_ID
from zoo import cli, training
from zoo.language import causal_data, generate
from zoo.language.generation import next_byte_id

pytestmark = pytest.mark.tensorflow_only

TOY = dict(max_sequence_length=48, num_latents=16, num_channels=32, num_heads=2, head_channels=16,
           rotary_channels=16, num_self_attention_layers=1, widening_factor=2)


def _windows(ds):
    x, y = zip(*ds.as_numpy_iterator())
    return np.concatenate(x), np.concatenate(y)


def test_windows_put_the_loss_on_the_latents_of_a_byte_stream():
    docs = causal_data.causal_documents("pydoc", "validation")
    x, y = _windows(causal_data.causal_lm_dataset(docs, sequence_length=40, num_latents=8, batch_size=16,
                                                  training=False))
    assert x.shape[1:] == (40,) and y.shape[1:] == (8,) and x.dtype == np.int32
    np.testing.assert_array_equal(y[:, :-1], x[:, 33:])  # y is the next byte after each latent position
    assert x[0, 0] == EOS_ID and np.all(x[:, 1:] != 0)  # a document starts with EOS; no padding
    text = bytes(int(i) - BYTE_OFFSET for i in x[0, 1:]).decode("utf-8", errors="replace")
    first = causal_data.causal_documents("pydoc", "validation").as_numpy_iterator().next().decode()
    assert first.startswith(text)


def test_eval_window_scores_models_of_any_context_on_the_same_bytes():
    docs = causal_data.causal_documents("pydoc", "validation")
    long_x, long_y = _windows(causal_data.causal_lm_dataset(docs, sequence_length=64, num_latents=16, batch_size=32,
                                                            training=False, eval_window=128))
    short_x, short_y = _windows(causal_data.causal_lm_dataset(docs, sequence_length=16, num_latents=16,
                                                              batch_size=32, training=False, eval_window=128))
    np.testing.assert_array_equal(long_y, short_y)
    np.testing.assert_array_equal(long_x[:, -16:], short_x)


def test_training_windows_change_every_epoch():
    docs = causal_data.causal_documents("pydoc", "train", take=6)
    ds = causal_data.causal_lm_dataset(docs, sequence_length=32, num_latents=8, batch_size=4, training=True, seed=1)
    first, second = next(iter(ds))[0].numpy(), next(iter(ds))[0].numpy()
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("source, feature", [("pg19", "book_text"), ("tiny_shakespeare", "text"),
                                             ("wiki40b", "text")])
def test_tfds_corpora_with_mock_data(tmp_path, source, feature):
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        docs = causal_data.causal_documents(source, "train", data_dir=str(tmp_path))
        texts = list(docs.as_numpy_iterator())
        assert texts and all(isinstance(t, bytes) for t in texts)
        ds = causal_data.causal_lm_dataset(docs, sequence_length=8, num_latents=4, batch_size=2, training=False)
        x, y = next(iter(ds))
        assert x.shape == (2, 8) and y.shape == (2, 4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_latents=50), "num_latents <= sequence_length"), (dict(eval_window=20), "eval_window >= sequence_length"),
    (dict(batch_size=0), "batch_size"),
])
def test_pipeline_refuses_bad_arguments(kwargs, message):
    args = {**dict(sequence_length=32, num_latents=8, batch_size=2, training=False), **kwargs}
    with pytest.raises(ValueError, match=message):
        causal_data.causal_lm_dataset(causal_data.causal_documents("pydoc", "train"), **args)


@pytest.fixture(scope="module")
def ar_run(tmp_path_factory):
    """A toy Perceiver AR trained two short epochs on pydoc through the CLI."""
    out = tmp_path_factory.mktemp("ar") / "run"
    overrides = [f"--set={key}={value}" for key, value in TOY.items()]
    assert cli.main(["train", "causal_language_modeling", "--preset", "pydoc_ar", "--out", str(out), "--epochs", "2",
                     "--steps-per-epoch", "3", "--batch-size", "4", "--eval-take", "8", *overrides]) == 0
    return out


def test_trains_into_a_run_with_bits_per_byte_and_the_unigram_baseline(ar_run):
    run = json.loads((ar_run / "run.json").read_text())
    assert run["status"] == "finished" and run["task"] == "causal_language_modeling"
    assert set(run["test_metrics"]) == {"loss", "bits_per_byte", "accuracy"}
    assert run["test_metrics"]["bits_per_byte"] == pytest.approx(run["test_metrics"]["loss"] / np.log(2), rel=1e-5)
    assert 3.0 < run["baselines"]["unigram_bits_per_byte"] < 8.0


def test_generate_cli_in_a_fresh_process_equals_generate_on_the_loaded_model(ar_run):
    command = [sys.executable, "-m", "zoo", "generate", str(ar_run), "--prompt", "The for statement", "--greedy",
               "--max-new-bytes", "40"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    model = keras.saving.load_model(ar_run / "model.keras")
    expected = generate(model, "The for statement", 40, greedy=True)
    assert done.stdout == expected + "\n"
    refused = subprocess.run([*command[:-2], "--max-new-bytes", "-1"], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "max_new_bytes=-1" in refused.stderr


def _model():
    model = PerceiverAR(**TOY, seed=0)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    return model


@pytest.mark.parametrize("prompt", ["a", "def f(x):\n    return x" * 3])
def test_cached_generation_equals_full_passes(prompt):
    model = _model()
    # 80 new bytes: the 48-byte window fills and slides several times (stride 8).
    with pytest.warns(UserWarning, match="more than the model's window") if len(prompt) > 48 else _no_warning():
        cached = generate(model, prompt, 80, greedy=True, return_bytes=True)
    uncached = generate(model, prompt[-48:], 80, greedy=True, use_cache=False, return_bytes=True)
    assert len(cached) == 80 and cached == uncached
    # Another stride reads other windows once the first one is full; until then the bytes are the same.
    before_sliding = 48 - max(min(len(prompt), 48), model.prefix_length + 1) + 1
    other_stride = generate(model, prompt[-48:], 30, greedy=True, stride=1, return_bytes=True)
    assert other_stride[:before_sliding] == cached[:before_sliding]


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_sampling_is_seeded_and_respects_top_k_and_top_p():
    model = _model()
    first = generate(model, "abc", 20, temperature=0.9, top_p=0.8, seed=5, return_bytes=True)
    assert first == generate(model, "abc", 20, temperature=0.9, top_p=0.8, seed=5, return_bytes=True)
    assert generate(model, "abc", 20, top_k=1, seed=2, return_bytes=True) == generate(model, "abc", 20, greedy=True,
                                                                                     return_bytes=True)
    logits = np.full(262, -5.0)
    logits[[10, 11, 12]] = [3.0, 2.9, 0.0]
    logits[0] = 100.0  # a special id is never chosen
    rng = np.random.default_rng(0)
    draws = {next_byte_id(logits, rng, greedy=False, temperature=1.0, top_k=None, top_p=0.5) for _ in range(200)}
    assert draws <= {10, 11} and len(draws) == 2
    draws = {next_byte_id(logits, rng, greedy=False, temperature=1.0, top_k=1, top_p=None) for _ in range(20)}
    assert draws == {10}


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_bytes=-1), r"max_new_bytes.*>= 0. Received: max_new_bytes=-1"),
    (dict(top_p=0.0), r"top_p.*\(0, 1\].*Received: top_p=0.0"), (dict(top_p=1.5), "top_p=1.5"),
    (dict(temperature=0.0), r"temperature.*> 0.*greedy=True.*Received: temperature=0.0"),
    (dict(top_k=0), "top_k=0"), (dict(stride=0), r"stride.*\[1, num_latents=16\]"), (dict(prompt=""), "prompt"),
])
def test_bad_generation_arguments_name_the_argument(kwargs, message):
    args = {**dict(prompt="abc", max_new_bytes=4), **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(_model(), **args)


def test_greedy_mode_ignores_temperature_and_presets_build():
    model = _model()
    assert generate(model, "xy", 5, temperature=0.0, greedy=True) == generate(model, "xy", 5, greedy=True)
    assert set(zoo.list_models("causal_language_modeling")) >= {"pydoc_ar", "pydoc_transformer"}
    small = zoo.create_model("pydoc_ar")
    assert small.prefix_length == 896 and small.num_latents == 128
    baseline = zoo.create_model("pydoc_transformer")
    assert baseline.prefix_length == 0
    # Same width and depth: they differ only by the 896 extra learned positions of the longer window.
    assert small.count_params() - baseline.count_params() == 896 * 128


@pytest.mark.parametrize("name, count", [
    ("wikitext103_ar", 30_696_960),
    # flaxformer's own counts of perceiver_ar_small.gin / perceiver_ar_base.gin at c4_lm.gin's 8,192 tokens
    # (`python tests/reference/flaxformer_fixture.py --count` with flaxformer installed: `make flaxformer-fixture`).
    ("c4_ar_small", 58_071_552),
    ("c4_ar_base", 162_614_016),
])
def test_paper_sized_preset_has_its_parameter_count(name, count):
    preset = zoo.registry.get_preset(name)
    model = zoo.create_model(name)
    assert model.count_params() == preset.metadata["parameter_count"] == count


def test_tune_searches_perceiver_ar_widths_under_their_own_names(tmp_path):
    out = tmp_path / "tune"
    overrides = [f"--set={key}={value}" for key, value in TOY.items()]
    assert cli.main(["tune", "causal_language_modeling", "--preset", "pydoc_ar", "--out", str(out), "--max-trials", "2",
                     "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--eval-take", "4",
                     "--retrain-epochs", "1", "--no-export", *overrides]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["objective"] == "val_bits_per_byte" and results["direction"] == "min"
    trials = results["trials"]
    assert len(trials) == 2 and all(t["status"] == "COMPLETED" for t in trials)
    for trial in trials:
        assert trial["num_channels"] in (16, 32, 64) and trial["num_heads"] in (1, 2, 4)
        assert trial["num_self_attention_layers"] in (1, 2) and "num_latents" not in trial
        # Two steps from random weights: about the uniform byte model's log2(262) = 8.03 bits, either side.
        assert 0 < trial["objective"] < 2 * np.log2(262)
    assert json.loads((out / "best" / "run.json").read_text())["status"] == "finished"


def test_every_byte_evaluation_scores_each_byte_of_the_stream_once_after_a_full_window():
    docs = causal_data.causal_documents("pydoc", "validation", take=3)
    stream = np.concatenate(list(causal_data.byte_stream(docs).as_numpy_iterator()))
    x, y = _windows(causal_data.causal_lm_dataset(docs, sequence_length=40, num_latents=8, batch_size=16,
                                                  training=False, eval_window=60, every_byte=True))
    first = 64 - 8  # the first window (ceil(61 / 8) = 8 blocks) scores its last block
    blocks = (len(stream) // 8) - 7
    assert len(y) == blocks
    np.testing.assert_array_equal(y.ravel(), stream[first:first + 8 * blocks])
    for row in (0, 5, blocks - 1):  # each window is the 40 ids before its targets' last id
        end = first + 8 * row + 8
        np.testing.assert_array_equal(x[row], stream[end - 41:end - 1])


class _KilledAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated kill")


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """Windows are cut at a new random offset every epoch and the prefix dropout and dropout draw from
    seed generators: a resumed run must redraw exactly what the uninterrupted run drew."""
    options = dict(epochs=2, steps_per_epoch=2, batch_size=4, eval_take=4, tensorboard=False, verbose=0, seed=3)
    preset_dropouts = dict(prefix_dropout=0.25, dropout=0.1)
    whole = training.train("causal_language_modeling", "pydoc_ar", tmp_path / "whole",
                           model_overrides={**TOY, **preset_dropouts}, **options)
    original_fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, *args, callbacks=(), **kwargs: original_fit(
        self, *args, callbacks=[*callbacks, _KilledAfterFirstEpoch()], **kwargs))
    with pytest.raises(KeyboardInterrupt):
        training.train("causal_language_modeling", "pydoc_ar", tmp_path / "killed",
                       model_overrides={**TOY, **preset_dropouts}, **options)
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["status"] == "running"
    monkeypatch.setattr(keras.Model, "fit", original_fit)

    def killed_while_saving(model, path):
        raise KeyboardInterrupt("simulated kill after the last epoch")

    monkeypatch.setattr(training, "save_model_atomically", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):  # resumed, trained epoch 1, then killed before the run is finished
        training.train("causal_language_modeling", "pydoc_ar", tmp_path / "killed",
                       model_overrides={**TOY, **preset_dropouts}, **options)
    monkeypatch.undo()
    resumed = training.train("causal_language_modeling", "pydoc_ar", tmp_path / "killed",
                             model_overrides={**TOY, **preset_dropouts}, **options)
    with open(tmp_path / "killed" / "history.csv") as f:  # neither resume trained an epoch again
        assert [int(line.split(",")[0]) for line in f.readlines()[1:]] == [0, 1]
    assert not (tmp_path / "killed" / "backup").exists()  # removed once the run is finished
    weights = [keras.saving.load_model(tmp_path / name / "model.keras").get_weights() for name in ("whole", "killed")]
    assert len(weights[0]) == len(weights[1])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)  # a resume that redraws data or masks: > 3e-3
    assert resumed["test_metrics"]["bits_per_byte"] == pytest.approx(whole["test_metrics"]["bits_per_byte"], abs=1e-4)
