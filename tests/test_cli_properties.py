"""Random malformed command lines for each public CLI entry point: exit 2 naming the flag, no traceback, no write.

The valid ranges below are written apart from the code under test (Python's own int/float decide
what parses); every value drawn is outside them, or is a valid value of a flag the task does not use.
"""

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export import cli as export_cli
from zoo import cli
from zoo.optical_flow import predict

pytestmark = pytest.mark.tensorflow_only

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INT32 = 2**31 - 1
TRAINING_INTS = {"--epochs": (1, INT32), "--batch-size": (1, INT32), "--steps-per-epoch": (1, INT32),
                 "--take": (1, INT32), "--warmup-epochs": (0, INT32), "--seed": (0, 2**32 - 1)}
TRAINING_FLOATS = {"--learning-rate": (0, math.inf, "open"), "--weight-decay": (0, math.inf, "closed"),
                   "--label-smoothing": (0, 1, "half-open"), "--ema-momentum": (0, 1, "open"),
                   "--mixup": (0, 1, "closed"), "--cutmix": (0, 1, "closed")}
TRAINING_CHOICES = {"--optimizer": ("lamb", "adamw"), "--schedule": ("constant", "cosine", "flat_cosine"),
                    "--precision": ("float32", "mixed_bfloat16", "mixed_float16")}
NOT_IMAGE_OPTIONS = ["--eval-take=5", "--max-flow=2", "--corpus=pydoc", "--decoded-pixels=8", "--tone-period=32",
                     "--mask-probability=0.2", "--frame-stride=2", "--sintel-pass=final"]


def _int_ok(text, low, high):
    try:
        return low <= int(text) <= high
    except ValueError:
        return False


def _float_ok(text, low, high, bounds):
    try:
        value = float(text)
    except ValueError:
        return False
    above = value > low if bounds in ("open",) else value >= low
    below = value < high if bounds in ("open", "half-open") else value <= high
    return math.isfinite(value) and above and below


def bad_int(low, high):
    return st.one_of(st.integers(max_value=low - 1).map(str), st.integers(min_value=high + 1).map(str),
                     st.sampled_from(["", "1.5", "nan", "inf", "1e3", "0x10", "ten"]),
                     st.text(max_size=12)).filter(lambda text: not _int_ok(text, low, high))


def bad_float(low, high, bounds):
    return st.one_of(st.sampled_from(["nan", "inf", "-inf", "", "1,5", "lots", str(low)]),
                     st.floats(max_value=low, allow_nan=False).map(repr), st.text(max_size=12)
                     ).filter(lambda text: not _float_ok(text, low, high, bounds))


def bad_choice(choices):
    return st.text(max_size=12).filter(lambda text: text not in choices)


def bad_training_option():
    """(flag, argument) of a malformed value of a training option shared by train and tune."""
    return st.one_of(
        *(bad_int(*r).map(lambda v, f=f: (f, f"{f}={v}")) for f, r in TRAINING_INTS.items()),
        *(bad_float(*r).map(lambda v, f=f: (f, f"{f}={v}")) for f, r in TRAINING_FLOATS.items()),
        *(bad_choice(c).map(lambda v, f=f: (f, f"{f}={v}")) for f, c in TRAINING_CHOICES.items()),
        st.sampled_from(NOT_IMAGE_OPTIONS).map(lambda arg: (arg.split("=")[0], arg)),
    )


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory with a file, an empty folder and nothing else; every example must leave it so."""
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.is_file() and p.read_text()) for p in folder.rglob("*"))


def assert_refused(main, argv, names, sandbox, capsys):
    before = _tree(sandbox)
    assert main(argv) == 2, argv
    error = capsys.readouterr().err
    assert "Traceback" not in error and any(name in error for name in names), (argv, error)
    assert _tree(sandbox) == before, argv


PATHS = [("--data-dir", "--data-dir=afile"), ("--manual-dir", "--manual-dir=afile"),
         ("--init-from", "--init-from=missing"), ("--init-from", "--init-from=afile"),
         ("--init-from", "--init-from=empty")]


@SETTINGS
@given(bad=st.one_of(bad_training_option(), st.sampled_from(PATHS)), out=st.sampled_from(["run", "afile", "afile/run"]))
def test_train_refuses_malformed_options(bad, out, sandbox, capsys):
    flag, argument = bad
    argv = ["train", "image_classification", "--preset", "digits", "--out", out, argument]
    assert_refused(cli.main, argv, [flag, "afile"], sandbox, capsys)


@SETTINGS
@given(case=st.one_of(
    bad_int(1, INT32).map(lambda v: (["--max-trials=" + v], "--max-trials")),
    bad_float(1, math.inf, "open").map(lambda v: (["--scale=" + v], "--scale")),
    bad_int(1, INT32).map(lambda v: (["--retrain-epochs=" + v], "--retrain-epochs")),
    bad_int(0, INT32).map(lambda v: (["--latency-runs=" + v], "--latency-runs")),
    bad_choice(("random", "hyperband", "bayesian")).map(lambda v: (["--tuner=" + v], "--tuner")),
    st.text(max_size=10).filter(lambda t: set(t.split(",")) - {"float32", "float16", "dynamic", "int8", "int16x8"}
                                ).map(lambda v: (["--quantize=" + v], "--quantize")),
    bad_training_option().map(lambda bad: ([bad[1]], bad[0])),
))
def test_tune_refuses_malformed_options(case, sandbox, capsys):
    arguments, flag = case
    argv = ["tune", "image_classification", "--preset", "digits", "--out", "search", *arguments]
    assert_refused(cli.main, argv, [flag], sandbox, capsys)


@SETTINGS
@given(run_dir=st.sampled_from(["missing", "afile", "empty", "afile/run"]),
       batch=st.one_of(st.none(), bad_int(1, INT32)))
def test_evaluate_refuses_missing_runs_and_bad_batch_sizes(run_dir, batch, sandbox, capsys):
    argv = ["evaluate", run_dir, *([] if batch is None else [f"--batch-size={batch}"])]
    assert_refused(cli.main, argv, ["--batch-size" if batch is not None else run_dir], sandbox, capsys)


@settings(SETTINGS, max_examples=12)
@given(folder=st.sampled_from(["missing", "afile", "empty"]), out=st.sampled_from(["preset", "afile", "afile/x"]))
def test_convert_refuses_missing_folders_and_file_outputs(folder, out, sandbox, capsys):
    names = ["--out"] if out != "preset" else [folder]
    assert_refused(cli.main, ["convert", folder, "--out", out], names, sandbox, capsys)


@SETTINGS
@given(case=st.one_of(
    bad_int(1, INT32).map(lambda v: ("empty", "x", [f"--batch-size={v}"], "--batch-size")),
    bad_int(1, INT32).map(lambda v: ("empty", "x", [f"--num-eval={v}"], "--num-eval")),
    bad_int(0, INT32).map(lambda v: ("empty", "x", [f"--latency-runs={v}"], "--latency-runs")),
    st.text(max_size=10).filter(lambda t: set(t.split(",")) - {"float32", "float16", "dynamic", "int8", "int16x8"}
                                ).map(lambda v: ("empty", "x", [f"--quantize={v}"], "--quantize")),
    st.sampled_from(["missing", "afile", "empty", "model.keras"]).map(lambda s: (s, "x", [], s)),
    st.sampled_from(["afile", "afile/x", "empty"]).map(lambda out: ("empty", out, [], "--out" if "afile" in out
                                                                     else "empty")),
))
def test_export_refuses_malformed_arguments(case, sandbox, capsys):
    source, out, arguments, name = case
    assert_refused(export_cli.main, [source, "--out", out, *arguments], [name], sandbox, capsys)
    assert not os.path.exists(sandbox / "x")


@settings(SETTINGS, max_examples=15)
@given(case=st.one_of(bad_int(1, INT32).map(lambda v: (["--out", "demo", f"--epochs={v}"], "--epochs")),
                      st.sampled_from(["afile", "empty/..", "afile/x"]).map(lambda out: (["--out", out], out))))
def test_demo_refuses_bad_epochs_and_outputs(case, sandbox, capsys):
    arguments, name = case
    assert_refused(cli.main, ["demo", *arguments], [name, "afile"], sandbox, capsys)


@settings(SETTINGS, max_examples=20)
@given(case=st.one_of(
    bad_int(1, INT32).map(lambda v: ("empty", [f"--batch-size={v}"], "--batch-size")),
    bad_int(0, INT32).map(lambda v: ("empty", [f"--overlap={v}"], "--overlap")),
    bad_float(0, math.inf, "open").map(lambda v: ("empty", [f"--max-flow={v}"], "--max-flow")),
    bad_float(0, math.inf, "open").map(lambda v: ("empty", [f"--flow-scale={v}"], "--flow-scale")),
    st.sampled_from(["missing", "afile", "empty", "model.keras"]).map(lambda source: (source, [], source)),
))
def test_flow_predict_refuses_malformed_arguments(case, sandbox, capsys):
    source, arguments, name = case
    argv = [source, "--frames", "a.png", "b.png", "--out", "flow.png", *arguments]
    assert_refused(predict.main, argv, [name], sandbox, capsys)
