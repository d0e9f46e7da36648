"""Smoke test of the inference benchmark on the toy model: it runs, and every engine computes the reference's function.

No timing thresholds: on a shared two-core machine they would only measure the neighbours.
"""

import json

import pytest

from benchmarks.__main__ import main


def test_rejects_bad_repeats(capsys):
    with pytest.raises(SystemExit):
        main(["inference", "--repeats", "0"])
    assert "Received: --warmup 2 --repeats 0" in capsys.readouterr().err


@pytest.mark.slow
def test_toy_inference_run_matches_the_reference(tmp_path):
    engines = ["keras-tf", "tflite-float32"]
    assert main(["inference", "--toy", "--out", str(tmp_path), "--engines", *engines, "--batch-sizes", "2",
                 "--warmup", "1", "--repeats", "1"]) == 0
    results = json.loads((tmp_path / "inference.json").read_text())
    runs = results["models"]["toy_fourier"]["runs"]
    assert sorted((r["engine"], r["batch_size"]) for r in runs) == sorted(
        (e, 2) for e in ["torch", *engines, "torch-again"])
    for run in runs:
        assert "error" not in run, run
        assert run["median_s"] > 0 and run["peak_rss_mib"] > 0
        if not run["engine"].startswith("torch"):  # same weights and inputs as transformers' model
            assert run["max_abs_diff"] < 1e-4 and run["top1_agreement"] == 1.0, run
    page = (tmp_path / "inference.md").read_text()
    assert page.count("| toy_fourier |") == len(runs)
