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
