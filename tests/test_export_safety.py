"""What `--overwrite` may replace, and checks that non-finite values cannot pass (issue: reliability)."""

import json
import os
import stat

import keras
import numpy as np
import pytest

import export
import export_fixtures as fixtures
from export.cli import EXIT_ERROR, main
from export.outdir import MARKER, OutputDirError, remove_stale
from export.report import Thresholds, strict_json
from export.verify import max_abs_diff

pytestmark = pytest.mark.tensorflow_only
FAST = ["--quantize", "float32", "--latency-runs", "0", "--num-eval", "32"]


@pytest.fixture(scope="module")
def model():
    return fixtures.digits_model(epochs=1)


@pytest.fixture
def run_dir(model, tmp_path):
    """A run directory as the CLI reads it, beside an unrelated run in the same parent."""
    runs = tmp_path / "runs"
    run = runs / "digits"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    builder = {"builder": "export_fixtures:digits_data", "kwargs": {"num_calibration": 8}}
    (run / "run.json").write_text(json.dumps({"data": builder, "imports": ["export_fixtures"]}))
    (runs / "other").mkdir()
    (runs / "other" / "notes.txt").write_text("an unrelated run")
    return run


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("target", ["run", "parent", "model_file", "plain_file", "user_folder"])
def test_overwrite_never_deletes_what_an_export_did_not_write(run_dir, target, capsys):
    plain = run_dir.parent / "notes.md"
    plain.write_text("keep me")
    user = run_dir.parent / "photos"
    user.mkdir()
    (user / "a.png").write_bytes(b"\x89PNG")
    out = {"run": run_dir, "parent": run_dir.parent, "model_file": run_dir / "model.keras", "plain_file": plain,
           "user_folder": user}[target]
    before = _tree(run_dir.parent)
    assert main([str(run_dir), "--out", str(out), "--overwrite", *FAST]) == EXIT_ERROR
    error = capsys.readouterr().err
    assert str(out) in error and ("source" in error or "not" in error or "is a file" in error)
    assert _tree(run_dir.parent) == before
    assert plain.read_text() == "keep me"


def test_source_keras_file_and_its_folder_are_protected(model, tmp_path):
    model.save(tmp_path / "model.keras")
    data = fixtures.digits_data(num_calibration=8)
    for out in (tmp_path / "model.keras", tmp_path):
        with pytest.raises(OutputDirError, match="source"):
            export.export_model(model, out, eval_data=data["eval"], quantizations=("float32",), overwrite=True,
                                latency_runs=0, protected=(tmp_path / "model.keras",))
    assert (tmp_path / "model.keras").is_file()


def test_overwrite_replaces_an_earlier_export_only(run_dir, capsys):
    out = run_dir / "export"  # a fresh sub-folder of the run is allowed
    assert main([str(run_dir), "--out", str(out), *FAST]) == 0
    assert json.loads((out / MARKER).read_text())["written"] == sorted(
        ["model_float32.tflite", "report.json", "report.md", "saved_model"])
    assert main([str(run_dir), "--out", str(out), "--overwrite", *FAST]) == 0
    assert sorted(p.name for p in run_dir.iterdir()) == ["export", "model.keras", "run.json"]  # no hidden leftovers
    (out / "mine.txt").write_text("added by the user")
    assert main([str(run_dir), "--out", str(out), "--overwrite", *FAST]) == EXIT_ERROR
    assert "mine.txt" in capsys.readouterr().err and (out / "mine.txt").exists()


def test_leftovers_of_a_killed_export_are_removed_and_others_kept(run_dir, tmp_path):
    out = tmp_path / "export"
    dead = tmp_path / f".{out.name}.partial-dead"
    dead.mkdir()
    (dead / MARKER).write_text(json.dumps({"written": [], "pid": 2**22 + 12345}))  # beyond pid_max: not running
    alive = tmp_path / f".{out.name}.partial-alive"
    alive.mkdir()
    (alive / MARKER).write_text(json.dumps({"written": [], "pid": os.getppid()}))
    old = tmp_path / f".{out.name}.old-x"
    old.mkdir()
    (old / MARKER).write_text(json.dumps({"written": []}))
    users = tmp_path / f".{out.name}.old-mine"  # named alike, but not ours
    users.mkdir()
    assert sorted(p.name for p in remove_stale(out)) == sorted([dead.name, old.name])
    assert alive.exists() and users.exists() and not dead.exists() and not old.exists()


def test_export_folders_follow_the_umask(run_dir):
    previous = os.umask(0o022)
    try:
        out = run_dir.parent / "exported"
        assert main([str(run_dir), "--out", str(out), *FAST]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "report.json").stat().st_mode) == 0o644


def test_nan_in_evaluation_data_is_refused_naming_the_sample(model, tmp_path):
    x, y = fixtures.digits_data()["eval"]
    x = x.copy()
    x[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"eval_data holds NaN.*samples \[5\]"):
        export.export_model(model, tmp_path / "out", eval_data=(x, y), quantizations=("float32",), latency_runs=0)
    assert not any(tmp_path.iterdir())


def test_non_finite_model_outputs_fail_and_report_json_stays_strict(tmp_path):
    pixels = keras.Input((4,), name="pixels")
    model = keras.Model(pixels, keras.ops.log(pixels), name="log")  # log(0) = -inf for an all-zero sample
    x = np.ones((8, 4), "float32")
    x[2] = 0.0
    report = export.export_model(model, tmp_path / "out", eval_data=x, quantizations=("float32",), latency_runs=0)
    assert not report.passed
    assert any("keras" in f and "[2]" in f for f in report.failures)
    assert report.variants["float32"].failures and not report.variants["float32"].passed
    text = (tmp_path / "out" / "report.json").read_text()
    saved = json.loads(text, parse_constant=lambda name: pytest.fail(f"report.json holds bare {name}"))
    assert saved["passed"] is False and saved["variants"]["float32"]["max_abs_diff"] is None


def test_non_finite_differences_fail_every_limit():
    nan = {"y": np.array([[np.nan, 1.0]], "float32")}
    assert max_abs_diff({"y": np.zeros((1, 2), "float32")}, nan) == float("inf")
    thresholds = Thresholds()
    assert thresholds.saved_model_failures(float("nan")) and thresholds.saved_model_failures(float("inf"))
    assert strict_json({"a": [float("nan"), 1.0, float("-inf")]}) == {"a": [None, 1.0, None]}


def test_runner_refuses_a_wrong_shape_and_stays_usable(model, tmp_path):
    from export.verify import TFLiteRunner

    data = fixtures.digits_data(num_calibration=8)
    export.export_model(model, tmp_path / "out", eval_data=data["eval"], quantizations=("float32",), latency_runs=0)
    runner = TFLiteRunner((tmp_path / "out" / "model_float32.tflite").read_bytes(), "serving_default")
    name = next(iter(runner.inputs))
    good = {name: data["eval"][0][:3]}
    before = runner(good)
    with pytest.raises(ValueError, match=r"has the shape \('batch', 64\). Received: pixels.shape=\(3, 65\)"):
        runner({name: np.zeros((3, 65), "float32")})
    with pytest.raises(ValueError, match="takes the inputs"):
        runner({"other": data["eval"][0][:3]})
    np.testing.assert_array_equal(runner(good)[next(iter(before))], before[next(iter(before))])
