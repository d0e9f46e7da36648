"""What a killed run needs besides its weights to continue as if it had never stopped.

Keras' `BackupAndRestore` restores the weights, the optimizer and the epoch. Two more things decide
what the remaining epochs compute:

- the random state of the model's layers: dropout and Perceiver AR's prefix dropout draw from
  seed generators whose states are variables but not weights, so `save_weights` leaves them out and
  a resumed run would redraw the first epochs' masks (`SeededBackupAndRestore` keeps them);
- the position in an endless training stream (`continued_stream`).

And history.csv must hold each finished epoch once (`resumable_history`).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import keras
import numpy as np
from tensorflow import data as tf_data

SEED_STATES = "seed_states.npz"


def seed_state_variables(model: keras.Model) -> list:
    """The model's seed-generator states, in the order `model.variables` lists them."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


class SeededBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that also backs up the model's seed-generator states at every save.

    The states are written beside the weights with the epoch they belong to, and restored (in the
    order `model.variables` lists them; their auto-numbered names differ from build to build) only
    when that epoch is the one Keras resumes at: a kill between the two writes restores weights only.
    """

    def _seed_path(self) -> str:
        return os.path.join(self.backup_dir, SEED_STATES)

    def _save_model(self):
        super()._save_model()
        variables = seed_state_variables(self.model)
        states = (np.stack([keras.ops.convert_to_numpy(v.value) for v in variables]) if variables
                  else np.zeros((0, 2), np.int64))
        temporary = self._seed_path() + ".tmp.npz"
        np.savez(temporary, epoch=self._current_epoch, states=states)
        os.replace(temporary, self._seed_path())

    def _load_model(self):
        super()._load_model()
        path = self._seed_path()
        if not os.path.exists(path) or not os.path.exists(self._training_metadata_path):
            return
        with open(self._training_metadata_path) as f:
            epoch = json.load(f)["epoch"]
        with np.load(path) as saved:
            epoch_saved, states = int(saved["epoch"]), saved["states"]
        variables = seed_state_variables(self.model)  # the same architecture lists them in the same order
        if epoch_saved != epoch or len(states) != len(variables):
            return
        for variable, state in zip(variables, states):
            variable.assign(state)


def continued_stream(train_ds: tf_data.Dataset, backup_dir: Path, steps_per_epoch: int) -> tf_data.Dataset:
    """An endless training stream advanced past the batches a resumed run's finished epochs drew.

    `fit` reads a repeated stream (a text corpus) with one iterator across epochs, so epoch e of a run
    draws batches [e * steps, (e + 1) * steps). A resumed run starts a new iterator at the stream's
    beginning; without the skip it would train its remaining epochs on the first epochs' windows
    again, where the run it continues would have read new ones. Finite datasets (one pass an epoch)
    are returned as they are.
    """
    epoch = backed_up_epoch(backup_dir)
    if train_ds.cardinality() != tf_data.INFINITE_CARDINALITY or epoch == 0:
        return train_ds
    return train_ds.skip(epoch * steps_per_epoch)


def backed_up_epoch(backup_dir: Path) -> int:
    """The number of epochs the backup in `backup_dir` holds (0 when there is none)."""
    metadata = Path(backup_dir) / "training_metadata.json"
    return int(json.loads(metadata.read_text()).get("epoch", 0)) if metadata.exists() else 0


def resumable_history(history_csv: Path, backup_dir: Path) -> None:
    """Drops history.csv's rows of epochs the backup does not hold, before a resumed run appends to it.

    The backup is written after the epoch's row (it is the last callback), so a run killed between the
    two leaves a row of an epoch that the resumed run trains again; without this it would appear twice.
    """
    history_csv = Path(history_csv)
    if not history_csv.exists():
        return
    with open(history_csv, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    done = backed_up_epoch(backup_dir)
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < done]
    if len(kept) != len(rows):
        temporary = history_csv.with_suffix(".csv.tmp")
        with open(temporary, "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(temporary, history_csv)
