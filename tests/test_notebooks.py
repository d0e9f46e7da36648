"""The notebooks run headless, top to bottom, on a small budget; outputs stay out of git."""

from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.tensorflow_only, pytest.mark.slow]

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
BUDGETS = {
    "01_quickstart.ipynb": {"QUICKSTART_EPOCHS": "1"},
    "02_anatomy.ipynb": {"ANATOMY_EPOCHS": "2", "ANATOMY_MAX_INPUTS": "4096"},
    "03_language.ipynb": {"LANGUAGE_MLM_EPOCHS": "2", "LANGUAGE_MLM_STEPS_PER_EPOCH": "10",
                          "LANGUAGE_CLASSIFIER_EPOCHS": "1", "LANGUAGE_CLASSIFIER_EXAMPLES": "256",
                          "LANGUAGE_EVAL_EXAMPLES": "256"},
    "04_optical_flow.ipynb": {"FLOW_EPOCHS": "1", "FLOW_STEPS_PER_EPOCH": "3", "FLOW_EVAL_PAIRS": "16"},
    "05_multimodal.ipynb": {"MULTIMODAL_EPOCHS": "1", "MULTIMODAL_STEPS_PER_EPOCH": "3", "MULTIMODAL_EVAL_CLIPS": "16"},
    "06_edge_export.ipynb": {"EDGE_EPOCHS": "1", "EDGE_LATENCY_RUNS": "3"},
    "07_tuning.ipynb": {"TUNING_TRIALS": "2", "TUNING_EPOCHS": "1", "TUNING_TAKE": "128", "TUNING_QUANTIZE": "float32",
                        "TUNING_LATENCY_RUNS": "0"},
}


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
