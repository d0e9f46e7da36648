"""Training on several devices or machines, with no change in the tasks: `train(..., strategy=NAME)`.

| strategy | backend | replicas |
|---|---|---|
| default | any | one device (no distribution) |
| mirrored | tensorflow | `tf.distribute.MirroredStrategy` over the local GPUs, else the local (logical) CPUs |
| multi_worker | tensorflow | `tf.distribute.MultiWorkerMirroredStrategy`; the cluster and this worker's place in it come from `TF_CONFIG` |
| tpu | tensorflow | `tf.distribute.TPUStrategy` through `TPUClusterResolver` (a TPU VM, or the TPU named by `TPU_NAME`) |
| data_parallel | jax | `keras.distribution.DataParallel` over every JAX device |

The batch size stays global: the pipelines batch at `--batch-size`, and tf.distribute (or the JAX
sharding) splits each batch into `batch_size / replicas` per replica, so a run's learning rate and
schedule do not change with the number of replicas. Workers shard the data by element
(`AutoShardPolicy.DATA`): each one runs the same seeded pipeline and keeps its part of every batch,
which is right for in-memory and generated data and for any number of files. Each worker waits for
the others for a bounded time (`wait_for_workers`), so a wrong address in `TF_CONFIG` is an error.

Only the chief (the "chief" task, else worker 0) writes the run directory; the other workers write
to a `workertemp_<id>` folder inside it which they remove, as TensorFlow's multi-worker guide does,
and restore from the chief's backup on a restart: the run directory must be on a filesystem that
every worker sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras

from zoo.resume import SeededBackupAndRestore

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu", "data_parallel")
_TF_STRATEGIES = ("mirrored", "multi_worker", "tpu")


def make_strategy(name: str | None, worker_timeout: float = 300.0) -> Any:
    """The tf.distribute strategy or Keras distribution named `name`; None for "default".

    Args:
        name: one of `STRATEGIES` (None means "default").
        worker_timeout: multi_worker: seconds to wait for every worker of `TF_CONFIG` to come up
            before raising, instead of waiting forever.

    Raises:
        ValueError: an unknown name, a strategy of another backend, or a malformed `TF_CONFIG`.
        ConnectionError: multi_worker: some workers of `TF_CONFIG` were not reachable in time.
    """
    name = name or "default"
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Expected one of {list(STRATEGIES)}. Received: strategy={name!r}")
    backend = keras.config.backend()
    if name in _TF_STRATEGIES and backend != "tensorflow":
        raise ValueError(f"Strategy {name!r} is tf.distribute and needs KERAS_BACKEND=tensorflow; on JAX use "
                         f"'data_parallel'. Received: strategy={name!r} with the {backend} backend")
    if name == "data_parallel" and backend != "jax":
        raise ValueError("Strategy 'data_parallel' is keras.distribution, which runs on JAX only; on TensorFlow "
                         f"use 'mirrored' or 'multi_worker'. Received: strategy={name!r} with the {backend} backend")
    if name == "default":
        return None
    if name == "data_parallel":
        return keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return _multi_worker(tf, read_tf_config(), worker_timeout)


def read_tf_config() -> dict[str, Any]:
    """`TF_CONFIG` parsed and checked: {} when unset (one worker on its own)."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}). Received: TF_CONFIG={text!r}") from None
    cluster, task = config.get("cluster"), config.get("task", {}) if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) and v for v in cluster.values()):
        raise ValueError('TF_CONFIG needs a "cluster" mapping each job to its "host:port" list, e.g. '
                         f'{{"cluster": {{"worker": ["a:2222", "b:2222"]}}, "task": {{"type": "worker", "index": 0}}}}. '
                         f"Received: TF_CONFIG={text!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not (
            isinstance(task.get("index"), int) and 0 <= task["index"] < len(cluster[task["type"]])):
        raise ValueError('TF_CONFIG needs a "task" naming a job of its cluster and an index in it, e.g. '
                         f'{{"type": "worker", "index": 0}}. Received: TF_CONFIG={text!r}')
    return config


def _unreachable(addresses: list[str], timeout: float) -> list[str]:
    """The addresses that accept no TCP connection within `timeout` seconds each."""
    down = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except (OSError, ValueError):
            down.append(address)
    return down


def wait_for_workers(config: dict[str, Any], timeout: float) -> None:
    """Returns once every other worker of `TF_CONFIG` accepts connections; raises after `timeout` seconds.

    `MultiWorkerMirroredStrategy()` blocks until all its peers listen, with no timeout, and a worker
    only listens once its own strategy exists. So each worker answers on its own port while it waits
    here: workers started in any order find each other, and a wrong or dead address is an error.
    """
    task = config["task"]
    own = config["cluster"][task["type"]][task["index"]]
    peers = [a for job, addresses in config["cluster"].items() for i, a in enumerate(addresses)
             if (job, i) != (task["type"], task["index"])]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(own.rpartition(":")[2])))
        listener.listen(len(peers) + 1)
    except (OSError, ValueError) as error:
        listener.close()
        raise ConnectionError(f"This worker cannot listen on its TF_CONFIG address {own} ({error}). "
                              f"Received: TF_CONFIG={os.environ.get('TF_CONFIG')!r}") from None
    try:
        deadline, waiting = time.time() + timeout, peers
        while waiting := _unreachable(waiting, timeout=1.0):
            if time.time() > deadline:
                raise ConnectionError(
                    f"Workers of TF_CONFIG did not come up within worker_timeout={timeout:g} s; unreachable: "
                    f"{waiting}. Start every worker of the cluster, check the addresses and firewalls. "
                    f"Received: TF_CONFIG={os.environ.get('TF_CONFIG')!r}")
            time.sleep(0.5)
    finally:
        listener.close()


def _multi_worker(tf: Any, config: dict[str, Any], worker_timeout: float) -> Any:
    if config:
        wait_for_workers(config, worker_timeout)
    _average_logs_over_workers()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _average_logs_over_workers() -> None:
    """Works around Keras 3.15's multi-worker `fit`, which fails at the first step.

    Its TensorFlow trainer averages each step's logs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, and the logs are scalars ("Invalid reduction dimension 0
    for input with 0 dimensions"): this averages them over the replicas instead (axis=None).
    """
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "averages_scalars", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.averages_scalars = True
    trainer.reduce_per_replica = reduce_per_replica


@contextlib.contextmanager
def scope(strategy: Any) -> Iterator[None]:
    """Where models, optimizers and metrics must be created: the strategy's or distribution's scope."""
    if strategy is None:
        yield
        return
    with strategy.scope():
        yield


def num_replicas(strategy: Any) -> int:
    if strategy is None:
        return 1
    if isinstance(strategy, keras.distribution.DataParallel):
        return int(strategy.device_mesh.shape[0])
    return int(strategy.num_replicas_in_sync)


def worker_id(strategy: Any) -> tuple[str, int] | None:
    """(task type, index) of a non-chief multi-worker process; None on the chief or a single process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None) or type(strategy).__name__ == "TPUStrategy":
        return None
    jobs = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    chief = ("chief", 0) if "chief" in jobs else ("worker", 0)
    return None if (task_type, task_id) == chief else (task_type, task_id)


def write_dir(out: Path, strategy: Any) -> Path:
    """Where this process writes: the run directory on the chief, a temporary folder in it elsewhere."""
    worker = worker_id(strategy)
    return out if worker is None else out / f"workertemp_{worker[0]}_{worker[1]}"


def shard_by_data(dataset: Any) -> Any:
    """The tf.data pipeline sharded by element across workers (AutoShardPolicy.DATA)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def build_for_fit(model: keras.Model, dataset: Any) -> None:
    """Builds a compiled model's metrics, loss and optimizer from `dataset.element_spec`, reading no batch.

    Under a tf.distribute strategy, Keras' `fit` and `evaluate` otherwise read one batch first and average
    it across replicas (the TensorFlow trainer's `_maybe_symbolic_build`): under
    MultiWorkerMirroredStrategy that average fails on the (inputs, targets) structure, and the extra
    pass over a reshuffling pipeline shifts every epoch's batches against a one-device run.
    """
    spec = dataset.element_spec
    model._symbolic_build(data_batch=tuple(spec) if isinstance(spec, (tuple, list)) else spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


class WorkerBackupAndRestore(SeededBackupAndRestore):
    """A non-chief worker's backup: restored from the chief's folder, written to a temporary one it removes.

    Args:
        backup_dir: the chief's backup folder, read when training starts.
        temp_dir: where this worker writes its backup at each epoch's end, then deletes it.
    """

    def __init__(self, backup_dir: str, temp_dir: str):
        super().__init__(backup_dir)
        self.temp_dir = temp_dir

    def _save_model(self):
        chief_paths = self.backup_dir, self._weights_path, self._training_metadata_path
        self.backup_dir = self.temp_dir
        self._weights_path = os.path.join(self.temp_dir, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self.temp_dir, "training_metadata.json")
        try:
            super()._save_model()
        finally:
            self.backup_dir, self._weights_path, self._training_metadata_path = chief_paths
            _remove(self.temp_dir)

    def on_train_end(self, logs=None):
        pass  # The chief deletes its own backup.


def _remove(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
