"""The Perceiver AR scaling benchmark runs end to end on toy sizes and writes a page with both models."""

import json

import pytest

from benchmarks import ar_scaling

pytestmark = pytest.mark.tensorflow_only


def test_toy_sweep_writes_both_models_and_their_ratios(tmp_path, monkeypatch):
    monkeypatch.setattr(ar_scaling, "TOY", ar_scaling.Sweep((64, 128), ar_scaling.TOY.shape, 1))
    page = ar_scaling.run(tmp_path, toy=True, command="test")
    text = page.read_text()
    assert "Incomplete" not in text and "## perceiver_ar" in text and "## transformer" in text
    results = json.loads((tmp_path / "ar_scaling.json").read_text())["results"]
    for model in ar_scaling.MODELS:
        for point in results[model].values():
            assert point["train_step_s"] > 0 and point["decode_s"] > 0 and point["cache_mib"] > 0
    # The Transformer's cache holds every position in every layer; Perceiver AR's self-attention caches N only.
    assert results["transformer"]["128"]["cache_mib"] > results["perceiver_ar"]["128"]["cache_mib"]
    assert "| 128 |" in text.split("## Transformer / Perceiver AR")[1]
    assert "load average" in text and "Growth exponent" in text
    page.write_text("")
    undated = [line for line in text.splitlines() if not line.startswith("- Date:")]
    rendered = ar_scaling.render(tmp_path, command="test").read_text()  # the page again, from the JSON alone
    assert [line for line in rendered.splitlines() if not line.startswith("- Date:")] == undated


def test_points_predicted_beyond_the_memory_limit_are_not_run():
    shape = ar_scaling.FULL.shape
    assert ar_scaling.predicted_training_gib("transformer", shape, 65536) > ar_scaling.TRAINING_LIMIT_GIB
    assert ar_scaling.predicted_training_gib("perceiver_ar", shape, 65536) < ar_scaling.TRAINING_LIMIT_GIB
    assert "not run" in ar_scaling._point("transformer", ar_scaling.FULL, 65536)["error"]
