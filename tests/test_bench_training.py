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
