"""zoo/multimodal/export.py: full model + encode/decode signatures, a TFLite encoder and chunked decoder."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.cli import main
from export.tflite import op_histogram
from export.verify import TFLiteRunner
from zoo.multimodal import build_multimodal_autoencoder, reconstruct
from zoo.multimodal.export import (chunk_plan, export_arrays, export_multimodal_model, full_model,
                                   tflite_reconstruct)

pytestmark = pytest.mark.tensorflow_only

TOY = dict(num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, image_num_bands=2, audio_num_bands=3,
           label_query_channels=6, num_latents=4, num_latent_channels=16, num_self_attention_layers_per_block=1,
           num_self_attention_heads=2, decoder_output_channels=8, label_mask_probability=0.5)
CHUNK = 48  # 128 pixels -> 3 calls of 48 (the last padded with 16 repeats of pixel 0), 4 audio patches -> 2 a call


@pytest.fixture(scope="module")
def trained_like():
    """As a run saves it: subsampled decoding, the label masked half of the time."""
    keras.utils.set_random_seed(0)
    model = build_multimodal_autoencoder(**TOY, use_output_indices=True)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    return model


@pytest.fixture(scope="module")
def arrays():
    return export_arrays("synthetic_audiovisual", 2, [8, 8], 64, 5, num_calibration=8, num_eval=8, chunk_size=CHUNK)


@pytest.fixture(scope="module")
def exported(trained_like, arrays, tmp_path_factory):
    out = tmp_path_factory.mktemp("multimodal") / "export"
    report, chunked = export_multimodal_model(trained_like, out, inputs=arrays["eval"],
                                              calibration_inputs=arrays["calibration"], chunk_size=CHUNK,
                                              latency_runs=0,
                                              quantizations=("float32", "int8"))
    return out, report, chunked


def test_full_model_masks_the_label_and_keeps_the_weights(trained_like, arrays):
    dense = full_model(trained_like)
    assert sorted(dense.input) == ["audio", "image", "label"] and dense.preprocessor.mask_probabilities["label"] == 1.0
    x = arrays["eval"]
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in dense(x).items()}
    assert outputs["image"].shape == (8, 2, 8, 8, 3) and outputs["audio"].shape == (8, 64, 1)
    other = {**x, "label": np.roll(x["label"], 1, axis=0)}  # the label input is ignored: classification
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dense(other)["label"]), outputs["label"], atol=1e-6)
    kept = full_model(trained_like, mask_label=False)
    assert kept.preprocessor.mask_probabilities["label"] == 0.5 and not kept.subsampled_modalities
    plan = chunk_plan(dense, CHUNK)
    assert {k: v.shape for k, v in plan.items()} == {"audio": (3, 2), "image": (3, 48)}
    assert plan["image"][-1, -16:].tolist() == [0] * 16 and plan["audio"][-1].tolist() == [0, 0]


def test_saved_model_serves_full_outputs_encode_and_decode(exported, trained_like, arrays):
    out, report, _ = exported
    assert report.saved_model["passed"] and set(report.saved_model["extra_signatures"]) == {"encode", "decode"}
    loaded = tf.saved_model.load(str(out / "saved_model"))
    x = {k: tf.constant(v[:3]) for k, v in arrays["eval"].items()}
    full = {k: v.numpy() for k, v in loaded.signatures["serving_default"](**x).items()}
    latents = loaded.signatures["encode"](**x)["latents"]
    assert tuple(latents.shape) == (3, 4, 16)
    pixels = tf.constant([[5, 127, 64]] * 3, tf.int32)  # any points, any count
    decoded = loaded.signatures["decode"](latents=latents, image_indices=pixels, audio_indices=tf.constant([[3]] * 3))
    np.testing.assert_allclose(decoded["image"].numpy(), full["image"].reshape(3, 128, 3)[:, [5, 127, 64]], atol=1e-5)
    np.testing.assert_allclose(decoded["audio"].numpy(), full["audio"].reshape(3, 4, 16)[:, [3]], atol=1e-5)
    np.testing.assert_allclose(decoded["label"].numpy(), full["label"], atol=1e-5)


def test_full_model_tflite_is_builtin_and_matches_keras_with_reconstruction_metrics(exported):
    out, report, _ = exported
    float32 = report.variants["float32"]
    assert float32.max_abs_diff <= 1e-4 and float32.passed
    for variant in report.variants.values():
        assert not [op for op in variant.ops if op.startswith(("CUSTOM", "Flex"))], variant.ops
        assert {"image_psnr", "audio_psnr", "keras_image_psnr", "label_accuracy", "label_top1_agreement"} <= set(
            variant.extra_metrics)
    assert float32.extra_metrics["image_psnr"] == pytest.approx(float32.extra_metrics["keras_image_psnr"], abs=1e-3)
    assert json.loads((out / "report.json").read_text())["keras"]["regression"] is True


def test_chunked_encoder_and_decoder_match_keras(exported, trained_like, arrays):
    out, _, chunked = exported
    saved = json.loads((out / "chunked_report.json").read_text())
    assert saved["passed"] and saved["chunk_points"] == {"audio": 2, "image": 48} and saved["num_chunks"] == 3
    float32 = chunked.variants["float32"]
    for what in ("encoder_max_abs_diff", "decoder_max_abs_diff", "reconstruction_max_abs_diff"):
        assert float32[what] <= 1e-4, (what, float32[what])
    print({k: float32[k] for k in ("encoder_max_abs_diff", "decoder_max_abs_diff", "reconstruction_max_abs_diff")})
    encoder = TFLiteRunner((out / "encoder_float32.tflite").read_bytes(), "encode")
    decoder = TFLiteRunner((out / "decoder_float32.tflite").read_bytes(), "decode")
    queries = np.load(out / "decoder_queries.npy")
    assert queries.shape[:2] == (3, 2 + 48 + 1)  # per chunk: audio patches, pixels, the label
    assert {k: list(v["shape"]) for k, v in decoder.inputs.items()} == {
        "latents": [1, 4, 16], "queries": [1, *queries.shape[1:]]}
    assert not {"GATHER", "FLOOR_DIV", "FLOOR_MOD", "SELECT", "SELECT_V2"} & set(
        op_histogram((out / "decoder_float32.tflite").read_bytes()))  # no index arithmetic left in the file
    assert list(encoder.inputs["image"]["shape"]) == [1, 2, 8, 8, 3]
    for name in ("encoder_float32.tflite", "decoder_float32.tflite"):
        assert not [op for op in op_histogram((out / name).read_bytes()) if op.startswith("CUSTOM")]
    dense = full_model(trained_like)
    x = {k: v[:3] for k, v in arrays["eval"].items()}
    actual = tflite_reconstruct(encoder, decoder, x, queries, dense.postprocessor.output_shapes)
    expected = reconstruct(dense, x, chunk_size=CHUNK)
    for key in expected:
        assert actual[key].shape == expected[key].shape
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-4)


def test_cli_exports_a_run_with_its_chunked_pair(trained_like, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    trained_like.save(run / "model.keras")
    data = {"builder": "zoo.multimodal.export:export_arrays",
            "kwargs": {"dataset": "synthetic_audiovisual", "num_frames": 2, "frame_size": [8, 8],
                       "num_audio_samples": 64, "num_classes": 5, "data_dir": None, "num_calibration": 4,
                       "num_eval": 4, "chunk_size": 64}}
    (run / "run.json").write_text(json.dumps({"task": "multimodal_autoencoding", "preset": "multimodal_small",
                                              "data": data, "imports": ["perceiver_keras"]}))
    argv = [str(run), "--out", str(tmp_path / "out"), "--quantize", "float32", "--latency-runs", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "chunked TFLite" in printed and "float32: encoder" in printed
    assert (tmp_path / "out" / "decoder_float32.tflite").is_file()
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["variants"]["float32"]["max_abs_diff"] <= 1e-4
    assert set(saved["saved_model"]["extra_signatures"]) == {"encode", "decode"}
