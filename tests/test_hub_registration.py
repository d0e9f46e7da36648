"""A fresh process: `import perceiver_keras` costs no keras-hub import, yet keras-hub's from_preset finds our classes."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("keras_hub")

from tests.hub_fixtures import toy_model  # noqa: E402

pytestmark = pytest.mark.tensorflow_only


def test_keras_hub_finds_the_classes_after_import_perceiver_keras(tmp_path):
    toy_model("digits").save_to_preset(tmp_path / "digits")
    toy_model("pydoc_mlm").save_to_preset(tmp_path / "mlm")
    script = textwrap.dedent(f"""
        import sys
        import perceiver_keras
        assert "keras_hub" not in sys.modules, "import perceiver_keras imported keras_hub"
        import keras_hub
        assert type(keras_hub.models.Backbone.from_preset({str(tmp_path / 'digits')!r})).__name__ == "PerceiverBackbone"
        assert type(keras_hub.models.ImageClassifier.from_preset({str(tmp_path / 'digits')!r})).__name__ == (
            "PerceiverImageClassifier")
        classifier = keras_hub.models.TextClassifier.from_preset({str(tmp_path / 'mlm')!r}, num_classes=3)
        assert type(classifier).__name__ == "PerceiverTextClassifier" and classifier.num_classes == 3
        assert type(keras_hub.models.MaskedLM.from_preset({str(tmp_path / 'mlm')!r})).__name__ == "PerceiverMaskedLM"
        assert type(perceiver_keras.PerceiverBackbone).__name__ == "type"
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_stand_ins_name_every_class_perceiver_keras_hub_registers():
    import keras

    import perceiver_keras.hub  # noqa: F401
    from perceiver_keras import _hub_registration

    registered = {name.split(">", 1)[1] for name, obj in keras.saving.get_custom_objects().items()
                  if name.startswith("perceiver_keras>") and obj.__module__.startswith("perceiver_keras.hub")}
    registered |= {"ByteTokenizer"}  # perceiver_keras.byte_tokenizer, which perceiver_keras.hub imports
    assert set(_hub_registration.HUB_CLASSES) == registered


def test_a_saved_keras_hub_task_loads_with_keras_defaults_after_import_perceiver_keras(tmp_path):
    """`task.save("task.keras")`, then a fresh process: `import perceiver_keras` and `keras.saving.load_model`."""
    import numpy as np

    toy_model("digits").save_to_preset(tmp_path / "digits")
    save = textwrap.dedent(f"""
        import numpy as np
        import keras_hub, perceiver_keras
        task = keras_hub.models.ImageClassifier.from_preset({str(tmp_path / 'digits')!r})
        task.save({str(tmp_path / 'task.keras')!r})
        images = np.random.default_rng(0).uniform(0, 16, (2, 8, 8, 1)).astype("float32")
        np.savez({str(tmp_path / 'expected.npz')!r}, images=images, logits=task.predict(images, verbose=0))
    """)
    load = textwrap.dedent(f"""
        import sys
        import numpy as np
        import keras, perceiver_keras
        assert "keras_hub" not in sys.modules
        task = keras.saving.load_model({str(tmp_path / 'task.keras')!r})
        assert type(task).__name__ == "PerceiverImageClassifier", type(task)
        data = np.load({str(tmp_path / 'expected.npz')!r})
        np.save({str(tmp_path / 'actual.npy')!r}, task.predict(data["images"], verbose=0))
    """)
    for script in (save, load):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.returncode == 0, result.stderr[-3000:]
    expected = np.load(tmp_path / "expected.npz")["logits"]
    np.testing.assert_allclose(np.load(tmp_path / "actual.npy"), expected, atol=1e-5)
