"""A console a user can read: the CLIs print our lines, not TensorFlow's start-up lines."""

import os
import subprocess
import sys

import pytest

from export.console import is_startup_noise

pytestmark = pytest.mark.tensorflow_only


def test_startup_lines_are_recognised_and_errors_kept():
    assert is_startup_noise("I0000 00:00:1796192974.5 16087 port.cc:153] oneDNN custom operations are on.")
    assert is_startup_noise("E0000 00:00:17961 15622 cuda_platform.cc:52] failed call to cuInit: INTERNAL")
    assert is_startup_noise("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert not is_startup_noise("E0000 00:00:1 1 loader.cc:1] Could not load SavedModel: file is corrupt")
    assert not is_startup_noise("error: --out /tmp/x is a file")
    assert not is_startup_noise("UserWarning: something of ours")


@pytest.mark.parametrize("argv", [["-m", "export", "/nonexistent", "--out", "unused"], ["-m", "zoo", "list"]])
def test_cli_console_has_no_tensorflow_startup_lines(argv):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PERCEIVER_KERAS_VERBOSE_TF")}
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=300)
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if is_startup_noise(line)], lines[:5]
    if argv[1] == "export":
        assert done.returncode == 2 and done.stderr.strip().startswith("error: Expected a run directory")
    else:
        assert done.returncode == 0 and "digits" in done.stdout
