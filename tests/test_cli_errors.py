"""Bad command lines exit 2 in the CLI's own terms, before anything is built or written (issue 18, item 5)."""

import hashlib
import json

import pytest
import tensorflow as tf

from export import cli as export_cli
from export.run_directory import RunDirectoryError
from zoo import cli, create_model, options, training
from zoo.decoding import read_image
from zoo.optical_flow import predict
from zoo.optical_flow.formats import decode_flo

pytestmark = pytest.mark.tensorflow_only

TINY = dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1,
            num_self_attention_heads=2, num_bands=2)
FLOW_TINY = dict(frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16,
                 num_self_attention_layers_per_block=1, num_self_attention_heads=2)
TRAIN = ["train", "image_classification", "--preset", "digits", "--out", "{out}"]
FLOW = ["train", "optical_flow", "--preset", "flow_small", "--out", "{out}"]
TUNE = ["tune", "image_classification", "--preset", "digits", "--out", "{out}"]
EXPORT = ["{run}", "--out", "{out}"]


def refused(main, argv, capsys, *expected):
    """Asserts exit status 2 with every `expected` text on stderr and no traceback; returns stderr."""
    assert main([str(a) for a in argv]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and all(text in error for text in expected), error
    return error


@pytest.mark.parametrize("main, argv, flag, value", [
    (cli.main, ["evaluate", "{run}", "--batch-size"], "--batch-size", "0"),
    (cli.main, TRAIN, "--epochs", "0"), (cli.main, TRAIN, "--batch-size", "0"),
    (cli.main, TRAIN, "--steps-per-epoch", "0"), (cli.main, TRAIN, "--take", "0"),
    (cli.main, TRAIN, "--warmup-epochs", "-1"), (cli.main, TRAIN, "--learning-rate", "0"),
    (cli.main, TRAIN, "--worker-timeout", "0"), (cli.main, TRAIN, "--seed", "-1"),
    (cli.main, TRAIN, "--epochs", str(2**40)), (cli.main, TRAIN, "--label-smoothing", "1"),
    (cli.main, FLOW, "--eval-take", "0"), (cli.main, FLOW, "--decoded-pixels", "0"), (cli.main, FLOW, "--max-flow", "0"),
    (cli.main, ["demo", "--out", "{out}", "--epochs"], "--epochs", "0"),
    (cli.main, TUNE, "--max-trials", "0"), (cli.main, TUNE, "--scale", "1"), (cli.main, TUNE, "--retrain-epochs", "0"),
    (cli.main, TUNE, "--latency-runs", "-1"),
    (export_cli.main, EXPORT, "--batch-size", "0"), (export_cli.main, EXPORT, "--num-eval", "0"),
    (export_cli.main, EXPORT, "--latency-runs", "-1"),
    (predict.main, ["{run}", "--frames", "a.png", "b.png", "--out", "f.png"], "--batch-size", "0"),
    (predict.main, ["{run}", "--frames", "a.png", "b.png", "--out", "f.png"], "--overlap", "-1"),
])
def test_zero_and_out_of_range_values_are_refused_naming_the_flag(main, argv, flag, value, tmp_path, capsys):
    argv = [a.format(out=tmp_path / "out", run=tmp_path / "run") for a in argv]
    argv = [*argv, value] if argv[-1] == flag else [*argv, flag, value]
    refused(main, argv, capsys, f"argument {flag}: expected", f"Received: '{value}'")
    assert list(tmp_path.iterdir()) == []


def test_the_python_api_refuses_the_same_values_in_cli_terms(tmp_path):
    with pytest.raises(ValueError, match=r"--epochs must be an integer from 1 to 2147483647. Received: --epochs 0"):
        training.train("image_classification", "digits", tmp_path / "run", epochs=0)
    with pytest.raises(ValueError, match=r"--warmup-epochs must be at most --epochs. Received: --warmup-epochs 3, "
                                         r"--epochs 2"):
        training.train("image_classification", "digits", tmp_path / "run", epochs=2, warmup_epochs=3)
    with pytest.raises(ValueError, match="--batch-size must be an integer from 1"):
        training.evaluate(tmp_path, batch_size=0)
    assert list(tmp_path.iterdir()) == []


def test_an_option_the_task_does_not_use_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    error = refused(cli.main, [*TRAIN[:-1], out, "--eval-take", "5"], capsys,
                    "--eval-take is not used by task image_classification, so it is refused rather than ignored.")
    assert "Task image_classification takes --augment, --classes, --cutmix, --label-smoothing" in error
    assert "--epochs" in error
    refused(cli.main, [*TUNE[:-1], out, "--eval-take", "5"], capsys, "--eval-take is not used by task")
    refused(cli.main, ["train", "multimodal_autoencoding", "--preset", "multimodal_small", "--out", out, "--max-flow",
                       "2", "--sintel-pass", "final"], capsys, "--max-flow, --sintel-pass are not used by task "
                       "multimodal_autoencoding", "--decoded-audio-patches")
    with pytest.raises(ValueError, match="--eval-take is not used by task image_classification"):
        training.train("image_classification", "digits", out, eval_take=5)
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_or_not_writable_is_named(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    refused(cli.main, [*TRAIN[:-1], afile], capsys,
            f"error: --out {afile} is a file; expected a run directory (new or an earlier run's)")
    refused(cli.main, [*TRAIN[:-1], afile / "sub"], capsys, f"--out {afile / 'sub'}: {afile} is a file")
    refused(cli.main, [*TUNE[:-1], afile], capsys, f"--out {afile} is a file; expected a tuning directory")
    refused(cli.main, ["convert", tmp_path, "--out", afile], capsys, f"--out {afile} is a file")
    refused(export_cli.main, [tmp_path / "run", "--out", afile / "sub"], capsys, f"{afile} is a file")
    refused(cli.main, ["evaluate", afile], capsys, f"{afile} is a file; expected a run directory")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = options.os.access
    monkeypatch.setattr(options.os, "access", lambda path, mode: path != locked and real_access(path, mode))
    refused(cli.main, [*TRAIN[:-1], locked / "run"], capsys, f"--out {locked / 'run'}: {locked} is not writable")
    assert afile.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "locked"]
    assert list(locked.iterdir()) == []


def test_set_values_are_reported_under_their_set_names(tmp_path, capsys):
    error = refused(cli.main, [*TRAIN[:-1], tmp_path / "a", "--set", "num_classes=0"], capsys,
                    "cannot be built with --set num_classes=0", "`num_classes` must be a positive integer")
    assert "output_channels" not in error
    error = refused(cli.main, ["train", "text_classification", "--preset", "source_type", "--out", tmp_path / "b",
                               "--set", "sequence_length=0"], capsys, "--set sequence_length=0", "`sequence_length`")
    assert "max_length" not in error
    refused(cli.main, [*TRAIN[:-1], tmp_path / "c", "--set", "image_shape=5"], capsys, "--set image_shape=5")
    assert list(tmp_path.iterdir()) == []


def _finished_run(folder, model_file, preset="digits", task="image_classification", overrides=TINY):
    """A run directory whose run.json says finished and holds `model_file`'s SHA-256, as training writes it."""
    folder.mkdir()
    data = model_file.read_bytes()
    (folder / "model.keras").write_bytes(data)
    (folder / "run.json").write_text(json.dumps({
        "task": task, "preset": preset, "model_overrides": overrides, "options": {"batch_size": 8, "seed": 0},
        "status": "finished", "model_sha256": hashlib.sha256(data).hexdigest(), "imports": ["perceiver_keras"],
        "data": {"builder": "zoo.image_classification.task:export_arrays", "kwargs": {"dataset": "digits",
                                                                                     "image_size": 8}}}))
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    create_model("digits", **TINY).save(folder / "digits.keras")
    create_model("flow_small", **FLOW_TINY).save(folder / "flow.keras")
    return folder


def test_a_model_of_another_task_is_reported_as_such(models, tmp_path, capsys):
    run = _finished_run(tmp_path / "mixed", models / "flow.keras")  # run.json's SHA-256 re-hashed to match
    expected = "holds the model 'flow_small', but run.json records a run of task 'image_classification', preset 'digits'"
    with pytest.raises(RunDirectoryError, match=expected):
        training.evaluate(run)
    refused(cli.main, ["evaluate", run], capsys, expected)
    refused(export_cli.main, [run, "--out", tmp_path / "export", "--latency-runs", "0"], capsys, expected)
    refused(predict.main, [run, "--frames", "a.png", "b.png", "--out", tmp_path / "f.png"], capsys, expected)
    assert not (tmp_path / "export").exists()


def test_a_damaged_model_file_is_named(models, tmp_path, capsys):
    (tmp_path / "short.keras").write_bytes((models / "digits.keras").read_bytes()[:200])
    run = _finished_run(tmp_path / "run", tmp_path / "short.keras")
    expected = f"{run / 'model.keras'} is not a readable .keras archive"
    with pytest.raises(ValueError, match=expected):
        training.load_run(run)
    refused(cli.main, ["evaluate", run], capsys, expected)
    refused(export_cli.main, [run, "--out", tmp_path / "export"], capsys, expected)
    refused(predict.main, [run, "--frames", "a.png", "b.png", "--out", tmp_path / "f.png"], capsys, expected)


def test_a_run_json_without_what_evaluate_needs_is_named(models, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes((models / "digits.keras").read_bytes())
    (run / "run.json").write_text(json.dumps({"preset": "digits"}))  # written by hand: no task, no options
    refused(cli.main, ["evaluate", run], capsys, f"{run / 'run.json'} has no task, options")


def test_a_refused_overwrite_leaves_the_earlier_run_as_it_was(models, tmp_path, capsys):
    run = _finished_run(tmp_path / "run", models / "digits.keras")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    refused(cli.main, [*TRAIN[:-1], run, "--overwrite", "--set", "num_classes=0"], capsys, "--set num_classes=0")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_damaged_data_file_read_by_tf_data_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    png, flo = tmp_path / "frame.png", tmp_path / "flow.flo"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))  # a header, then nothing decodable
    flo.write_bytes(b"PIEH" + bytes(4))
    datasets = {"png": tf.data.Dataset.from_tensor_slices([str(png)]).map(read_image),
                "flo": tf.data.Dataset.from_tensor_slices([str(flo)]).map(
                    lambda path: decode_flo(tf.io.read_file(path), path))}
    for kind, expected in (("png", f"error: Cannot decode the image file {png}: "),
                           ("flo", f"error: Corrupt .flo file {flo}: expected at least a 12-byte header")):
        monkeypatch.setattr(training, "evaluate", lambda *args, ds=datasets[kind]: list(ds))
        refused(cli.main, ["evaluate", tmp_path], capsys, expected)

    def unrelated(*args):
        raise tf.errors.InternalError(None, None, "not a data file")
    monkeypatch.setattr(training, "evaluate", unrelated)
    with pytest.raises(tf.errors.InternalError):  # anything else stays a traceback: it is a bug, not an input
        cli.main(["evaluate", str(tmp_path)])


def test_the_cli_choices_are_the_modules_own():
    from zoo import distribute, schedules, tuning

    assert (options.OPTIMIZERS, options.SCHEDULES) == (schedules.OPTIMIZERS, schedules.SCHEDULES)
    assert cli.TUNERS == tuning.TUNERS and "data_parallel" in distribute.STRATEGIES
