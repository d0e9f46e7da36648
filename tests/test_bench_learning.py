"""Smoke test of the learning-parity benchmark on a tiny budget: both frameworks train, every figure
is finite, the page, plot and JSON are written, and the two models have equal parameter counts.
"""

import json
import math

import pytest

from bench_tables import markdown_rows  # tests/ is on sys.path (rootdir-relative imports)

from benchmarks import learning, learning_report


def test_rejects_eval_interval_not_dividing_steps(tmp_path):
    with pytest.raises(ValueError, match="eval_every=3"):
        learning.run(tmp_path, steps=5, eval_every=3)


def test_schedule_and_batches():
    rates = [learning.warmup_cosine(step, 1e-3, total_steps=10, warmup_steps=2) for step in range(10)]
    assert rates[0] == pytest.approx(5e-4) and rates[1] == pytest.approx(1e-3) and rates[2] == pytest.approx(1e-3)
    assert rates[-1] < rates[5] < rates[2]
    batches = learning.batch_indices(seed=0, num_examples=10, batch_size=4, steps=5)
    assert batches.shape == (5, 4)
    assert sorted(batches.ravel()[:10]) == list(range(10))  # The first epoch is a permutation.


@pytest.mark.slow
@pytest.mark.reference
def test_tiny_run_writes_page_plot_and_json(tmp_path):
    page_path = learning.run(tmp_path, steps=4, seeds=(0,), batch_size=8, eval_every=2, threads=1)
    results = json.loads((tmp_path / "learning.json").read_text())
    assert (tmp_path / "learning.png").stat().st_size > 10_000
    check = results["check"]
    assert check["parameters"]["torch"] == check["parameters"]["keras"]
    assert check["no_decay_parameters"]["torch"] == check["no_decay_parameters"]["keras"]
    assert check["forward_max_abs_diff"] < 1e-4 and check["three_steps_tiny_epsilon_max_abs_diff"] < 1e-4
    for framework in ("torch", "keras"):
        run = results["runs"][framework]["0"]
        assert "error" not in run, run
        assert run["parameters"] == check["parameters"]["torch"]
        assert run["active_dropout_layers"] == 0
        assert run["curves"]["eval_steps"] == [0, 2, 4] and run["curves"]["train_steps"] == [2, 4]
        for key in ("final_test_accuracy", "final_test_loss", "final_train_loss", "median_step_s"):
            assert math.isfinite(run[key]), (framework, key, run[key])
    rows = markdown_rows(page_path.read_text(), "| framework |")
    assert sorted(rows) == sorted(learning_report.FRAMEWORKS.values())
    for cells in rows.values():
        assert cells[0] == "1" and math.isfinite(float(cells[1].split(" ± ")[0]))
