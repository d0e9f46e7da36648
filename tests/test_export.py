"""export/: SavedModel + TFLite export, parity checks, reports and the CLI, on tiny Keras models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import export
from export.cli import main
from export.outdir import MARKER, OutputDirError
import export_fixtures as fixtures  # tests/ is on sys.path (pytest rootdir-relative imports).

pytestmark = pytest.mark.tensorflow_only

VARIANT_KEYS = {
    "size_bytes", "max_abs_diff", "top1_agreement", "accuracy", "latency_ms", "ops", "gpu_delegate",
    "passed", "failures",
}


@pytest.fixture(scope="module")
def digits():
    return fixtures.digits_model(), fixtures.digits_data()


@pytest.fixture(scope="module")
def digits_export(digits, tmp_path_factory):
    model, data = digits
    out = tmp_path_factory.mktemp("digits") / "export"
    report = export.export_model(
        model, out, calibration_data=data["calibration"], eval_data=data["eval"], latency_runs=3
    )
    return out, report


@pytest.fixture(scope="module")
def tokens_export(tmp_path_factory):
    model = fixtures.token_model()
    inputs, labels = fixtures.token_data()
    evaluation = tf.data.Dataset.from_tensor_slices(
        ({k: v[500:] for k, v in inputs.items()}, labels[500:])
    ).batch(32)
    out = tmp_path_factory.mktemp("tokens") / "export"
    report = export.export_model(
        model, out, calibration_data={k: v[:100] for k, v in inputs.items()}, eval_data=evaluation,
        batch_size=1, latency_runs=2, quantizations=("float32", "float16", "dynamic", "int8"),
    )
    return model, inputs, out, report


def test_writes_saved_model_four_tflite_files_and_reports(digits_export):
    out, report = digits_export
    assert (out / "saved_model" / "saved_model.pb").is_file()
    for quantization in export.QUANTIZATIONS:
        assert (out / f"model_{quantization}.tflite").is_file()
    saved = json.loads((out / "report.json").read_text())
    assert {"model", "created", "versions", "keras", "saved_model", "variants", "passed"} <= set(saved)
    assert set(saved["versions"]) == {"tensorflow", "keras", "ai_edge_litert"}
    assert set(saved["variants"]) == set(export.QUANTIZATIONS)
    for variant in saved["variants"].values():
        assert VARIANT_KEYS <= set(variant)
        assert set(variant["latency_ms"]) == {"1", "2"}
        assert variant["ops"]["FULLY_CONNECTED"] == 2
    float32 = saved["variants"]["float32"]
    assert float32["max_abs_diff"] < 1e-4 and float32["passed"]
    assert saved["saved_model"]["passed"] and saved["saved_model"]["max_abs_diff"] <= 1e-5
    assert saved["keras"]["accuracy"] > 0.8
    # Full-integer numerics are measured, not assumed: the int8 model must still agree with Keras.
    assert saved["variants"]["int8"]["top1_agreement"] > 0.95
    assert report.variants["float32"].passed
    markdown = (out / "report.md").read_text()
    assert "| float32 |" in markdown and "int8_top1_agreement" in markdown


def test_every_tflite_file_runs_in_litert(digits, digits_export):
    model, data = digits
    out, _ = digits_export
    x = data["eval"][0][:20]
    expected = model.predict(x, verbose=0)
    for quantization in export.QUANTIZATIONS:
        interpreter = Interpreter(model_path=str(out / f"model_{quantization}.tflite"))
        runner = interpreter.get_signature_runner("serving_default")
        detail = runner.get_input_details()["pixels"]
        scale, zero_point = detail["quantization"]
        feed = np.round(x / scale + zero_point).astype(detail["dtype"]) if scale else x
        logits = runner(pixels=feed)["output_0"]
        assert logits.shape == (20, 10)
        if quantization == "float32":
            np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_dict_inputs_with_static_batch(tokens_export):
    _, _, out, report = tokens_export
    assert report.passed, report.failures
    saved = json.loads((out / "report.json").read_text())
    assert saved["static_batch"] and saved["keras"]["accuracy"] > 0.9
    for quantization in report.variants:
        interpreter = Interpreter(model_path=str(out / f"model_{quantization}.tflite"))
        inputs = interpreter.get_signature_runner("serving_default").get_input_details()
        assert set(inputs) == {"token_ids", "padding_mask"}
        for detail in inputs.values():
            assert list(detail["shape_signature"]) == [1, fixtures.SEQUENCE_LENGTH]
            assert detail["dtype"] == np.int32  # Integer inputs are never quantized.


def test_saved_model_matches_keras_after_reload_and_in_saved_model_cli(tokens_export, tmp_path):
    model, inputs, out, _ = tokens_export
    batch = {name: value[:3] for name, value in inputs.items()}
    expected = model.predict(batch, verbose=0)
    serving = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    reloaded = serving(**{name: tf.constant(value) for name, value in batch.items()})["output_0"]
    np.testing.assert_allclose(reloaded.numpy(), expected, atol=1e-5)

    exprs = ";".join(f"{name}={value.tolist()}" for name, value in batch.items())
    command = [
        str(Path(sys.executable).parent / "saved_model_cli"), "run", "--dir", str(out / "saved_model"),
        "--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", exprs,
        "--outdir", str(tmp_path / "cli"),
    ]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    np.testing.assert_allclose(np.load(tmp_path / "cli" / "output_0.npy"), expected, atol=1e-5)


class MatrixDeterminant(keras.layers.Layer):
    """Appends det of the first 4 features seen as a 2x2 matrix; TFLite has no builtin for it."""

    def call(self, x):
        det = tf.linalg.det(tf.reshape(x[:, :4], (-1, 2, 2)))
        return tf.concat([x, det[:, None]], axis=-1)


def test_flex_op_raises_naming_it_and_writes_nothing(tmp_path):
    inputs = keras.Input((8,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(3)(MatrixDeterminant()(inputs)))
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    with pytest.raises(export.UnsupportedOpError, match="MatrixDeterminant") as error:
        export.export_model(model, tmp_path / "out", eval_data=x, quantizations=["float32"])
    assert error.value.ops == ["MatrixDeterminant"]
    assert list(tmp_path.iterdir()) == []  # Neither the output nor the temporary directory remains.


def test_existing_output_needs_overwrite(digits, tmp_path):
    model, data = digits
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=str(out)):
        export.export_model(model, out, eval_data=data["eval"], quantizations=["float32"])
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"

    with pytest.raises(OutputDirError, match="was not"):  # not an earlier export: never replaced
        export.export_model(model, out, eval_data=data["eval"], quantizations=["float32"], overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    out = tmp_path / "export"
    for overwrite in (False, True):
        export.export_model(
            model, out, eval_data=data["eval"], quantizations=["float32"], overwrite=overwrite, latency_runs=0
        )
    written = sorted(p.name for p in out.iterdir())
    assert written == [MARKER, "model_float32.tflite", "report.json", "report.md", "saved_model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "out"]


def test_violated_threshold_fails_the_report_but_keeps_the_artefacts(digits, tmp_path):
    model, data = digits
    report = export.export_model(
        model, tmp_path / "out", eval_data=data["eval"], quantizations=["float32"], latency_runs=0,
        thresholds=export.Thresholds(float32_max_abs_diff=0.0),
    )
    assert not report.passed and report.failures[0].startswith("float32: max_abs_diff")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["passed"] is False
    assert (tmp_path / "out" / "model_float32.tflite").is_file()


def test_a_threshold_of_none_is_reported_not_held():
    common = dict(size_bytes=1, latency_ms={}, ops={}, gpu_delegate={})
    low = export.VariantReport(quantization="int8", file="model_int8.tflite", max_abs_diff=3.0, top1_agreement=0.5,
                               accuracy=0.1, **common)
    assert export.Thresholds().variant_failures(low, keras_accuracy=0.9) == [
        "top1_agreement 0.5000 < 0.99", "accuracy drop 0.8000 (Keras 0.9000 -> int8 0.1000) > 0.01"]
    assert export.Thresholds(int8_top1_agreement=None, int8_max_accuracy_drop=None).variant_failures(
        low, keras_accuracy=0.9) == []
    drifted = export.VariantReport(quantization="float16", file="f.tflite", max_abs_diff=0.04, top1_agreement=None,
                                   accuracy=None, **common)
    assert export.Thresholds(float16_max_abs_diff=None).variant_failures(drifted, None) == []
    assert export.Thresholds().variant_failures(drifted, None) == ["max_abs_diff 0.04 > 0.01"]


def test_cli_on_a_run_directory_exits_non_zero_when_int8_fails(digits, tmp_path, capsys):
    model, _ = digits
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    # A calibration set scaled by 0.05 gives int8 far too narrow ranges: top-1 agreement collapses.
    builder = {"builder": "export_fixtures:digits_data", "kwargs": {"calibration_scale": 0.05}}
    (run / "run.json").write_text(json.dumps({"data": builder, "imports": ["export_fixtures"]}))
    argv = [str(run), "--out", str(tmp_path / "out"), "--quantize", "float32,int8", "--latency-runs", "1",
            "--num-eval", "200"]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert "int8: top1_agreement" in printed and "FAILED" in printed
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["passed"] is False and saved["variants"]["float32"]["passed"]
    assert saved["keras"]["num_eval"] == 200


def test_cli_on_a_keras_file_with_npz_data(digits, tmp_path, capsys):
    model, data = digits
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "calibration.npz", x=data["calibration"])
    np.savez(tmp_path / "eval.npz", x=data["eval"][0], y=data["eval"][1])
    argv = [
        str(tmp_path / "model.keras"), "--out", str(tmp_path / "out"), "--quantize", "float32,dynamic",
        "--calibration-data", str(tmp_path / "calibration.npz"),
        "--eval-data", str(tmp_path / "eval.npz"), "--latency-runs", "1", "--batch-size", "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "float32" in printed and "dynamic" in printed and "PASSED" in printed
    assert main(argv) == 2  # The output exists now and --overwrite was not given.
    assert "already exists" in capsys.readouterr().err


def test_cli_rejects_an_unknown_quantization(capsys):
    # A usage error is returned as exit status 2 (argparse's), not raised, like every input error.
    assert main(["run_dir", "--out", "out", "--quantize", "float32,int4"]) == 2
    error = capsys.readouterr().err
    assert "int4" in error and "float32,float16,dynamic,int8" in error
