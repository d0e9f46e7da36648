"""SavedModel and TFLite export with verification against the Keras model.

    report = export.export_model(model, "exports/digits", calibration_data=x_train[:200],
                                 eval_data=(x_test, y_test))
    print(report.table())

or, from a training run directory: `python -m export runs/digits --out exports/digits`.
"""

from export.api import export_model
from export.report import ExportReport, Thresholds, VariantReport
from export.savedmodel import ExtraSignature
from export.tflite import QUANTIZATIONS, UnsupportedOpError

__all__ = [
    "QUANTIZATIONS",
    "ExportReport",
    "ExtraSignature",
    "Thresholds",
    "UnsupportedOpError",
    "VariantReport",
    "export_model",
]
