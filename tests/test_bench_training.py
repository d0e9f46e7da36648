"""Smoke test of the training benchmark on the toy model: every engine trains and gets a row.

No timing thresholds: on a shared two-core machine they would only measure the neighbours.
"""

import pytest

from bench_tables import markdown_rows  # tests/ is on sys.path (rootdir-relative imports)

from benchmarks import training


def test_rejects_bad_steps(tmp_path):
    with pytest.raises(ValueError, match="steps=0"):
        training.run(tmp_path, steps=0)


@pytest.mark.slow
def test_toy_run_writes_page(tmp_path):
    page_path = training.run(tmp_path, toy=True)
    assert page_path == tmp_path / "training.md"
    rows = markdown_rows(page_path.read_text(), "| engine |")
    assert sorted(rows) == sorted(training.ENGINES)
    for engine, cells in rows.items():
        assert float(cells[0]) > 0, (engine, cells)  # a failed engine shows "error: ..." here
        step_gflops, forward, backward, optimizer = (float(cell) for cell in cells[3:7])
        assert step_gflops > 0 and forward > 0 and optimizer > 0, (engine, cells)
        assert backward == backward, (engine, cells)  # a number (a difference of medians: may be tiny)
    assert "Matmul peak measured in this run" in page_path.read_text()


def test_an_interrupted_run_keeps_the_engines_it_measured(tmp_path, monkeypatch):
    """Ctrl-C during the third engine: the page holds the first two, marked incomplete."""
    done = []

    def worker(job, timeout_s=3600, **kwargs):
        if job["run"].endswith("matmul_peak_job"):
            return {"torch": 100.0, "tensorflow": 90.0}
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append("torch" if job["run"].endswith("torch_job") else
                    next(e for e, (policy, jit) in training.KERAS_ENGINES.items()
                         if (policy, jit) == (job["dtype_policy"], job["jit_compile"])))
        return {"median_s": 0.5, "process_peak_rss_mib": 100.0, "mean_loss": 1.0, "first_step_s": 1.0,
                "dtype_policy": "float32", "loss_scale": None, "parameters": 10, "active_dropout_layers": 0}

    monkeypatch.setattr(training.harness, "run_worker", worker)
    monkeypatch.setattr(training.models, "save_reference", lambda spec, folder: None)
    with pytest.raises(KeyboardInterrupt):
        training.run(tmp_path, toy=True)
    page = (tmp_path / "training.md").read_text()
    assert page.startswith(f"**Incomplete: 2 of {len(training.ENGINES)} engines measured so far.**")
    assert sorted(markdown_rows(page, "| engine |")) == sorted(done) == sorted(training.ENGINES[:2])
