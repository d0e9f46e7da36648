"""Smoke test of the training benchmark on the toy model: every engine trains and gets a row.

No timing thresholds: on a shared two-core machine they would only measure the neighbours.
"""

import pytest

from benchmarks import training


def _rows(page: str) -> dict[str, list[str]]:
    """The results table's rows, keyed by engine, as lists of the other cells."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| engine |"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_rejects_bad_steps(tmp_path):
    with pytest.raises(ValueError, match="steps=0"):
        training.run(tmp_path, steps=0)


@pytest.mark.slow
def test_toy_run_writes_page(tmp_path):
    page_path = training.run(tmp_path, toy=True)
    assert page_path == tmp_path / "training.md"
    rows = _rows(page_path.read_text())
    assert sorted(rows) == sorted(training.ENGINES)
    for engine, cells in rows.items():
        assert float(cells[0]) > 0, (engine, cells)  # a failed engine shows "error: ..." here
