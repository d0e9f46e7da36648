"""`PerceiverBackbone` through a keras-hub preset and back, on every Keras backend."""

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from perceiver_keras import ImagePreprocessor, PerceiverEncoder, TextPreprocessor  # noqa: E402
from perceiver_keras.hub import PerceiverBackbone  # noqa: E402
from tests.layers.helpers import randomize_weights, to_numpy  # noqa: E402


def _encoder():
    return PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_backbone_round_trips_through_a_preset(modality, tmp_path):
    rng = np.random.default_rng(0)
    if modality == "image":
        backbone = PerceiverBackbone(ImagePreprocessor("pixels", num_bands=2), _encoder(), inputs_shape=(6, 6, 1),
                                     input_name="images")
        inputs = rng.normal(size=(2, 6, 6, 1)).astype("float32")
    else:
        backbone = PerceiverBackbone(TextPreprocessor(262, 16, 8), _encoder(), inputs_shape=(8,), input_dtype="int32",
                                     input_name="token_ids", use_padding_mask=True)
        mask = np.ones((2, 8), "int32")
        mask[1, 5:] = 0
        inputs = {"token_ids": rng.integers(0, 262, size=(2, 8)).astype("int32"), "padding_mask": mask}
    randomize_weights(backbone)
    latents = to_numpy(backbone(inputs))
    assert latents.shape == (2, 4, 16) and np.abs(latents[0] - latents[1]).max() > 1e-3
    backbone.save_to_preset(tmp_path / "preset")
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(loaded, PerceiverBackbone)
    np.testing.assert_array_equal(to_numpy(loaded(inputs)), latents)
    rebuilt = PerceiverBackbone.from_config(backbone.get_config())
    rebuilt.set_weights(backbone.get_weights())
    assert rebuilt.get_config() == backbone.get_config()
    np.testing.assert_array_equal(to_numpy(rebuilt(inputs)), latents)
