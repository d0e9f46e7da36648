"""The XNNPACK operator probe behind the edge page's integer-against-float table."""

import pytest

from benchmarks import xnnpack_ops

pytestmark = pytest.mark.tensorflow_only


def test_probe_tells_delegated_operators_from_litert_kernels():
    ops = xnnpack_ops._ops()
    for name in ("FULLY_CONNECTED", "SOFTMAX"):
        fn, shapes, value_range = ops[name]
        float32 = xnnpack_ops.measure(xnnpack_ops.convert(fn, shapes, value_range, "float32"), runs=3)
        assert float32["delegated"] and float32["median_us"] > 0, float32
        int8 = xnnpack_ops.measure(xnnpack_ops.convert(fn, shapes, value_range, "int8"), runs=3)
        assert int8["ops"] and set(int8["ops"]) <= {name.split()[0], "QUANTIZE", "DEQUANTIZE"}, int8
    # LiteRT 2.3's XNNPACK takes int8 FULLY_CONNECTED but not int8 SOFTMAX: the probe must see both.
    fn, shapes, value_range = ops["FULLY_CONNECTED"]
    assert xnnpack_ops.measure(xnnpack_ops.convert(fn, shapes, value_range, "int8"), runs=1)["delegated"]
    fn, shapes, value_range = ops["SOFTMAX"]
    assert not xnnpack_ops.measure(xnnpack_ops.convert(fn, shapes, value_range, "int8"), runs=1)["delegated"]


def test_rows_name_each_type_and_the_int8_ratio():
    results = {"SOFTMAX": {"float32": {"delegated": True, "ops": ["SOFTMAX"], "median_us": 2.0},
                           "int8": {"delegated": False, "ops": ["SOFTMAX"], "median_us": 30.0},
                           "int16x8": {"error": "no kernel"}}}
    (row,) = xnnpack_ops.table_rows(results)
    assert row == ["SOFTMAX", "XNNPACK, 2.0 µs", "LiteRT kernel, 30.0 µs", "failed: no kernel", 15.0]
