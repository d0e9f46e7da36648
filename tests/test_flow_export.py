"""zoo/optical_flow/export.py: the dense flow model to SavedModel + four .tflite variants, EPE per variant."""

import json
import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
from export.cli import main
from export.verify import TFLiteRunner
from zoo.optical_flow import build_optical_flow_model
from zoo.optical_flow.data import end_point_error
from zoo.optical_flow.export import export_arrays, export_flow_model
from zoo.optical_flow.formats import write_flo
from zoo.optical_flow.inference import dense_model

pytestmark = pytest.mark.tensorflow_only

FRAME_SIZE = (12, 16)
# rescale_factor 10 instead of 100: random weights then give flows of a few pixels, like the truth.
TOY = dict(frame_size=FRAME_SIZE, num_bands=4, patch_channels=8, num_latents=8, num_latent_channels=16,
           num_self_attention_layers_per_block=1, num_self_attention_heads=2, rescale_factor=10.0)
METRICS = {"epe_px", "keras_epe_px", "epe_increase_px", "epe_to_keras_px"}
GRID_METRICS = {"output_grid_px", "rounding_floor_px"}


@pytest.fixture(scope="module")
def trained_like():
    """As a run saves it: built with output indices (subsampled decoding in training)."""
    keras.utils.set_random_seed(0)
    model = build_optical_flow_model(**TOY, use_output_indices=True)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    return model


@pytest.fixture(scope="module")
def arrays():
    return export_arrays("synthetic_flow", FRAME_SIZE, num_calibration=32, num_eval=32)


@pytest.fixture(scope="module")
def exported(trained_like, arrays, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "export"
    frames, flow = arrays["eval"]
    report = export_flow_model(trained_like, out, frames=frames, flow=flow, calibration_frames=arrays["calibration"],
                               latency_runs=0)
    return out, report


def test_export_arrays_are_normalised_frames_and_pixel_flow(arrays, trained_like):
    frames, flow = arrays["eval"]
    assert arrays["calibration"].shape == frames.shape == (32, 2, *FRAME_SIZE, 3) and flow.shape == (32, *FRAME_SIZE, 2)
    assert frames.min() >= -1 and frames.max() <= 1 and frames.min() < -0.5  # [-1, 1], not [0, 1]
    assert 0 < np.abs(flow).max() <= 1.2 + 1e-4  # Synthetic flow up to a tenth of the shorter side.
    assert not np.array_equal(arrays["calibration"][:4], frames[:4])  # Train vs validation photos.
    dense = arrays["prepare_model"](trained_like)
    assert dense.input_shape == (None, 2, *FRAME_SIZE, 3) and arrays["regression"] is True
    with pytest.raises(ValueError, match=re.escape("Expected one of: synthetic_flow, sintel, flying_chairs. "
                                                   "Received: dataset='kitti'")):
        export_arrays("kitti", FRAME_SIZE)
    with pytest.raises(ValueError, match="needs data_dir"):
        export_arrays("sintel", FRAME_SIZE)


def test_export_arrays_of_sintel_evaluate_on_the_scenes_training_holds_out(tmp_path):
    rng, flows = np.random.default_rng(0), {}
    for scene in ("alley_1", "bamboo_1", "bandage_1", "cave_2", "market_2"):  # The fifth is held out.
        (tmp_path / "training" / "flow" / scene).mkdir(parents=True)
        (tmp_path / "training" / "clean" / scene).mkdir(parents=True)
        for i in (1, 2):
            frame = tf.io.encode_png(rng.integers(0, 256, (14, 20, 3), dtype=np.uint8))
            tf.io.write_file(str(tmp_path / "training" / "clean" / scene / f"frame_{i:04d}.png"), frame)
        flows[scene] = rng.normal(0, 2, (14, 20, 2)).astype(np.float32)
        write_flo(str(tmp_path / "training" / "flow" / scene / "frame_0001.flo"), flows[scene])
    built = export_arrays("sintel", FRAME_SIZE, data_dir=str(tmp_path), num_calibration=8, num_eval=8)
    frames, flow = built["eval"]
    assert built["calibration"].shape == (4, 2, *FRAME_SIZE, 3) and frames.shape == (1, 2, *FRAME_SIZE, 3)
    np.testing.assert_array_equal(flow[0], flows["market_2"][1:13, 2:18])  # The centre crop.
    assert frames.min() >= -1 and frames.max() <= 1 and frames.min() < -0.5


def test_all_variants_take_full_frames_with_builtin_ops_and_float32_matches_keras(exported, trained_like, arrays):
    out, report = exported
    frames = arrays["eval"][0]
    expected = keras.ops.convert_to_numpy(dense_model(trained_like)(frames))
    assert set(report.variants) == set(export.QUANTIZATIONS) and report.saved_model["passed"]
    for quantization, variant in report.variants.items():
        assert not [op for op in variant.ops if op.startswith(("CUSTOM", "Flex"))], variant.ops
        runner = TFLiteRunner((out / variant.file).read_bytes(), "serving_default")
        assert list(runner.inputs) == ["frames"] and list(runner.inputs["frames"]["shape"][1:]) == [2, *FRAME_SIZE, 3]
        (flow,) = runner({"frames": frames}).values()
        assert flow.shape == expected.shape == (32, *FRAME_SIZE, 2)
        if quantization == "float32":
            assert np.max(np.abs(flow - expected)) <= 1e-4 and variant.max_abs_diff <= 1e-4 and variant.passed
    assert np.abs(expected).max() > 0.05  # Flows of about a pixel (x 20), not zeros.


def test_every_variant_reports_its_end_point_error_next_to_keras(exported, trained_like, arrays):
    out, report = exported
    frames, flow = arrays["eval"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["keras"]["regression"] is True and saved["keras"]["accuracy"] is None
    keras_epe = end_point_error(flow, 20.0 * keras.ops.convert_to_numpy(dense_model(trained_like)(frames)))
    for quantization, variant in saved["variants"].items():
        # Argmax metrics mean nothing for flow: no top-1 agreement or accuracy.
        assert variant["top1_agreement"] is None and variant["accuracy"] is None
        metrics = variant["extra_metrics"]
        # int8 outputs hit enough of their 256 levels to show the grid; int16 ones may not (then no floor).
        expected = METRICS | GRID_METRICS if quantization == "int8" else METRICS
        assert expected <= set(metrics) <= METRICS | GRID_METRICS, (quantization, metrics)
        assert all(math.isfinite(v) for v in metrics.values())
        assert metrics["keras_epe_px"] == pytest.approx(keras_epe, rel=1e-5)
        assert metrics["epe_increase_px"] == pytest.approx(metrics["epe_px"] - keras_epe, abs=1e-6)
    int8 = report.variants["int8"]
    actual = TFLiteRunner((out / int8.file).read_bytes(), "serving_default")({"frames": frames})["output_0"]
    assert int8.extra_metrics["epe_px"] == pytest.approx(end_point_error(flow, 20.0 * actual), rel=1e-6)
    # The output grid is the int8 output tensor's own scale, in pixels, read from the file.
    (output,) = TFLiteRunner((out / int8.file).read_bytes(), "serving_default").outputs.values()
    assert int8.extra_metrics["output_grid_px"] == pytest.approx(20.0 * output["quantization"][0], rel=1e-4)
    # Rounding moves each flow vector by at most half a step per component, so the EPE by less than a
    # step either way (it can fall by chance).
    assert abs(int8.extra_metrics["rounding_floor_px"]) <= int8.extra_metrics["output_grid_px"]
    print(f"int8: EPE {int8.extra_metrics['epe_px']:.4f} px vs Keras {keras_epe:.4f} px, "
          f"{int8.extra_metrics['epe_to_keras_px']:.4f} px from Keras")
    markdown = (out / "report.md").read_text()
    assert "epe_increase_px" in markdown and "accuracy limits do not apply" in markdown


def test_cli_exports_the_dense_model_of_a_run(trained_like, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    trained_like.save(run / "model.keras")
    data = {"builder": "zoo.optical_flow.export:export_arrays",
            "kwargs": {"dataset": "synthetic_flow", "frame_size": list(FRAME_SIZE), "data_dir": None,
                       "num_calibration": 16, "num_eval": 16}}
    (run / "run.json").write_text(json.dumps({"task": "optical_flow", "preset": "flow_small", "data": data,
                                              "imports": ["perceiver_keras"]}))
    argv = [str(run), "--out", str(tmp_path / "out"), "--quantize", "float32,int8", "--latency-runs", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "int8: epe_to_keras_px" in printed
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["keras"]["num_eval"] == 16 and saved["variants"]["float32"]["max_abs_diff"] <= 1e-4
    runner = TFLiteRunner((tmp_path / "out" / "model_float32.tflite").read_bytes(), "serving_default")
    assert list(runner.inputs) == ["frames"]  # Dense: no output_indices input.
    assert list(runner.outputs["output_0"]["shape"][1:]) == [*FRAME_SIZE, 2]
