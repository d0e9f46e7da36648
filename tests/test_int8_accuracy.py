"""int8 files get the activation ranges their tensors really take (export.calibration)."""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from export.accelerators import float_ops
from export.calibration import observed_ranges
from export.signature import signature_of
from export.savedmodel import write_saved_model
from export.tflite import convert
from perceiver_keras import integer_friendly
from perceiver_keras.normalization import LayerNorm

SIGNATURE = "serving_default"


@pytest.fixture(scope="module")
def layer_norm_block(tmp_path_factory):
    """Dense -> LayerNorm -> Dense, traced for integer export; its float32 file; calibration samples."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 24), batch_size=1, name="x")
    hidden = keras.layers.Dense(24, name="dense_in")(inputs)
    outputs = keras.layers.Dense(8, name="dense_out")(LayerNorm(epsilon=1e-5, name="norm")(hidden))
    model = keras.Model(inputs, outputs)
    # Rows of very different spread: rsqrt(var + eps) * gamma takes values far from the normalised output's.
    samples = np.random.default_rng(0).normal(size=(32, 16, 24)).astype("float32")
    samples *= np.geomspace(1.0, 2.0, 16)[None, :, None].astype("float32")
    path = tmp_path_factory.mktemp("block") / "saved_model"
    with integer_friendly():
        write_saved_model(model, signature_of(model), path, SIGNATURE)

    def dataset():
        for sample in samples:
            yield {"x": sample[None]}

    return model, path, samples, dataset


def _tensors(flatbuffer, sample):
    """Every activation tensor after one run: name -> (values as floats, int8 scale or None)."""
    interpreter = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True)
    runner = interpreter.get_signature_runner(SIGNATURE)
    (detail,) = runner.get_input_details().values()
    scale, zero_point = detail["quantization"]
    feed = sample if not scale else np.clip(np.round(sample / scale + zero_point), -128, 127)
    runner(x=feed.astype(detail["dtype"]))
    found = {}
    for tensor in interpreter.get_tensor_details():
        try:
            value = interpreter.get_tensor(tensor["index"])
        except ValueError:
            continue
        scale = tensor["quantization"][0] or None
        found[tensor["name"]] = (value, scale)
    return found


def test_int8_ranges_cover_what_each_tensor_takes(layer_norm_block):
    model, path, samples, dataset = layer_norm_block
    int8 = convert(path, SIGNATURE, "int8", dataset)
    assert float_ops(int8)["count"] == 0
    reference = {}
    for sample in samples:
        for name, (value, _) in _tensors(convert(path, SIGNATURE, "float32"), sample[None]).items():
            if value.dtype == np.float32:
                low, high = reference.get(name, (0.0, 0.0))
                reference[name] = (min(low, float(value.min())), max(high, float(value.max())))
    checked = 0
    for name, (value, scale) in _tensors(int8, samples[:1]).items():
        if scale is None or value.dtype != np.int8 or name not in reference:
            continue
        low, high = reference[name]
        # 256 steps span the tensor's own range (plus zero), not a neighbour's several times wider one.
        assert scale * 255 <= 1.05 * (high - low) + 1e-6, (name, scale * 255, (low, high))
        checked += 1
    assert checked >= 5  # the LayerNorm's SUB, MUL, MEAN, RSQRT and scale products at least
    runner = Interpreter(model_content=int8).get_signature_runner(SIGNATURE)
    details = runner.get_input_details()["x"], next(iter(runner.get_output_details().values()))
    errors = []
    for sample in samples[:8]:
        (in_scale, in_zero), (out_scale, out_zero) = details[0]["quantization"], details[1]["quantization"]
        feed = np.clip(np.round(sample[None] / in_scale + in_zero), -128, 127).astype(np.int8)
        actual = (next(iter(runner(x=feed).values())).astype(np.float32) - out_zero) * out_scale
        expected = np.asarray(model(sample[None]))
        errors.append(np.sqrt(np.mean((actual - expected) ** 2) / np.mean(expected ** 2)))
    assert np.mean(errors) < 0.05, errors


def test_observed_ranges_replace_the_logged_ones(layer_norm_block):
    _, path, samples, dataset = layer_norm_block
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(path), signature_keys=[SIGNATURE])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    corrected, _ = observed_ranges(calibrated, SIGNATURE, dataset)
    again, count = observed_ranges(corrected, SIGNATURE, dataset)
    assert count == 0 and again == corrected  # a fixed point: every range is the observed one
    from ai_edge_litert.tools import flatbuffer_utils

    tensors = flatbuffer_utils.read_model_from_bytearray(bytearray(corrected)).subgraphs[0].tensors
    ranges = {t.name.decode(): (float(t.quantization.min[0]), float(t.quantization.max[0])) for t in tensors
              if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min)}
    rsqrt = next(v for k, v in ranges.items() if "norm" in k and k.endswith("/Rsqrt"))
    scale = next(v for k, v in ranges.items() if "norm" in k and k.endswith("/mul_1"))  # rsqrt * gamma (ones)
    # TensorFlow's calibrator logged rsqrt * gamma with the normalised output's range (about -3..3).
    assert 0 < rsqrt[0] < rsqrt[1] < 10 and scale == pytest.approx(rsqrt, rel=1e-5)
