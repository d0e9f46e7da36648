"""The notebooks run headless, top to bottom, on a small budget; outputs stay out of git."""

from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.tensorflow_only, pytest.mark.slow]

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
BUDGETS = {"01_quickstart.ipynb": {"QUICKSTART_EPOCHS": "1"}}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stripped_and_runs(path, monkeypatch, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code), "outputs in git"
    for name, value in BUDGETS.get(path.name, {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors
