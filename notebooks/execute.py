"""Executes notebooks top to bottom and stores them with their outputs (`make notebooks`).

    python notebooks/execute.py                          # every notebook, full budget, in place
    python notebooks/execute.py notebooks/08_fine_tuning.ipynb --set FINETUNE_STEPS=20 --output-dir /tmp/nb

Each notebook runs in a fresh kernel, one at a time, in a temporary working folder, with the
notebooks' budget variables (`tests/test_notebooks.py` sets them small) removed from the environment
unless given with `--set`, so the stored outputs are those of the full budget. Figures are stored as
PNG. TensorFlow's start-up lines and a few known warnings that say nothing about the notebook are
dropped from the stored outputs (`NOISE`); anything else written to stderr stays. The notebook's
metadata records the budget, the seconds it took and the SHA-256 of its code cells, which
`tests/test_notebooks.py` compares with the code, so outputs of older code are caught. The notebook is
written to a temporary file and renamed, so an interrupted run leaves the stored notebook as it was;
a cell that raises stops the run with the error, and nothing is written for that notebook.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from export.console import is_startup_noise  # noqa: E402

BUDGET_VARIABLE = re.compile(r"^(QUICKSTART|ANATOMY|LANGUAGE|FLOW|MULTIMODAL|EDGE|TUNING|FINETUNE|PERCEIVER_AR)_[A-Z_]+$")
"""The environment variables the notebooks read their budget from."""

NOISE = re.compile("|".join([
    r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",  # LiteRT, on every interpreter
    r"fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+",  # converter
    r"INFO:tensorflow:Assets written to: .*",  # tf.saved_model.save, into temporary folders
    r"E\d{4} .*oneDNN supports DT_INT64 only on platforms with AVX-512\..*",  # TensorFlow on this CPU
    # Keras 3.15 on every `fit` of a tf.data pipeline, shuffled in the pipeline or not (two lines):
    r".*UserWarning: `shuffle=True` was passed, but will be ignored since the data `x` was provided as a tf\.data.*",
    r"\s*self\.data_adapter = data_adapters\.get_data_adapter\(",
    # tqdm (imported by keras-hub) without ipywidgets; the notebooks draw no progress bars:
    r".*TqdmWarning: IProgress not found\..*",
    r"\s*from \.autonotebook import tqdm as notebook_tqdm",
]))
"""Known output lines that tell a reader nothing about the notebook; dropped from stdout and stderr."""


def code_sha256(notebook: nbformat.NotebookNode) -> str:
    """SHA-256 of the notebook's code cells: stored outputs are stale when the code they came from changed."""
    code = "\n\0".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


LARGE_FIGURE = 100_000
"""PNG figures above this many bytes (photos, colour-coded flow) are stored with a 256-colour palette."""


def compact_png(data: str) -> str:
    """A base64 PNG with 256 dithered colours when that is at least a quarter smaller; else `data` as it is.

    Figures of photos and flow fields hold many colours and compress badly; dithered to an adaptive
    palette they look the same at a third of the size. Plots with few colours are left alone.
    """
    from PIL import Image

    raw = base64.b64decode(data)
    if len(raw) <= LARGE_FIGURE:
        return data
    image = Image.open(io.BytesIO(raw))
    if image.mode in ("RGBA", "LA"):
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    image = image.convert("RGB")
    palette = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(buffer, "PNG", optimize=True)
    smaller = buffer.getvalue()
    return base64.b64encode(smaller).decode() if len(smaller) < 0.75 * len(raw) else data


def clean_outputs(notebook: nbformat.NotebookNode) -> None:
    """Drops `NOISE` lines (and on stderr TensorFlow's start-up lines) and cell timing metadata, joins
    consecutive stream outputs, and stores large figures compactly (`compact_png`)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        outputs = []
        for output in cell.outputs:
            if output.output_type == "stream":
                lines = [line for line in output.text.splitlines(keepends=True)
                         if not NOISE.fullmatch(line.rstrip("\n"))
                         and not (output.name == "stderr" and is_startup_noise(line))]
                if not "".join(lines).strip():
                    continue
                output.text = "".join(lines)
                previous = outputs[-1] if outputs else None
                if previous is not None and previous.output_type == "stream" and previous.name == output.name:
                    previous.text += output.text
                    continue
            elif "image/png" in output.get("data", {}):
                output.data["image/png"] = compact_png(output.data["image/png"])
            outputs.append(output)
        cell.outputs = outputs


def execute(path: Path, output_dir: Path | None, budget: dict[str, str], timeout: int) -> float:
    """Runs the notebook at `path` and writes it, with outputs, in place or into `output_dir`; returns seconds."""
    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    try:
        for name in [name for name in os.environ if BUDGET_VARIABLE.match(name)]:
            del os.environ[name]
        os.environ.update(budget)
        os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend stores the figures
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="notebook_") as folder:
            NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": folder}}).execute()
        seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    clean_outputs(notebook)
    notebook.metadata["execution"] = {"budget": budget or "full", "seconds": round(seconds),
                                      "code_sha256": code_sha256(notebook)}
    target = (output_dir or path.parent) / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    nbformat.write(notebook, partial)
    os.replace(partial, target)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a budget variable, e.g. FINETUNE_STEPS=20 (default: the notebooks' full budget)")
    parser.add_argument("--output-dir", type=Path, help="write the executed notebooks here instead of in place")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    budget = dict(item.split("=", 1) for item in args.set)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: running ...", flush=True)
        seconds = execute(path, args.output_dir, budget, args.timeout)
        print(f"{path.name}: {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
