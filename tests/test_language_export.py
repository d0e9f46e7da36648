"""zoo/language/export.py: raw-string SavedModel signature, token-id .tflite files, masked-LM agreement."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
import zoo
from export.verify import TFLiteRunner
from perceiver_keras.byte_tokenizer import MASK_ID
from zoo.language.export import (
    LANGUAGE_QUANTIZATIONS,
    MASKED_LM_THRESHOLDS,
    TEXT_SIGNATURE,
    export_arrays,
    export_language_model,
    masked_metrics,
    masked_top1_agreement,
    text_signature,
    tokenize,
)

pytestmark = pytest.mark.tensorflow_only

LENGTH = 32
TINY = dict(sequence_length=LENGTH, embedding_channels=16, num_latents=8, num_latent_channels=32, qk_channels=16,
            v_channels=32, num_self_attention_layers_per_block=1)
WORDS = "the perceiver reads raw bytes def return class import self latent cross attention ( ) : =".split()


def tiny_model(preset, scale, **overrides):
    """Random weights scaled up so that the argmax varies; much more and float32 rounding alone
    (Keras eager vs graph) moves the logits by more than 1e-5."""
    keras.utils.set_random_seed(0)
    model = zoo.create_model(preset, **TINY, **overrides)
    model.set_weights([w * scale for w in model.get_weights()])
    return model


def texts(count, seed, mask=False):
    """Short texts of code-ish words; with `mask`, about a fifth of the words are masked byte by byte."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        words = list(rng.choice(WORDS, size=rng.integers(2, 8)))
        if mask:
            words = [w if rng.random() > 0.2 else "[MASK]" * len(w) for w in words]
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    model = tiny_model("pydoc_mlm", 1.5, decoder_qk_channels=16)
    inputs = texts(48, seed=0, mask=True)
    out = tmp_path_factory.mktemp("mlm") / "export"
    report = export_language_model(model, out, texts=inputs, latency_runs=0)
    return model, inputs, None, out, report


@pytest.fixture(scope="module")
def classifier_model():
    return tiny_model("source_type", 1.25)  # 3 classes.


@pytest.fixture(scope="module")
def classifier(classifier_model, tmp_path_factory):
    model = classifier_model
    inputs, pairs = texts(64, seed=1), texts(64, seed=2)
    out = tmp_path_factory.mktemp("classifier") / "export"
    report = export_language_model(
        model, out, texts=inputs, pairs=pairs, quantizations=("float32", "int8"), latency_runs=0
    )
    return model, inputs, pairs, out, report


@pytest.fixture(params=["mlm", "classifier"])
def exported(request):
    return request.getfixturevalue(request.param)


def test_tflite_variants_take_token_ids_with_builtin_ops_and_float32_matches_keras(exported):
    model, inputs, pairs, out, report = exported
    feed = tokenize(inputs, pairs, sequence_length=LENGTH)
    expected = model.predict(feed, verbose=0)
    for quantization, variant in report.variants.items():
        assert not [op for op in variant.ops if op.startswith(("CUSTOM", "Flex"))], variant.ops
        runner = TFLiteRunner((out / variant.file).read_bytes(), "serving_default")
        assert {name: d["dtype"] for name, d in runner.inputs.items()} == {
            "token_ids": np.int32, "padding_mask": np.int32
        }
        if quantization == "float32":
            assert np.max(np.abs(runner(feed)["output_0"] - expected)) <= 1e-4
            assert variant.max_abs_diff <= 1e-4 and variant.passed
    assert set(report.variants) == ({"float32", "int8"} if pairs else set(LANGUAGE_QUANTIZATIONS))


def test_saved_model_default_and_string_signatures_match_keras(exported):
    model, inputs, pairs, out, report = exported
    feed = tokenize(inputs, pairs, sequence_length=LENGTH)
    expected = model.predict(feed, verbose=0)
    loaded = tf.saved_model.load(str(out / "saved_model"))
    by_ids = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in feed.items()})["output_0"]
    np.testing.assert_allclose(by_ids.numpy(), expected, atol=1e-5)
    strings = {"text": tf.constant(inputs)}
    if pairs:
        strings["text_pair"] = tf.constant(pairs)
    by_text = loaded.signatures[TEXT_SIGNATURE](**strings)["output_0"]
    np.testing.assert_allclose(by_text.numpy(), expected, atol=1e-5)
    checked = report.saved_model["extra_signatures"][TEXT_SIGNATURE]
    assert checked["max_abs_diff"] <= 1e-5 and set(checked["inputs"]) == set(strings)
    assert report.saved_model["passed"]


def test_saved_model_cli_lists_the_string_signature(classifier):
    out = classifier[3]
    command = [str(Path(sys.executable).parent / "saved_model_cli"), "show", "--dir", str(out / "saved_model"), "--all"]
    shown = subprocess.run(command, check=True, capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    text_section = shown.split(f"signature_def['{TEXT_SIGNATURE}']")[1].split("signature_def[")[0]
    assert "inputs['text']" in text_section and "inputs['text_pair']" in text_section
    assert text_section.count("dtype: DT_STRING") == 2 and "outputs['output_0']" in text_section
    default_section = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['token_ids']" in default_section and "DT_STRING" not in default_section


def test_int8_classifier_top1_agreement_is_reported(classifier):
    out, report = classifier[3:]
    int8 = json.loads((out / "report.json").read_text())["variants"]["int8"]
    # Random weights: measured, not thresholded here (a trained model must reach 0.99).
    assert 0.0 <= int8["top1_agreement"] <= 1.0 and int8["extra_metrics"] == {}
    assert report.variants["int8"].top1_agreement == int8["top1_agreement"]


def test_masked_agreement_counts_masked_positions_only():
    # Two sequences of 4 positions, 3 classes; masked: (0, 1), (0, 2), (1, 3).
    token_ids = np.array([[4, MASK_ID, MASK_ID, 5], [4, 10, 11, MASK_ID]], np.int32)
    expected = np.zeros((2, 4, 3), np.float32)
    expected[..., 0] = 1.0  # Keras predicts class 0 everywhere.
    actual = np.zeros_like(expected)
    actual[..., 1] = 1.0  # The variant predicts class 1 everywhere ...
    actual[0, 1] = [2.0, 0.0, 0.0]  # ... except at two masked positions, where it agrees.
    actual[1, 3] = [2.0, 0.0, 0.0]
    metrics = masked_metrics()({"token_ids": token_ids}, {"output_0": expected}, {"output_0": actual})
    assert metrics == {"masked_top1_agreement": pytest.approx(2 / 3), "num_masked": 3}
    explicit = np.zeros((2, 4), bool)
    explicit[0, 0] = explicit[0, 1] = True  # Explicit positions override the MASK ids.
    metrics = masked_metrics(explicit)({"token_ids": token_ids}, {"output_0": expected}, {"output_0": actual})
    assert metrics == {"masked_top1_agreement": 0.5, "num_masked": 2}
    assert masked_top1_agreement(expected, actual, np.zeros((2, 4), bool)) is None


def test_mlm_masked_agreement_equals_a_manual_litert_computation(mlm):
    model, inputs, _, out, report = mlm
    feed = tokenize(inputs, sequence_length=LENGTH)
    masked = feed["token_ids"] == MASK_ID
    assert 0 < masked.sum() < feed["padding_mask"].sum()
    expected = np.argmax(model.predict(feed, verbose=0), -1)
    saved = json.loads((out / "report.json").read_text())["variants"]
    for quantization, variant in report.variants.items():
        actual = np.argmax(TFLiteRunner((out / variant.file).read_bytes(), "serving_default")(feed)["output_0"], -1)
        manual = float(np.mean(expected[masked] == actual[masked]))
        assert variant.extra_metrics == {
            "masked_top1_agreement": pytest.approx(manual), "num_masked": int(masked.sum())
        }
        assert saved[quantization]["extra_metrics"]["masked_top1_agreement"] == pytest.approx(manual)
    assert "masked_top1_agreement" in (out / "report.md").read_text()
    # A masked LM holds float parity; its agreement over all (mostly unmasked) positions is reported only.
    assert report.thresholds == export.Thresholds(**MASKED_LM_THRESHOLDS)
    assert "| int8_top1_agreement | reported, not held |" in (out / "report.md").read_text()


def test_mlm_masked_accuracy_of_each_variant_against_the_original_bytes(mlm):
    model, inputs, _, _, _ = mlm
    feed = tokenize(inputs, sequence_length=LENGTH)
    masked = feed["token_ids"] == MASK_ID
    labels = np.where(masked, 7 + np.arange(feed["token_ids"].size).reshape(masked.shape) % 5, feed["token_ids"])
    logits = model.predict(feed, verbose=0)
    metrics = masked_metrics(masked, labels)(feed, {"logits": logits}, {"logits": logits})
    expected = float(np.mean(np.argmax(logits[masked], -1) == labels[masked]))
    assert metrics["masked_accuracy"] == metrics["keras_masked_accuracy"] == pytest.approx(expected)
    assert metrics["masked_top1_agreement"] == 1.0 and metrics["num_masked"] == int(masked.sum())


def test_bad_inputs_raise_before_writing_anything(classifier_model, tmp_path):
    model = classifier_model
    with pytest.raises(ValueError, match="texts is empty"):
        export_language_model(model, tmp_path / "out", texts=[])
    with pytest.raises(ValueError, match="texts is empty"):
        export_language_model(model, tmp_path / "out", texts=np.array([], dtype=object))
    with pytest.raises(ValueError, match="pairs must hold one text per text"):
        export_language_model(model, tmp_path / "out", texts=["a", "b"], pairs=["c"])
    with pytest.raises(ValueError, match="masked_positions need a masked language model"):
        export_language_model(model, tmp_path / "out", texts=["a"], masked_positions=np.ones((1, LENGTH), bool))
    with pytest.raises(ValueError, match="sequence_length must be the model's input length 32"):
        text_signature(model, sequence_length=64)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_extra_signature_leaves_nothing_behind(classifier_model, tmp_path):
    model = classifier_model
    # Fails inside the export, once its temporary directory exists: the example names an input the
    # signature lacks.
    broken = export.ExtraSignature(text_signature(model), example={"sentence": np.array([b"abc"], object)})
    with pytest.raises(TypeError, match="sentence"):
        export_language_model(model, tmp_path / "out", texts=texts(4, seed=3), quantizations=["float32"],
                              extra_signatures={"broken": broken}, latency_runs=0)
    assert list(tmp_path.iterdir()) == []


def test_export_arrays_builds_the_cli_data_of_a_classification_run(classifier_model):
    data = export_arrays("source_type", LENGTH, num_calibration=8, num_eval=16)
    shapes = {k: v.shape for k, v in data["calibration"].items()}
    assert shapes == {"token_ids": (8, LENGTH), "padding_mask": (8, LENGTH)}
    feed, labels = data["eval"]
    assert feed["token_ids"].shape == (16, LENGTH) and set(labels) <= {0, 1, 2}
    assert "extra_metrics" not in data  # Only masked language models get the masked-position agreement.
    extra = data["extra_signatures"](classifier_model)[TEXT_SIGNATURE]
    assert set(extra.example) == {"text"} and extra.expected["output_0"].shape == (len(extra.example["text"]), 3)
