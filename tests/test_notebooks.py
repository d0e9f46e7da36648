"""The notebooks are stored executed at full budget (`make notebooks`) and run headless here on a small one."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.tensorflow_only, pytest.mark.slow]

FOLDER = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
BUDGETS = {
    "01_quickstart.ipynb": {"QUICKSTART_EPOCHS": "1"},
    "02_anatomy.ipynb": {"ANATOMY_EPOCHS": "2", "ANATOMY_MAX_INPUTS": "2048"},
    "03_language.ipynb": {"LANGUAGE_MLM_EPOCHS": "2", "LANGUAGE_MLM_STEPS_PER_EPOCH": "10",
                          "LANGUAGE_CLASSIFIER_EPOCHS": "1", "LANGUAGE_CLASSIFIER_EXAMPLES": "256",
                          "LANGUAGE_EVAL_EXAMPLES": "256"},
    "04_optical_flow.ipynb": {"FLOW_EPOCHS": "1", "FLOW_STEPS_PER_EPOCH": "3", "FLOW_EVAL_PAIRS": "16"},
    "05_multimodal.ipynb": {"MULTIMODAL_EPOCHS": "1", "MULTIMODAL_STEPS_PER_EPOCH": "3", "MULTIMODAL_EVAL_CLIPS": "16"},
    "06_edge_export.ipynb": {"EDGE_EPOCHS": "1", "EDGE_LATENCY_RUNS": "3"},
    "07_tuning.ipynb": {"TUNING_TRIALS": "2", "TUNING_EPOCHS": "1", "TUNING_TAKE": "128", "TUNING_QUANTIZE": "float32",
                        "TUNING_LATENCY_RUNS": "0"},
    "08_fine_tuning.ipynb": {"FINETUNE_SOURCE_EPOCHS": "1", "FINETUNE_STEPS": "4", "FINETUNE_EVAL_EVERY": "4",
                             "FINETUNE_SEEDS": "1", "FINETUNE_LATENCY_RUNS": "0"},
    "09_perceiver_ar.ipynb": {"PERCEIVER_AR_STEPS": "4", "PERCEIVER_AR_BATCH_SIZE": "2", "PERCEIVER_AR_NEW_BYTES": "8",
                              "PERCEIVER_AR_LATENCY_RUNS": "2"},
}
# On a small budget, tracing a model's train and test steps into graphs (10-20 s a model on two shared
# cores) can cost more than running its few steps eagerly: these notebooks fit their models for a few
# steps each, so their copy here runs tf.functions eagerly (CPU seconds, graph -> eager: 03 67 -> 54,
# 04 39 -> 26, 07 66 -> 39 wall, 08 108 -> 66; 01, 02 and 06, which fit whole epochs, get slower). The
# stored outputs come from graph execution (`make notebooks`), and the suite's own tests fit graphs.
EAGER = {"03_language.ipynb", "04_optical_flow.ipynb", "05_multimodal.ipynb", "07_tuning.ipynb", "08_fine_tuning.ipynb"}
EAGER_CELL = "import tensorflow as tf\ntf.config.run_functions_eagerly(True)  # tests/test_notebooks.py: no tracing"


def _executor():
    spec = importlib.util.spec_from_file_location("execute", FOLDER / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_executed(path):
    """Outputs in git, from the notebook's current code, run top to bottom at full budget, with figures."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    rerun = f"re-execute it: python notebooks/execute.py notebooks/{path.name} (or make notebooks)"
    execution = notebook.metadata.get("execution", {})
    assert execution.get("budget") == "full", f"not stored executed at full budget; {rerun}"
    assert execution.get("code_sha256") == _executor().code_sha256(notebook), f"code changed since its outputs; {rerun}"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), f"not run top to bottom; {rerun}"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), "no figure stored"
    assert path.stat().st_size < 2_000_000, "stored outputs too large: print less, or smaller figures"
    assert BUDGETS.get(path.name), f"give {path.name} a small budget in BUDGETS"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_a_small_budget(path, monkeypatch, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    for name, value in BUDGETS.get(path.name, {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if path.name in EAGER:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(EAGER_CELL))
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors
