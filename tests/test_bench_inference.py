"""Smoke test of the inference benchmark on the toy model: it runs, and every engine computes the reference's function.

No timing thresholds: on a shared two-core machine they would only measure the neighbours.
"""

import json

import pytest

from benchmarks import inference
from benchmarks.__main__ import main


def test_rejects_bad_repeats(capsys):
    with pytest.raises(SystemExit):
        main(["inference", "--repeats", "0"])
    assert "Received: --warmup 2 --repeats 0" in capsys.readouterr().err


@pytest.mark.slow
def test_toy_inference_run_matches_the_reference(tmp_path):
    engines = ["keras-tf", "keras-tf-sysalloc", "tflite-float32", *inference.USER_ENGINES]
    assert main(["inference", "--toy", "--out", str(tmp_path), "--engines", *engines, "--batch-sizes", "2",
                 "--warmup", "1", "--repeats", "1"]) == 0
    results = json.loads((tmp_path / "inference.json").read_text())
    runs = results["models"]["toy_fourier"]["runs"]
    assert sorted((r["engine"], r["batch_size"]) for r in runs) == sorted(
        (e, 2) for e in ["torch", *engines, "torch-again"])
    for run in runs:
        assert "error" not in run, run
        assert run["median_s"] > 0 and run["peak_rss_mib"] > 0
        assert 0 < run["runtime_rss_mib"] <= run["loaded_rss_mib"] <= run["peak_rss_mib"], run
        if not run["engine"].startswith("torch"):  # same weights and inputs as transformers' model
            assert run["max_abs_diff"] < 1e-4 and run["top1_agreement"] == 1.0, run
    page = (tmp_path / "inference.md").read_text()
    assert page.count("| toy_fourier |") == len(runs)
    runtime = results["runtime_without_optional"]  # TensorFlow imported with jax, sklearn, ... unimportable
    assert runtime["loaded"] == [] and 0 < runtime["rss_mib"] < min(r["runtime_rss_mib"] for r in runs
                                                                  if r["engine"].startswith("keras-tf"))
    assert "| runtime MiB | model + activations MiB |" in page


class _FakeWorkers:
    """Stands in for the worker processes: records each job, writes the outputs a real engine would, and
    raises KeyboardInterrupt (a user's Ctrl-C) at the job numbered `interrupt_at`."""

    def __init__(self, interrupt_at=None):
        self.jobs, self.interrupt_at = [], interrupt_at

    def __call__(self, job, timeout_s=3600, backend="tensorflow", env=None):
        import numpy as np
        from pathlib import Path

        if self.interrupt_at is not None and len(self.jobs) == self.interrupt_at:
            raise KeyboardInterrupt
        self.jobs.append((job["run"].split(":")[1], job.get("engine")))
        if job["run"].endswith("matmul_peak_job"):
            return {"torch": 100.0, "tensorflow": 90.0}
        if job["run"].endswith("runtime_job"):
            return {"rss_mib": 5.0, "hidden": job["hidden"], "loaded": []}
        folder = Path(job["folder"])
        if job["run"].endswith("prepare_job"):
            (folder / "reference").mkdir(parents=True, exist_ok=True)
            return {"flops_per_sample": 1e9}
        logits = np.eye(3, dtype="float32")[None].repeat(job["batch_size"], 0)[:, 0]
        np.save(folder / f"outputs_{job['engine']}_{job['batch_size']}.npy", logits)
        return {"median_s": 0.5, "min_s": 0.5, "max_s": 0.5, "repeats": 1, "runtime_rss_mib": 8.0,
                "loaded_rss_mib": 10.0, "peak_rss_mib": 12.0}


def test_an_interrupted_run_keeps_its_results_and_the_same_command_measures_only_the_rest(tmp_path, monkeypatch):
    argv = ["inference", "--toy", "--out", str(tmp_path), "--engines", "keras-tf", "user-predict", "user-call",
            "--batch-sizes", "2", "--warmup", "1", "--repeats", "1"]
    first = _FakeWorkers(interrupt_at=5)  # peak, runtime, prepare, torch, keras-tf; Ctrl-C at user-predict
    monkeypatch.setattr(inference.harness, "run_worker", first)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    page = (tmp_path / "inference.md").read_text()
    assert "**Incomplete: 2 of 5 engine runs measured so far**" in page
    assert page.count("| toy_fourier |") == 2 and "| keras-tf |" in page
    assert json.loads((tmp_path / "inference.json").read_text())["incomplete"]

    again = _FakeWorkers()
    monkeypatch.setattr(inference.harness, "run_worker", again)
    assert main(argv) == 0
    assert again.jobs == [("user_job", "user-predict"), ("user_job", "user-call"), ("torch_job", "torch-again")]
    results = json.loads((tmp_path / "inference.json").read_text())
    assert "incomplete" not in results
    assert [run["engine"] for run in results["models"]["toy_fourier"]["runs"]] == [
        "torch", "keras-tf", "user-predict", "user-call", "torch-again"]
    assert "Incomplete" not in (tmp_path / "inference.md").read_text()
    assert not (tmp_path / "inference.jsonl").exists() and not (tmp_path / ".inference.work").exists()

    fresh = _FakeWorkers()  # a finished run leaves no journal: the next run measures everything
    monkeypatch.setattr(inference.harness, "run_worker", fresh)
    assert main(argv) == 0 and len(fresh.jobs) == 8


def test_the_results_folder_is_made_before_anything_is_measured(tmp_path, monkeypatch):
    workers = _FakeWorkers()
    monkeypatch.setattr(inference.harness, "run_worker", workers)
    out = tmp_path / "new" / "deeper"
    assert main(["inference", "--toy", "--out", str(out), "--engines", "keras-tf", "--batch-sizes", "1"]) == 0
    assert (out / "inference.md").is_file()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match="is a file; expected a folder"):
        main(["inference", "--toy", "--out", str(blocker), "--engines", "keras-tf"])
    assert len(workers.jobs) == 6  # peak, runtime, prepare, torch, keras-tf, torch-again: the refused run measured nothing
