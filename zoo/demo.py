"""The main job, offline: train the digits classifier, evaluate, export, verify, print one table."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from zoo import training
from zoo.options import check_out

ACCURACY_TARGET = 0.98
DEMO_MARKER = ".perceiver-keras-demo"
"""Marks a folder as the demo's output: only such a folder (or an empty one) is replaced."""


def run(out: str = "demo_out", epochs: int | None = None) -> int:
    """Runs the demo into `out` (an earlier demo's output there is replaced). Returns 0 when every check passes.

    Raises:
        FileExistsError: `out` exists and is neither empty nor an earlier demo's output.
    """
    import export

    started = time.time()
    out = Path(out)
    check_out(out, "a demo folder (new or an earlier demo's)")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink() or not ((out / DEMO_MARKER).is_file() or not any(out.iterdir())):
            raise FileExistsError(
                f"{out} exists and is not an earlier demo's folder (it has no {DEMO_MARKER}); the demo replaces "
                "only its own output. Pass another --out."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("Written by `python -m zoo demo`; the next demo run replaces this folder.\n")
    print("1/3 Training the 'digits' preset (scikit-learn's 8x8 digits, offline) with model.fit ...", flush=True)
    run_info = training.train("image_classification", "digits", out / "run", epochs=epochs, verbose=2)
    accuracy = run_info["test_metrics"]["accuracy"]
    print(f"\n2/3 Test accuracy (360 held-out digits): {accuracy:.2%} (target {ACCURACY_TARGET:.0%})", flush=True)

    print("\n3/3 Exporting SavedModel + TFLite float32/float16/dynamic/int8/int16x8 (batch 1), verifying them in LiteRT "
          "and on the edge toolchains (Arm vela for Ethos-U, TensorFlow Lite Micro) ...", flush=True)
    report = export.export_run(out / "run", out / "export")
    print()
    print(report.table())
    print(f"\nArtefacts: {out / 'export'} (report.md, report.json, saved_model/, model_*.tflite)")
    print(f"Total time: {time.time() - started:.0f} s")
    ok = report.passed and accuracy >= ACCURACY_TARGET
    if not report.passed:
        print("FAILED export checks:", "; ".join(report.failures))
    if accuracy < ACCURACY_TARGET:
        print(f"FAILED: float accuracy {accuracy:.2%} is below the {ACCURACY_TARGET:.0%} target")
    print("Demo passed." if ok else "Demo failed.")
    return 0 if ok else 1
