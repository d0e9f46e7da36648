"""zoo.resume: what a killed run restores besides its weights (the run-level tests kill real runs)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from zoo.resume import continued_stream, resumable_history

pytestmark = pytest.mark.tensorflow_only


def _backup(folder, epoch):
    folder.mkdir(exist_ok=True)
    (folder / "training_metadata.json").write_text(json.dumps({"epoch": epoch, "batch": 0}))
    return folder


def test_history_keeps_the_rows_of_backed_up_epochs_only(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n")
    resumable_history(history, _backup(tmp_path / "backup", 2))  # killed after epoch 2's row, before its backup
    assert history.read_text() == "epoch,loss\n0,3.0\n1,2.0\n"
    resumable_history(history, _backup(tmp_path / "backup", 2))
    assert history.read_text() == "epoch,loss\n0,3.0\n1,2.0\n"  # nothing else to drop
    resumable_history(tmp_path / "missing.csv", tmp_path / "backup")  # no history yet: nothing to do
    assert not (tmp_path / "missing.csv").exists()


def test_an_endless_stream_continues_after_the_finished_epochs(tmp_path):
    stream = tf.data.Dataset.range(1000).repeat()
    assert next(iter(continued_stream(stream, tmp_path / "none", 4))).numpy() == 0  # no backup: from the start
    assert next(iter(continued_stream(stream, _backup(tmp_path / "backup", 3), 4))).numpy() == 12
    finite = tf.data.Dataset.range(10)  # one pass an epoch: every epoch starts from its beginning anyway
    assert list(continued_stream(finite, tmp_path / "backup", 4).as_numpy_iterator()) == list(np.arange(10))
