"""SavedModel and TFLite export with verification against the Keras model.

    report = export.export_model(model, "exports/digits", calibration_data=x_train[:200],
                                 eval_data=(x_test, y_test))
    print(report.table())

or, from a training run directory: `export.export_run("runs/digits", "exports/digits")`, which is
`python -m export runs/digits --out exports/digits`.

The names below are imported on first use, so that `python -m export` can start TensorFlow quietly
(`export.console`) before anything else imports it.
"""

import importlib

_EXPORTS = {
    "QUANTIZATIONS": "export.tflite",
    "ExportReport": "export.report",
    "ExtraSignature": "export.savedmodel",
    "Thresholds": "export.report",
    "UnsupportedOpError": "export.tflite",
    "VariantReport": "export.report",
    "export_model": "export.api",
    "export_run": "export.run_export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
