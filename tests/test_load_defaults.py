"""A run's model.keras loads with Keras' defaults in a fresh process after `import perceiver_keras` alone.

Each task trains one toy run; a fresh interpreter then does exactly what a user does,
`import perceiver_keras, keras; keras.saving.load_model(path)` (compile=True), for the run's
model.keras and checkpoints/last.keras, and must reproduce the trained model's outputs, its
`evaluate`, its optimizer state, and continue `fit`.
"""

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import perceiver_keras
from export import export_model
from zoo import registry, training

pytestmark = [pytest.mark.tensorflow_only,  # the masked LM's in-fit validation warns as in its own tests
              pytest.mark.filterwarnings("ignore:Your input ran out of data")]

_LANGUAGE = dict(num_self_attention_layers_per_block=1, embedding_channels=32, num_latents=8, num_latent_channels=32,
                 qk_channels=16, v_channels=32)
_SHORT = dict(epochs=1, steps_per_epoch=2, tensorboard=False, verbose=0)
RUNS = {  # task: (preset, model overrides, training options)
    "image_classification": ("digits", dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_bands=2,
                                            num_self_attention_layers_per_block=1, num_self_attention_heads=2),
                             dict(batch_size=16, take=64)),
    "masked_language_modeling": ("pydoc_mlm", dict(_LANGUAGE, decoder_qk_channels=16), dict(batch_size=4, eval_take=8)),
    "text_classification": ("source_type", _LANGUAGE, dict(batch_size=8, take=40, eval_take=16)),
    "optical_flow": ("flow_small", dict(frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8,
                                        num_latent_channels=16, num_self_attention_layers_per_block=1,
                                        num_self_attention_heads=2),
                     dict(batch_size=4, decoded_pixels=32, eval_take=8)),
    "multimodal_autoencoding": ("multimodal_small", dict(
        num_frames=2, frame_size=(8, 8), num_audio_samples=64, num_classes=5, samples_per_patch=16, image_num_bands=2,
        audio_num_bands=3, input_padding=4, label_query_channels=6, num_latents=4, num_latent_channels=16,
        num_self_attention_layers_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2,
        decoder_num_heads=1, decoder_output_channels=8), dict(batch_size=4, decoded_pixels=16, decoded_audio_patches=2,
                                                              take=16, eval_take=8)),
}

# What a user runs, plus the checks: outputs, evaluate, optimizer state, one more `fit` step.
_LOAD_IN_A_FRESH_PROCESS = """
import pickle, sys
import perceiver_keras, keras
import numpy as np

jobs = pickle.load(open(sys.argv[1], "rb"))
results = {}
for path, (x, y, sample_weight) in jobs.items():
    m = keras.saving.load_model(path)
    size = len(keras.tree.flatten(x)[0])
    found = {"outputs": keras.tree.map_structure(keras.ops.convert_to_numpy, m(x, training=False)),
             "optimizer": [keras.ops.convert_to_numpy(v) for v in m.optimizer.variables]}
    m.run_eagerly = True  # the same compiled loss, metrics and optimizer, without seconds of graph tracing
    found["evaluate"] = m.evaluate(x, y, sample_weight=sample_weight, batch_size=size, return_dict=True, verbose=0)
    history = m.fit(x, y, sample_weight=sample_weight, batch_size=size, epochs=1, verbose=0, shuffle=False)
    found.update(fit_loss=history.history["loss"][-1], iterations_after_fit=int(m.optimizer.iterations))
    results[path] = found
results["modules"] = sorted(name for name in sys.modules if name.split(".")[0] in ("zoo", "export"))
pickle.dump(results, open(sys.argv[2], "wb"))
"""


def _numpy(tree):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tree)


def _first_batch(run: dict):
    """(x, y, sample_weight) of the run's first training batch, as numpy."""
    preset = training.with_overrides(registry.get_preset(run["preset"]), run["model_overrides"])
    options = run["options"]
    train_ds, _ = registry.get_recipe(run["task"]).datasets(preset, options["batch_size"], options["seed"], options)
    element = _numpy(next(iter(train_ds)))
    return (*element, None) if len(element) == 2 else tuple(element)


def _expected(model: keras.Model, batch) -> dict:
    x, y, sample_weight = batch
    size = len(keras.tree.flatten(x)[0])
    return {"outputs": _numpy(model(x, training=False)),
            "optimizer": [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables],
            "evaluate": model.evaluate(x, y, sample_weight=sample_weight, batch_size=size, return_dict=True, verbose=0),
            "iterations": int(model.optimizer.iterations)}


def _load_in_fresh_process(jobs: dict, tmp: Path) -> dict:
    """Runs `_LOAD_IN_A_FRESH_PROCESS` on {path: (x, y, sample_weight)}; its results by path."""
    with open(tmp / "jobs.pkl", "wb") as f:
        pickle.dump({str(path): batch for path, batch in jobs.items()}, f)
    done = subprocess.run([sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, str(tmp / "jobs.pkl"), str(tmp / "out.pkl")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp / "out.pkl", "rb") as f:
        return pickle.load(f)


def _eagerly(method):
    """`method` with `run_eagerly` set first; the compile config, and so the saved file, are unchanged."""
    def eager(self, *args, **kwargs):
        self.run_eagerly = True
        return method(self, *args, **kwargs)
    return eager


def _train(task: str, out: Path) -> tuple[keras.Model, dict]:
    """Trains the task's toy run into `out`; the trained model as it was saved, and run.json."""
    preset, overrides, options = RUNS[task]
    saved = []
    with pytest.MonkeyPatch.context() as patch:
        save = training.save_model_atomically
        patch.setattr(training, "save_model_atomically", lambda model, path: (saved.append(model), save(model, path)))
        for method in ("fit", "evaluate"):  # eagerly: tracing the graphs would take most of the test's time
            patch.setattr(keras.Model, method, _eagerly(getattr(keras.Model, method)))
        run = training.train(task, preset, out, model_overrides=overrides, **options, **_SHORT)
    return saved[0], run


_CUSTOM = ("FlatCosineSchedule", "EndPointErrorLoss", "EndPointError", "PeakSignalToNoiseRatio", "MatthewsCorrelation",
           "BinaryF1", "PearsonCorrelation", "SpearmanCorrelation")


def _compiled_with_every_custom_object() -> keras.Model:
    """A toy model compiled with the schedule, the loss and every metric `perceiver_keras` registers."""
    inputs = keras.Input((3,))
    outputs = {"flow": keras.layers.Dense(2, name="flow")(inputs), "label": keras.layers.Dense(2, name="label")(inputs),
               "score": keras.layers.Dense(1, name="score")(inputs)}
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.AdamW(perceiver_keras.FlatCosineSchedule(1e-2, total_steps=10)),
        loss={"flow": perceiver_keras.EndPointErrorLoss(2.0), "label": "sparse_categorical_crossentropy",
              "score": "mse"},
        metrics={"flow": [perceiver_keras.EndPointError(2.0), perceiver_keras.PeakSignalToNoiseRatio(2.0)],
                 "label": [perceiver_keras.MatthewsCorrelation(2), perceiver_keras.BinaryF1()],
                 "score": [perceiver_keras.PearsonCorrelation(), perceiver_keras.SpearmanCorrelation(capacity=16)]})
    model.run_eagerly = True  # not part of the compile config: the saved file is as without it
    return model


def _save_current_and_former(tmp: Path) -> tuple[keras.Model, tuple]:
    """The toy model trained one step, saved as current.keras and, under the zoo's former names, former.keras."""
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(8, 3)).astype("float32"),
             {"flow": rng.normal(size=(8, 2)).astype("float32"), "label": np.arange(8) % 2,
              "score": rng.normal(size=(8, 1)).astype("float32")}, None)
    model = _compiled_with_every_custom_object()
    model.fit(*batch[:2], batch_size=8, verbose=0)
    model.save(tmp / "current.keras")
    try:  # registered as the zoo registered them before they moved into perceiver_keras
        for name in _CUSTOM:
            keras.saving.register_keras_serializable(package="zoo")(getattr(perceiver_keras, name))
        model.save(tmp / "former.keras")
    finally:
        for name in _CUSTOM:
            keras.saving.register_keras_serializable(package="perceiver_keras")(getattr(perceiver_keras, name))
    return model, batch


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Every file below, loaded in one fresh process: {name: (path, expected, found)}.

    Each task's toy run (model.keras and checkpoints/last.keras); the digits model saved again after
    `export_model`; a toy model using every registered schedule, loss and metric, saved under the
    current and the zoo's former registered names.
    """
    tmp = tmp_path_factory.mktemp("load_defaults")
    files = {}  # name: (path, model, batch)
    for task in RUNS:
        model, run = _train(task, tmp / task)
        batch = _first_batch(run)
        files[task] = (tmp / task / "model.keras", model, batch)
        files[f"{task}/last"] = (tmp / task / "checkpoints" / "last.keras", model, batch)
        if task == "image_classification":
            export_model(model, tmp / "export", quantizations=("float32",), eval_data=batch[:2], latency_runs=0,
                         accelerators=False)
            model.save(tmp / "exported.keras")
            files["exported"] = (tmp / "exported.keras", model, batch)
    model, batch = _save_current_and_former(tmp)
    files.update(current=(tmp / "current.keras", model, batch), former=(tmp / "former.keras", model, batch))
    expected = {name: _expected(model, batch) for name, (_, model, batch) in files.items()}
    found = _load_in_fresh_process({path: batch for path, _, batch in files.values()}, tmp)
    return {name: (path, expected[name], found[str(path)]) for name, (path, _, _) in files.items()}, found["modules"]


def test_the_fresh_process_imported_neither_zoo_nor_export(loaded):
    assert loaded[1] == []


@pytest.mark.parametrize("name", [*(f"{task}{last}" for task in RUNS for last in ("", "/last")), "exported", "current",
                                  "former"])
def test_saved_model_loads_compiled_with_its_state(loaded, name):
    _, want, got = loaded[0][name]
    keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-5),
                             want["outputs"], got["outputs"])
    assert len(got["optimizer"]) == len(want["optimizer"]) > 2  # iterations, learning rate, moments
    for a, b in zip(want["optimizer"], got["optimizer"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
    assert got["evaluate"].keys() == want["evaluate"].keys()
    for metric, value in want["evaluate"].items():
        assert got["evaluate"][metric] == pytest.approx(value, rel=1e-5, abs=1e-6), metric
    assert np.isfinite(got["fit_loss"]) and got["iterations_after_fit"] == want["iterations"] + 1


def test_the_former_file_names_the_zoo_classes(loaded):
    for name, package in (("current", "perceiver_keras"), ("former", "zoo")):
        config = zipfile.ZipFile(loaded[0][name][0]).read("config.json").decode()
        assert all(f'"{package}>{cls}"' in config for cls in _CUSTOM), name


def test_load_model_names_the_file_it_cannot_load(tmp_path):
    saved = tmp_path / "model.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(saved)
    data = saved.read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    damaged = bytearray(data)
    weights = zipfile.ZipFile(saved).getinfo("model.weights.h5")
    start = weights.header_offset + 30 + len("model.weights.h5") + 100  # inside the stored weights
    damaged[start:start + 64] = bytes(64)
    (tmp_path / "damaged.keras").write_bytes(bytes(damaged))
    (tmp_path / "model.txt").write_text("not a model")
    cases = {tmp_path / "missing.keras": (FileNotFoundError, "No model file at"),
             tmp_path / "model.txt": (ValueError, "Expected a .keras file"),
             tmp_path: (ValueError, "it holds .*model.keras: pass that file"),
             tmp_path / "truncated.keras": (ValueError, "truncated or damaged"),
             tmp_path / "damaged.keras": (ValueError, "damaged .keras archive .*Bad CRC-32")}
    for path, (error, message) in cases.items():
        with pytest.raises(error, match=message) as caught:
            perceiver_keras.load_model(path)
        assert str(path) in str(caught.value)
    assert perceiver_keras.load_model(saved).count_params() == 3
    assert keras.saving.load_model.__module__.startswith("keras.")  # Keras' own function is left as it is

