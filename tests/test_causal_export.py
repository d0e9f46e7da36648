"""Perceiver AR export: the SavedModel "generate" signature, the prefill/decode-step TFLite pair, and generation from it."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import export
from export.savedmodel import exact_mismatches
from export.tflite import op_histogram
from perceiver_keras import PerceiverAR
from zoo.language import generate
from zoo.language.causal_export import GENERATE_SIGNATURE, generate_function
from zoo.language.tflite_generation import TFLiteGenerator

pytestmark = pytest.mark.tensorflow_only

TOY = dict(max_sequence_length=24, num_latents=8, num_channels=32, num_heads=2, head_channels=16,
           rotary_channels=16, num_self_attention_layers=1, widening_factor=2, seed=0)
PROMPTS = [b"def", b"The for statement is", "caf\u00e9 and a prompt longer than the window".encode()]


def toy_model():
    """Weights scaled up from the initializer's, so that the argmax varies from byte to byte."""
    model = PerceiverAR(**TOY)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.weights])
    return model


def keras_greedy(model, prompt, max_new_bytes, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the long prompt's warning
        return generate(model, prompt, max_new_bytes, greedy=True, return_bytes=True, **kwargs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`python -m export RUN` of a causal language model run (run.json written by hand) on pydoc windows."""
    folder = tmp_path_factory.mktemp("causal")
    model = toy_model()
    run = folder / "run"
    run.mkdir()
    model.save(run / "model.keras")
    kwargs = dict(dataset="pydoc", sequence_length=24, num_latents=8, num_calibration=16, num_eval=16)
    (run / "run.json").write_text(json.dumps({
        "data": {"builder": "zoo.language.causal_export:export_arrays", "kwargs": kwargs},
        "imports": ["perceiver_keras"]}))
    report = export.export_run(run, folder / "out", quantizations=("float32",), latency_runs=3)
    return model, folder / "out", report


def test_the_run_export_writes_every_artifact_and_passes(exported):
    _, out, report = exported
    assert report.passed, report.failures
    names = {p.name for p in out.iterdir()}
    assert {"saved_model", "model_float32.tflite", "report.json", "report.md", "prefill_float32.tflite",
            "decode_step_float32.tflite", "prefill_int8.tflite", "decode_step_int8.tflite"} <= names
    assert not [name for name in names if name.startswith(".steps")]  # the scratch SavedModels are gone
    saved = json.loads((out / "report.json").read_text())
    checked = saved["saved_model"]["extra_signatures"][GENERATE_SIGNATURE]
    assert checked["exact_mismatches"] == {"continuation": 0} and not checked["failures"]
    assert checked["inputs"]["prompt"] == {"dtype": "string", "shape": None}
    assert "## Further artifacts" in (out / "report.md").read_text()


def test_the_pair_matches_keras_step_by_step(exported):
    _, out, _ = exported
    steps = json.loads((out / "report.json").read_text())["extra_artifacts"]["steps"]
    assert steps["num_steps"] == 7 and steps["passed"]
    float32, int8 = steps["variants"]["float32"], steps["variants"]["int8"]
    assert len(float32["steps"]) == 8 and float32["max_abs_diff"] <= 1e-4
    assert float32["prefill_top1_agreement"] == 1.0 and float32["decode_top1_agreement"] == 1.0
    assert all(step["max_abs_diff"] <= 1e-4 for step in float32["steps"])
    # int8 is reported, not held: finite, and the files are smaller.
    assert 0 < int8["max_abs_diff"] < 10 and len(int8["steps"]) == 8
    assert 0 <= int8["prefill_top1_agreement"] <= 1 and 0 <= int8["decode_top1_agreement"] <= 1
    assert int8["prefill_bytes"] < float32["prefill_bytes"] and int8["decode_step_bytes"] < float32["decode_step_bytes"]
    assert set(float32["latency_ms"]) == {"prefill", "decode_step"} and steps["keras_latency_ms"]["decode_step"] > 0


def test_the_int8_pair_is_fully_integer_and_runs_in_tflite_micro(exported):
    _, out, _ = exported
    int8 = json.loads((out / "report.json").read_text())["extra_artifacts"]["steps"]["variants"]["int8"]
    assert int8["float_ops"] == {"prefill": 0, "decode_step": 0}  # rotary angles and positions are table rows
    for name in ("prefill", "decode_step"):
        ops = op_histogram((out / f"{name}_int8.tflite").read_bytes())
        assert not {"COS", "SIN", "CAST", "SELECT"} & set(ops), ops  # SELECT (v1): TFLite Micro has no kernel
        reports = int8["accelerators"][name]
        assert reports["float_ops"]["count"] == 0
        assert reports["tflm"]["ok"], reports["tflm"]
        assert reports["tflm"]["arena_bytes"] > 0 and reports["tflm"]["max_diff_steps"] is not None
        u85 = reports["vela"]["ethos-u85-256"]
        # Wholly on the NPU: the position is a (1,) input (a scalar is "shapeless" to vela, whose readers
        # stayed on the CPU: EQUAL, LESS_EQUAL, SUB, RESHAPE).
        assert u85["ok"] and u85["cpu_ops"] == 0 and u85["npu_ops"] > 0, u85
    # A decode step is one more latent row of the same network: its int8 error stays that of the prefill's
    # rows (when its rotary angles were quantized to 256 steps over [0, L), it was several times larger).
    prefill_diff = int8["steps"][0]["max_abs_diff"]
    assert max(step["max_abs_diff"] for step in int8["steps"][1:]) <= 2 * prefill_diff, int8["steps"]


def test_the_pair_has_static_shapes_builtin_ops_and_named_caches(exported):
    model, out, _ = exported
    for quantization in ("float32", "int8"):
        generator = TFLiteGenerator(out / f"prefill_{quantization}.tflite", out / f"decode_step_{quantization}.tflite")
        assert generator.cache_shapes == model.cache_shapes(1)
        assert (generator.max_sequence_length, generator.num_latents) == (24, 8)
        for runner in (generator.prefill_runner, generator.decode_runner):
            assert all(-1 not in detail["shape_signature"] for detail in runner.inputs.values())
        inputs = generator.decode_runner.inputs
        assert {name: inputs[name]["dtype"] for name in ("token", "position", "token_ids")} == dict.fromkeys(
            ("token", "position", "token_ids"), np.int32)
        assert tuple(inputs["position"]["shape"]) == (1,)
        assert inputs["self_keys"]["dtype"] == (np.int8 if quantization == "int8" else np.float32)
        for name in ("prefill", "decode_step"):
            ops = op_histogram((out / f"{name}_{quantization}.tflite").read_bytes())
            assert ops and not [op for op in ops if op.startswith("CUSTOM") or op.startswith("Flex")]


def test_tflite_generation_equals_keras_generation(exported):
    model, out, _ = exported
    generator = TFLiteGenerator(out / "prefill_float32.tflite", out / "decode_step_float32.tflite")
    for prompt in PROMPTS:  # left-padded, filling the window (it slides after 4 bytes), cut from the left
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = generator.generate(prompt, 20, greedy=True, return_bytes=True)
        assert got == keras_greedy(model, prompt, 20) and len(got) == 20
    with pytest.warns(UserWarning, match="more than the model's window"):
        sampled = generator.generate(PROMPTS[2], 12, temperature=0.9, top_k=40, top_p=0.95, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sampled == generate(model, PROMPTS[2], 12, temperature=0.9, top_k=40, top_p=0.95, seed=3)
    int8 = TFLiteGenerator(out / "prefill_int8.tflite", out / "decode_step_int8.tflite")
    assert len(int8.generate(PROMPTS[1], 10, greedy=True, stride=2, return_bytes=True)) == 10


def test_a_cache_of_the_wrong_shape_is_refused_by_the_tflite_decode_step(exported):
    _, out, _ = exported
    generator = TFLiteGenerator(out / "prefill_float32.tflite", out / "decode_step_float32.tflite")
    _, cache = generator.prefill(np.full((1, 24), 7, np.int32))
    bad = dict(cache, self_keys=cache["self_keys"][..., :3])
    with pytest.raises(ValueError, match=r"cache\['self_keys'\] must have shape \(1, 1, 2, 8, 16\), the decode_step "
                                         r"file's input 'self_keys'. Received: cache\['self_keys'\].shape=\(1, 1, 2, 8, 3\)"):
        generator.decode_step(np.array([9]), 20, bad)
    with pytest.raises(ValueError, match="with keys"):
        generator.decode_step(np.array([9]), 20, {"token_ids": cache["token_ids"]})
    with pytest.raises(ValueError, match=r"`position` must lie in \[prefix_length=16, max_sequence_length=24\)"):
        generator.decode_step(np.array([9]), 24, cache)
    with pytest.raises(ValueError, match=r"token_ids of shape \(1, 24\)"):
        generator.prefill(np.full((1, 23), 7, np.int32))
    logits, _ = generator.decode_step(np.array([9]), 20, cache)  # a valid call still works after the refusals
    assert logits.shape == (1, 262)


def test_the_generate_signature_in_a_fresh_process(exported):
    model, out, _ = exported
    expected = [keras_greedy(model, prompt, 14) for prompt in PROMPTS]
    script = f"""
import json, sys, tensorflow as tf
loaded = tf.saved_model.load({str(out / "saved_model")!r})
generate = loaded.signatures["generate"]
args = dict(max_new_bytes=tf.constant(14), temperature=tf.constant(1.0), top_k=tf.constant(0),
            top_p=tf.constant(1.0), seed=tf.constant(0, tf.int64), greedy=tf.constant(True))
batch = generate(prompt=tf.constant({PROMPTS!r}), **args)["continuation"].numpy().tolist()
one = generate(prompt=tf.constant({PROMPTS[1]!r}), **args)["continuation"].numpy()
sampled = [generate(prompt=tf.constant("def"), **dict(args, greedy=tf.constant(False), seed=tf.constant(5, tf.int64),
                    temperature=tf.constant(0.8), top_k=tf.constant(30), top_p=tf.constant(0.9)))["continuation"].numpy()
           for _ in range(2)]
try:
    generate(prompt=tf.constant("def"), **dict(args, greedy=tf.constant(False), temperature=tf.constant(0.0)))
    error = ""
except tf.errors.InvalidArgumentError as caught:
    error = caught.message
print(json.dumps(dict(batch=[b.hex() for b in batch], one=one.hex(), same_seed=sampled[0] == sampled[1],
                      length=len(sampled[0]), error=error)))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = json.loads(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                                       env=env).stdout.strip().splitlines()[-1])
    assert [bytes.fromhex(b) for b in result["batch"]] == expected and bytes.fromhex(result["one"]) == expected[1]
    assert result["same_seed"] and result["length"] == 14
    assert "`temperature` must be > 0 (or pass greedy=True). Received: temperature=" in result["error"]
    cli = [str(Path(sys.executable).parent / "saved_model_cli"), "show", "--dir", str(out / "saved_model"),
           "--tag_set", "serve", "--signature_def", GENERATE_SIGNATURE]
    shown = subprocess.run(cli, check=True, capture_output=True, text=True, env=env).stdout
    for name in ("prompt", "max_new_bytes", "temperature", "top_k", "top_p", "seed", "greedy"):
        assert f"inputs['{name}']" in shown
    assert "outputs['continuation']" in shown and shown.count("DT_STRING") == 2


@pytest.mark.parametrize("argument, value, message", [
    ("max_new_bytes", -1, "`max_new_bytes` must be >= 0"), ("top_p", 1.5, r"`top_p` must lie in \(0, 1\]"),
    ("top_k", -2, "`top_k` must be >= 0"), ("prompt", "", "`prompt` must hold at least one byte"),
])
def test_the_generate_function_refuses_bad_arguments(argument, value, message):
    import tensorflow as tf

    function = generate_function(PerceiverAR(**TOY))
    args = dict(prompt="ab", max_new_bytes=2, temperature=1.0, top_k=0, top_p=1.0, seed=np.int64(0), greedy=False)
    args[argument] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(**{name: tf.constant(v) for name, v in args.items()})


def test_exact_mismatches_count_differing_strings_and_ignore_floats():
    expected = {"continuation": np.array([b"ab", b"cd"], object), "logits": np.zeros(3, np.float32)}
    assert exact_mismatches(expected, {"continuation": np.array([b"ab", b"cx"], object), "logits": np.ones(3)}) == {
        "continuation": 1}
    assert exact_mismatches(expected, {"continuation": np.array([b"ab"], object), "logits": np.ones(3)}) == {
        "continuation": 2}
