"""export.accelerators against the real toolchains (vela, TensorFlow Lite Micro, TFLite's analyzer)
on tiny Keras models converted with a static batch of 1, full int8 with builtin ops."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from export import accelerators
from export.tflite import convert

pytestmark = pytest.mark.tensorflow_only
NPU_CONFIGS = ("ethos-u55-128", "ethos-u85-256")


def _model(kind: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((16,), name="x")
    hidden = keras.layers.Dense(32, activation="relu")(x)
    if kind == "layer_norm":
        hidden = keras.layers.LayerNormalization()(hidden)
    if kind == "gelu":
        hidden = keras.layers.Dense(32, activation=keras.activations.gelu)(hidden)
    if kind == "reshape":
        hidden = keras.layers.Reshape((32,))(keras.layers.Dense(8)(keras.layers.Reshape((4, 4))(x)))
    return keras.Model(x, keras.layers.Softmax()(keras.layers.Dense(8)(hidden)))


def _calibration():
    rng = np.random.default_rng(0)
    return ({"x": rng.normal(size=(1, 16)).astype("float32")} for _ in range(20))


def _saved_model(kind: str, batch: int | None, folder) -> str:
    model, path = _model(kind), str(folder / f"{kind}_{batch}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((batch, 16), tf.float32, name="x")
    archive.add_endpoint("serving_default", tf.function(lambda x: {"probs": model(x)}, input_signature=[spec]))
    archive.write_out(path, verbose=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("accelerators")
    files = {}
    for kind in ("mlp", "layer_norm", "gelu"):
        files[kind] = convert(_saved_model(kind, 1, folder), "serving_default", "int8", _calibration)
    files["mlp_float32"] = convert(_saved_model("mlp", 1, folder), "serving_default", "float32")
    dynamic = _saved_model("reshape", None, folder)
    files["dynamic"] = convert(dynamic, "serving_default", "int8", _calibration)
    files["dynamic_float32"] = convert(dynamic, "serving_default", "float32")
    # int8 inside, float input and output: the converter adds a QUANTIZE and a DEQUANTIZE.
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "mlp_1"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():  # Calibration runs the deprecated tf.lite.Interpreter.
        warnings.simplefilter("ignore")
        files["float_io"] = converter.convert()
    return files


def _feed_and_litert(flatbuffer: bytes, samples: int = 6) -> tuple[dict, dict]:
    feed = {"x": np.random.default_rng(1).normal(size=(samples, 16)).astype("float32")}
    runner = Interpreter(model_content=flatbuffer).get_signature_runner("serving_default")
    scale, zero_point = runner.get_input_details()["x"]["quantization"]
    quantized = np.clip(np.round(feed["x"] / scale + zero_point), -128, 127).astype(np.int8)
    outputs = [runner(x=quantized[i:i + 1])["probs"] for i in range(samples)]
    return feed, {"probs": np.concatenate(outputs)}


def test_int8_mlp_maps_wholly_onto_the_npu_and_matches_litert_in_tflm(files):
    feed, litert = _feed_and_litert(files["mlp"])
    report = accelerators.accelerator_reports(files["mlp"], "int8", feed, litert, NPU_CONFIGS)
    assert report["float_ops"]["count"] == 0 and report["float_ops"]["boundary_count"] == 0
    for config in NPU_CONFIGS:
        vela = report["vela"][config]
        assert vela["ok"], vela
        assert (vela["cpu_ops"], vela["cpu_op_types"], vela["npu_partitions"], vela["cpu_partitions"]) == (0, {}, 1, 0)
        assert vela["accelerator"] == config and vela["vela_version"].startswith("5.")
        assert vela["macs"] >= 16 * 32 + 32 * 8 and vela["inferences_per_second"] > 0 and vela["sram_kib"] > 0
    assert report["vela"]["ethos-u55-128"]["off_chip_flash_kib"] > 0  # U85's default system keeps weights in DRAM.
    tflm = report["tflm"]
    assert tflm["ok"] and tflm["samples"] == 6 and tflm["arena_bytes"] > 0, tflm
    assert tflm["max_diff_steps"] <= 1
    assert "gpu" not in report
    table = "\n".join(accelerators.markdown_lines({"int8": report}))
    assert "| int8 | ethos-u55-128 | " in table and "ran, arena" in table
    assert "TFLM ran" in accelerators.summary_line(report)


def test_layer_norm_leaves_a_float_neg_on_the_cpu(files):
    floats = accelerators.float_ops(files["layer_norm"])
    assert floats["ops"] == {"DEQUANTIZE": 1, "NEG": 1, "QUANTIZE": 1} and floats["count"] == 3
    assert any(name.endswith("/Neg") for name in floats["tensors"])
    vela = accelerators.vela_report(files["layer_norm"], "ethos-u55-128")
    assert vela["ok"] and vela["cpu_ops"] > 0 and vela["cpu_op_types"] == floats["ops"]
    assert (vela["npu_partitions"], vela["cpu_partitions"]) == (2, 1)
    assert any(r["op"] == "NEG" and "Float32" in r["reason"] for r in vela["cpu_reasons"])


def test_gelu_maps_on_vela_but_tflm_has_no_kernel(files):
    feed, litert = _feed_and_litert(files["gelu"], samples=1)
    assert accelerators.vela_report(files["gelu"], "ethos-u55-128")["cpu_ops"] == 0
    tflm = accelerators.tflm_report(files["gelu"], feed, litert)
    assert not tflm["ok"] and "Didn't find op for builtin opcode 'GELU'" in tflm["error"]


def test_dynamic_batch_is_rejected_by_vela_and_tflm(files):
    vela = accelerators.vela_report(files["dynamic"], "ethos-u55-128")
    assert not vela["ok"] and "Compilation failed" in vela["error"] and "RESHAPE" in vela["error"]
    tflm = accelerators.tflm_report(files["dynamic"], {"x": np.zeros((1, 16), "float32")})
    assert not tflm["ok"] and "REDUCE_PROD" in tflm["error"]
    assert "failed: RuntimeError: Compilation failed" in "\n".join(
        accelerators.markdown_lines({"int8": {"float_ops": {"ok": False}, "vela": {"ethos-u55-128": vela}}})
    )


def test_float_files_get_a_gpu_report_whose_analyzer_checks_nothing(files):
    report = accelerators.accelerator_reports(files["mlp_float32"], "float32", {}, None)
    assert set(report) == {"quantization", "float_ops", "gpu"}
    assert report["float_ops"]["ops"] == {"FULLY_CONNECTED": 2, "SOFTMAX": 1}
    gpu = report["gpu"]
    assert gpu["ok"] and gpu["op_list_compatible"] and gpu["ops"]["SOFTMAX"]["count"] == 1
    # TF 2.21's analyzer passes the int32 SHAPE arithmetic of a dynamic batch; the op list does not.
    dynamic = accelerators.gpu_report(files["dynamic_float32"])
    assert dynamic["analyzer_verdict"] == "compatible" and not dynamic["op_list_compatible"]
    assert dynamic["ops"]["SHAPE"]["op_list"] == "unsupported"


def test_quantize_and_dequantize_of_float_model_io_count_as_boundary_ops(files):
    floats = accelerators.float_ops(files["float_io"])
    assert floats["count"] == 0 and floats["boundary"] == {"DEQUANTIZE": 1, "QUANTIZE": 1}


def test_unreadable_files_give_errors_not_exceptions():
    garbage = b"not a .tflite file" * 8
    for report in (accelerators.float_ops(garbage), accelerators.vela_report(garbage),
                   accelerators.tflm_report(garbage, {}), accelerators.gpu_report(garbage)):
        assert report["ok"] is False and report["error"]
