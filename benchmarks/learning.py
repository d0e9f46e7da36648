"""Learning parity: the same digits classifier trained by Keras' `model.fit` and by a PyTorch loop.

Both sides train transformers' `PerceiverForImageClassificationLearned` architecture, reduced to
8x8 digits: ours built by `zoo.convert.from_transformers` and re-created with `from_config`, so it
starts from perceiver_keras' own initialisation; theirs the transformers model with its own
`_init_weights`. Data (the zoo's digits split and normalisation), batch order, loss, AdamW with its
schedule, decayed-parameter set, batch size and steps are the same; dropout is off and there is no
augmentation. Every run is a fresh worker process (`harness.run_worker`) with the same thread count.

A preparation worker (TensorFlow and torch in one process) writes the data and the reference
config, and checks the set-up: equal parameter counts, the converted model's forward pass, equal
decayed-parameter sizes, equal learning rates per step, and three AdamW steps from the same weights
landing on the same logits. The figures are the final test accuracy and loss per seed.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

# The two image heads of transformers, reduced to 8x8 digits. The learned head fixes a 1x1 conv to
# 256 channels and 256 trainable position channels (d_model = 512); the Fourier head concatenates the
# pixels with fixed 2D Fourier features (64 bands, max_resolution 224: d_model = 3 + 2 * (2 * 64 + 1)).
LATENT_CONFIG = dict(
    image_size=8, num_labels=10, num_latents=32, d_latents=64, qk_channels=64, v_channels=64,
    num_blocks=1, num_self_attends_per_block=4, num_self_attention_heads=4, num_cross_attention_heads=1,
    attention_probs_dropout_prob=0.0,
)
HEADS = {
    "learned": ("PerceiverForImageClassificationLearned", dict(LATENT_CONFIG, d_model=512)),
    "fourier": ("PerceiverForImageClassificationFourier", dict(LATENT_CONFIG, d_model=261)),
}
TIMEOUT_S = 3600


def warmup_cosine(step: int, learning_rate: float, total_steps: int, warmup_steps: int) -> float:
    """`zoo.schedules.FlatCosineSchedule(flat_fraction=0)` in plain Python: torch's per-step rate."""
    warmup = min(1.0, (step + 1.0) / max(1.0, float(warmup_steps)))
    progress = min(1.0, max(0.0, (step - warmup_steps) / max(1.0, total_steps - warmup_steps)))
    return learning_rate * warmup * 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_indices(seed: int, num_examples: int, batch_size: int, steps: int) -> np.ndarray:
    """(steps, batch_size) training-example indices: seeded per-epoch permutations, read in order."""
    rng = np.random.default_rng(seed)
    epochs = math.ceil(steps * batch_size / num_examples)
    order = np.concatenate([rng.permutation(num_examples) for _ in range(epochs)])
    return order[:steps * batch_size].reshape(steps, batch_size)


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # Only settable before torch's first parallel work.
        pass


def _set_tensorflow_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def torch_no_decay(model) -> list:
    """The torch parameters `zoo.schedules.no_decay_variables` excludes on our side: biases,
    normalisation parameters and trainable position encodings (input positions and the query)."""
    import torch
    from transformers.models.perceiver.modeling_perceiver import PerceiverTrainablePositionEncoding

    excluded = {id(p): p for name, p in model.named_parameters() if name.endswith("bias")}
    for module in model.modules():
        if isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)):
            excluded.update({id(p): p for p in module.parameters()})
        if isinstance(module, PerceiverTrainablePositionEncoding):
            excluded[id(module.position_embeddings)] = module.position_embeddings
    return list(excluded.values())


def torch_optimizer(model, settings: dict[str, Any]):
    """AdamW with the Keras side's betas and epsilon, the same no-decay set, and a per-step LambdaLR."""
    import torch

    no_decay = {id(p) for p in torch_no_decay(model)}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in no_decay], "weight_decay": settings["weight_decay"]},
        {"params": [p for p in model.parameters() if id(p) in no_decay], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings["learning_rate"], betas=tuple(settings["betas"]),
                                  eps=settings["epsilon"])
    rate = lambda step: warmup_cosine(step, settings["learning_rate"], settings["steps"],  # noqa: E731
                                      settings["warmup_steps"]) / settings["learning_rate"]
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, rate)


def keras_compile(model, settings: dict[str, Any]) -> None:
    """The zoo's AdamW (`zoo.schedules.make_optimizer`: warm-up + cosine, no decay on biases, norms
    and position encodings), sparse cross-entropy on the logits, accuracy."""
    import keras

    from zoo.schedules import make_optimizer

    optimizer = make_optimizer(model, "adamw", settings["learning_rate"], settings["weight_decay"], "cosine",
                               total_steps=settings["steps"], warmup_steps=settings["warmup_steps"])
    if settings.get("epsilon") is not None:  # Read when the train step is traced, so it may be set now.
        optimizer.epsilon = settings["epsilon"]
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def _pixels(images: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def prepare_job(job: dict[str, Any]) -> dict[str, Any]:
    """Writes digits.npz and the reference config to the job's folder and checks the set-up."""
    import torch
    import transformers

    from zoo.convert import from_transformers
    from zoo.image_classification.data import NORMALIZATION, load_digits_arrays
    from zoo.schedules import no_decay_variables

    _set_tensorflow_threads(job["threads"])
    _set_torch_threads(job["threads"])
    folder, settings = Path(job["folder"]), job["settings"]
    (mean,), (std,) = NORMALIZATION["digits"]
    arrays = {}
    for split in ("train", "test"):
        images, labels = load_digits_arrays(split)
        # transformers' image preprocessors take 3 channels: the grey channel is repeated, both sides.
        arrays[f"x_{split}"] = np.repeat((images / 16.0 - mean) / std, 3, axis=-1).astype("float32")
        arrays[f"y_{split}"] = labels.astype("int64")
    np.savez(folder / "digits.npz", **arrays)

    torch.manual_seed(0)
    reference = getattr(transformers, job["head"])(transformers.PerceiverConfig(**job["config"])).eval()
    reference.save_pretrained(folder / "reference")
    ours = from_transformers(folder / "reference")
    x = arrays["x_test"][:64]
    with torch.no_grad():
        expected = reference(pixel_values=_pixels(x)).logits.numpy()
    forward_diff = float(np.abs(np.asarray(ours(x)) - expected).max())

    keras_compile(ours, settings)
    optimizer = ours.optimizer
    settings = dict(settings, betas=[float(optimizer.beta_1), float(optimizer.beta_2)],
                    epsilon=float(optimizer.epsilon))  # The zoo's (Keras') defaults unless the run set epsilon.
    schedule = optimizer._learning_rate  # The schedule object (`.learning_rate` is its current value).
    steps = sorted({0, 1, settings["warmup_steps"], settings["steps"] // 2, settings["steps"] - 1})
    schedule_diff = max(abs(float(schedule(s)) - warmup_cosine(s, settings["learning_rate"], settings["steps"],
                                                               settings["warmup_steps"])) for s in steps)
    # Three steps of each optimizer from the same weights on the same batches (no warm-up, so the
    # weights move by about 3 learning rates): the same update rule lands on the same logits. Once
    # with the run's epsilon, once with 1e-12, where Adam adds epsilon no longer matters.
    ours_start, reference_start = ours.get_weights(), copy.deepcopy(reference.state_dict())
    after, diffs = None, {}
    for name, epsilon in (("three_steps", settings["epsilon"]), ("three_steps_tiny_epsilon", 1e-12)):
        ours.set_weights(ours_start)
        reference.load_state_dict(reference_start)
        check_settings = dict(settings, warmup_steps=0, epsilon=epsilon)
        keras_compile(ours, check_settings)
        torch_opt, torch_schedule = torch_optimizer(reference.train(), check_settings)
        for step in range(3):
            batch = slice(16 * step, 16 * step + 16)
            ours.train_on_batch(arrays["x_train"][batch], arrays["y_train"][batch])
            torch_opt.zero_grad()
            torch.nn.functional.cross_entropy(reference(pixel_values=_pixels(arrays["x_train"][batch])).logits,
                                              torch.from_numpy(arrays["y_train"][batch])).backward()
            torch_opt.step()
            torch_schedule.step()
        with torch.no_grad():
            after = reference.eval()(pixel_values=_pixels(x)).logits.numpy()
        diffs[f"{name}_max_abs_diff"] = float(np.abs(np.asarray(ours(x)) - after).max())
    return {
        "parameters": {"torch": sum(p.numel() for p in reference.parameters()), "keras": ours.count_params()},
        "no_decay_parameters": {"torch": sum(p.numel() for p in torch_no_decay(reference)),
                                "keras": sum(int(np.prod(v.shape)) for v in no_decay_variables(ours))},
        "forward_max_abs_diff": forward_diff, "forward_max_abs_logit": float(np.abs(expected).max()),
        "schedule_max_abs_diff": schedule_diff,
        **diffs, "three_steps_max_abs_logit": float(np.abs(after).max()),
        "three_steps_logit_change": float(np.abs(after - expected).max()),
        "betas": settings["betas"], "epsilon": settings["epsilon"],
        "train_examples": int(len(arrays["y_train"])), "test_examples": int(len(arrays["y_test"])),
    }


def torch_job(job: dict[str, Any]) -> dict[str, Any]:
    """One seed of transformers' model (its own initialisation) trained by a plain PyTorch loop."""
    import torch
    import transformers

    _set_torch_threads(job["threads"])
    folder, settings, seed = Path(job["folder"]), job["settings"], job["seed"]
    data = dict(np.load(folder / "digits.npz"))
    torch.manual_seed(seed)
    model = getattr(transformers, job["head"])(transformers.PerceiverConfig.from_pretrained(folder / "reference"))
    if job.get("keras_start") == "torch":  # The Keras run of this seed starts from these weights.
        model.save_pretrained(folder / f"torch_start_{seed}")
    optimizer, schedule = torch_optimizer(model, settings)
    x_train, y_train = torch.from_numpy(data["x_train"].transpose(0, 3, 1, 2).copy()), torch.from_numpy(data["y_train"])
    x_test, y_test = _pixels(data["x_test"]), torch.from_numpy(data["y_test"])

    def evaluate() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            logits = model(pixel_values=x_test).logits
        model.train()
        return (torch.nn.functional.cross_entropy(logits, y_test).item(),
                (logits.argmax(-1) == y_test).float().mean().item())

    curves = _empty_curves()
    _record_eval(curves, 0, *evaluate())
    durations, interval_losses = [], []
    model.train()
    for step, indices in enumerate(batch_indices(seed, len(y_train), settings["batch_size"], settings["steps"]), 1):
        start = time.perf_counter()
        index = torch.from_numpy(indices)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(pixel_values=x_train[index]).logits, y_train[index])
        loss.backward()
        optimizer.step()
        schedule.step()
        interval_losses.append(loss.item())
        durations.append(time.perf_counter() - start)
        if step % settings["eval_every"] == 0:
            curves["train_steps"].append(step)
            curves["train_loss"].append(float(np.mean(interval_losses)))
            interval_losses = []
            _record_eval(curves, step, *evaluate())
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    return _result(curves, durations, sum(p.numel() for p in model.parameters()), len(dropouts), job)


def keras_job(job: dict[str, Any]) -> dict[str, Any]:
    """One seed of our model (perceiver_keras' own initialisation) trained by `model.fit` on tf.data."""
    import keras
    import tensorflow as tf

    from zoo.convert import from_transformers

    _set_tensorflow_threads(job["threads"])
    folder, settings, seed = Path(job["folder"]), job["settings"], job["seed"]
    data = dict(np.load(folder / "digits.npz"))
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(seed)
    if job.get("keras_start") == "torch":
        model = from_transformers(folder / f"torch_start_{seed}")
    else:
        converted = from_transformers(folder / "reference")  # The architecture; its weights are then dropped.
        model = type(converted).from_config(converted.get_config())
    keras_compile(model, settings)
    x_train, y_train = tf.constant(data["x_train"]), tf.constant(data["y_train"].astype("int32"))
    indices = batch_indices(seed, len(data["y_train"]), settings["batch_size"], settings["steps"])
    train = tf.data.Dataset.from_tensor_slices(indices).map(
        lambda index: (tf.gather(x_train, index), tf.gather(y_train, index))).prefetch(2)
    test = tf.data.Dataset.from_tensor_slices((data["x_test"], data["y_test"].astype("int32"))).batch(
        len(data["y_test"])).cache()

    curves = _empty_curves()
    initial = model.evaluate(test, verbose=0, return_dict=True)
    _record_eval(curves, 0, initial["loss"], initial["accuracy"])
    timer, recorder = _keras_callbacks(curves, settings["eval_every"])
    model.fit(train, epochs=settings["steps"] // settings["eval_every"], steps_per_epoch=settings["eval_every"],
              validation_data=test, verbose=0, callbacks=[timer, recorder])
    dropouts = [layer for layer in model._flatten_layers()
                if isinstance(layer, keras.layers.Dropout) and layer.rate > 0]
    result = _result(curves, timer.durations, model.count_params(), len(dropouts), job)
    return dict(result, jit_compile=bool(model.jit_compile))


def _keras_callbacks(curves: dict[str, list], eval_every: int) -> tuple:
    """A callback timing each `fit` batch, and one turning epoch-end logs into the curves (an epoch
    is `eval_every` steps: its loss is their mean, then `fit` evaluates the test split)."""
    import keras

    class CurveRecorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            step = (epoch + 1) * eval_every
            curves["train_steps"].append(step)
            curves["train_loss"].append(float(logs["loss"]))
            _record_eval(curves, step, logs["val_loss"], logs["val_accuracy"])

    return harness.step_timer(), CurveRecorder()


def _empty_curves() -> dict[str, list]:
    return {"eval_steps": [], "test_loss": [], "test_accuracy": [], "train_steps": [], "train_loss": []}


def _record_eval(curves: dict[str, list], step: int, loss: float, accuracy: float) -> None:
    curves["eval_steps"].append(step)
    curves["test_loss"].append(float(loss))
    curves["test_accuracy"].append(float(accuracy))


def _result(curves: dict[str, list], durations: list[float], parameters: int, dropouts: int,
            job: dict[str, Any]) -> dict[str, Any]:
    timed = durations[min(10, len(durations) - 1):]  # The first steps trace, compile and warm caches.
    return {
        "seed": job["seed"], "final_test_accuracy": curves["test_accuracy"][-1],
        "final_test_loss": curves["test_loss"][-1], "final_train_loss": curves["train_loss"][-1],
        "curves": curves, "median_step_s": float(np.median(timed)), "first_step_s": durations[0],
        "train_s": float(np.sum(durations)), "parameters": int(parameters), "active_dropout_layers": dropouts,
        "threads": job["threads"],
    }


def _commit() -> dict[str, Any]:
    """The commit measured, and whether the code the runs import differs from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            # Trailing whitespace only: porcelain lines start with a status column that may be a space.
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--", "perceiver_keras", "zoo", "benchmarks/learning.py").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown", "uncommitted": [c[3:] for c in changed]}


def run(out_dir: Path, *, steps: int = 1000, seeds: tuple[int, ...] = (0, 1, 2), batch_size: int = 64,
        learning_rate: float = 1e-3, weight_decay: float = 0.05, warmup_fraction: float = 0.1,
        epsilon: float | None = None, eval_every: int = 50, threads: int = 1, keras_start: str = "own",
        head: str = "learned", page: str = "learning", command: str = "python -m benchmarks learning") -> Path:
    """Trains every seed in both frameworks; writes PAGE.json after each run, then PAGE.md and
    PAGE.png; returns the page's path.

    `keras_start="torch"` is a control: Keras starts from the torch run's initial weights of the same
    seed (converted with `from_transformers`) instead of its own initialisation.

    One thread per framework by default: on shared cores, torch's OpenMP threads wait on each other
    and a contended two-thread run can take many times as long.
    """
    from benchmarks import learning_report

    if head not in HEADS:
        raise ValueError(f"Expected head one of {sorted(HEADS)}. Received: head={head!r}")
    head_class, config = HEADS[head]
    if keras_start not in ("own", "torch"):
        raise ValueError(f"Expected keras_start 'own' or 'torch'. Received: keras_start={keras_start!r}")
    if (threads < 1 or steps < 1 or batch_size < 1 or eval_every < 1 or steps % eval_every or not seeds
            or not 0 <= warmup_fraction < 1):
        raise ValueError(
            "Expected threads >= 1, steps >= 1, batch_size >= 1, eval_every >= 1 dividing steps, at least one "
            f"seed and 0 <= warmup_fraction < 1. Received: steps={steps}, batch_size={batch_size}, "
            f"eval_every={eval_every}, seeds={list(seeds)}, warmup_fraction={warmup_fraction}, threads={threads}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = dict(steps=steps, batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                    warmup_steps=round(steps * warmup_fraction), eval_every=eval_every, epsilon=epsilon)
    results: dict[str, Any] = {
        "command": command, "head": head_class, "config": config, "settings": settings, "threads": threads,
        "seeds": list(seeds), "keras_start": keras_start, "code": _commit(), "cpu": harness.cpu_description(),
        "versions": harness.versions(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": {"torch": {}, "keras": {}},
    }
    json_path = out_dir / f"{page}.json"

    def save() -> None:
        harness.write_page(json_path, json.dumps(results, indent=1))

    env = {"OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="perceiver-learning-") as folder:
        job = dict(folder=folder, threads=threads, settings=settings, config=config, head=head_class,
                   keras_start=keras_start)
        results["check"] = harness.run_worker(dict(job, run="benchmarks.learning:prepare_job"), TIMEOUT_S, env=env)
        save()
        if "error" in results["check"]:
            raise RuntimeError(f"The preparation worker failed: {results['check']['error']}")
        job["settings"] = dict(settings, betas=results["check"]["betas"], epsilon=results["check"]["epsilon"])
        for seed in seeds:  # Frameworks alternate, so a change in the machine's load hits both alike.
            for framework in ("torch", "keras"):  # torch first: a `keras_start="torch"` run needs its weights.
                print(f"learning: {framework} seed {seed} ...", flush=True)
                result = harness.run_worker(dict(job, seed=seed, run=f"benchmarks.learning:{framework}_job"),
                                            TIMEOUT_S, env=env)
                results["runs"][framework][str(seed)] = result
                save()
                print(f"learning: {framework} seed {seed}: "
                      + (result.get("error") or f"test accuracy {result['final_test_accuracy']:.4f}"), flush=True)
    learning_report.plot(results, out_dir / f"{page}.png")
    return harness.write_page(out_dir / f"{page}.md", learning_report.page(results, image=f"{page}.png"))
