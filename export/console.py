"""A console a user can read: TensorFlow's start-up lines on a CPU machine kept out of the CLIs' output.

TensorFlow 2.21 writes its start-up INFO lines (oneDNN, "Could not find cuda drivers", CPU
instruction notes) and, on a machine without a GPU, a `cuInit` error straight to file descriptor 2
from native code, before absl logging is set up, so `TF_CPP_MIN_LOG_LEVEL` does not silence them.
`import_tensorflow_quietly` captures descriptor 2 while TensorFlow starts and replays every line
that is not one of those known start-up lines, so real errors and our own warnings still show.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_STARTUP_NOISE = re.compile(
    r"^(?:[IW]\d{4} |WARNING: All log messages before absl::InitializeLog|"
    r"E\d{4} .*(?:cuInit|cuda_platform|cuda_dnn|cuda_fft|cuda_blas)|"
    r"To enable the following instructions|.*rebuild TensorFlow with the appropriate compiler flags|"
    r"This TensorFlow binary is optimized|.*TF-TRT Warning|"
    r"Unable to register cu(?:DNN|FFT|BLAS) factory|All log messages before absl)"
)


def is_startup_noise(line: str) -> bool:
    """Whether a stderr line is one of TensorFlow's known start-up lines (not an error of the user's)."""
    return bool(_STARTUP_NOISE.match(line))


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and probes its devices with its start-up lines filtered out of stderr.

    Does nothing when TensorFlow is already imported or `PERCEIVER_KERAS_VERBOSE_TF=1` is set.
    """
    if "tensorflow" in sys.modules or os.environ.get("PERCEIVER_KERAS_VERBOSE_TF") == "1":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            # Finds the devices (the cuInit error comes here) without starting the runtime, so that
            # logical devices and thread counts can still be configured afterwards.
            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not is_startup_noise(line):
                    print(line, file=sys.stderr)
