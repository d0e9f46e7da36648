"""Every small preset's integer file on real edge toolchains: Arm's vela (Ethos-U55/U85) and TensorFlow Lite Micro.

Built from the presets (their own sizes, initial weights: the ops, not the accuracy, are checked),
calibrated on random inputs of the model's signature. The int8 file must hold no float op, compile
with every op on the NPU (ethos-u85-256 always; ethos-u55-128 too, except the byte models' token
gather and key mask, which the U55 has no operator for) and run in TensorFlow Lite Micro within a
few quantisation steps of LiteRT; the float16 file must use only GPU-delegate ops.
"""

import json

import pytest

import zoo
from benchmarks.edge import random_inputs
from export import export_model
from export.signature import signature_of
from zoo.multimodal.export import export_arrays, export_chunked

pytestmark = pytest.mark.tensorflow_only

CONFIGS = ("ethos-u55-128", "ethos-u85-256")
U55_TEXT_OPS = {"GATHER", "NOT_EQUAL", "SELECT_V2", "RESHAPE", "STRIDED_SLICE"}
"""What vela 5.2 leaves on the CPU of an Ethos-U55 for a byte model: the token lookup (no GATHER on
the U55) and the boolean key mask (no boolean tensors or SELECT_V2), all at the model's input."""
MAX_TFLM_STEPS = 16
"""TensorFlow Lite Micro's reference kernels against LiteRT's optimised ones, on untrained models whose
outputs span few steps (LOGISTIC, RSQRT and SOFTMAX round differently); measured up to 14."""


def _check_int8(accelerators, text=False):
    assert accelerators["float_ops"]["count"] == 0, accelerators["float_ops"]
    for config in CONFIGS:
        vela = accelerators["vela"][config]
        assert vela["ok"], vela.get("error")
        allowed = U55_TEXT_OPS if text and config == "ethos-u55-128" else set()
        assert set(vela["cpu_op_types"]) <= allowed, (config, vela["cpu_op_types"], vela["cpu_reasons"])
        assert vela["inferences_per_second"] > 0 and vela["sram_kib"] > 0
    tflm = accelerators["tflm"]
    assert tflm["ok"], tflm.get("error")
    assert tflm["arena_bytes"] > 0 and tflm["max_diff_steps"] <= MAX_TFLM_STEPS


@pytest.mark.parametrize("preset", ["digits", "mnist", "cifar10", "imdb_reviews_small", "source_type", "pydoc_mlm",
                                    "flow_small"])
def test_small_preset_int8_maps_onto_ethos_u_and_runs_in_tflite_micro(preset, tmp_path):
    model = zoo.create_model(preset, seed=0)
    x = random_inputs(model, count=8)
    report = export_model(model, tmp_path / "export", calibration_data=x, eval_data=x, latency_runs=0,
                          quantizations=("float16", "int8"), vela_configs=CONFIGS,
                          regression=preset == "flow_small")
    _check_int8(report.variants["int8"].accelerators, text=isinstance(x, dict))
    gpu = report.variants["float16"].accelerators["gpu"]
    assert gpu["ok"] and gpu["op_list_compatible"], gpu
    saved = json.loads((tmp_path / "export" / "report.json").read_text())
    assert saved["batch_size"] == 1 and saved["variants"]["int8"]["accelerators"]["float_ops"]["count"] == 0


def test_multimodal_small_encoder_and_chunked_decoder_map_onto_ethos_u(tmp_path):
    model = zoo.create_model("multimodal_small", seed=0)
    config = zoo.get_preset("multimodal_small").config
    clips = export_arrays("synthetic_audiovisual", config["num_frames"], list(config["frame_size"]),
                          config["num_audio_samples"], config["num_classes"], tone_period=32,
                          num_calibration=2, num_eval=1)
    report = export_chunked(model, tmp_path, inputs=clips["eval"], calibration_inputs=clips["calibration"],
                            quantizations=("int8",), vela_configs=CONFIGS)
    for part in ("encoder", "decoder"):
        _check_int8(report.variants["int8"]["accelerators"][part])
