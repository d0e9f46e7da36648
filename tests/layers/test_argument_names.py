"""One name, one meaning: `input_channels` is read, `output_channels` produced; former names still load."""

import json
import zipfile

import keras
import numpy as np
import pytest

from perceiver_keras import (
    AudioPreprocessor,
    ClassificationPostprocessor,
    FlowPreprocessor,
    FourierPositionEncoding,
    FourierQuery,
    ImagePreprocessor,
    MultimodalPreprocessor,
    MultimodalQuery,
    OneHotPreprocessor,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    TextPreprocessor,
    TrainablePositionEncoding,
    VideoPreprocessor,
)

from .helpers import TOLERANCE, to_numpy

# Current name -> the name a layer's config held before the rename.
FORMER_NAMES = {
    "FlowPreprocessor": {"input_channels": "num_channels", "patch_projection_channels": "out_channels"},
    "VideoPreprocessor": {"input_channels": "num_channels"},
    "ImagePreprocessor": {"conv_channels": "out_channels"},
    "TextPreprocessor": {"output_channels": "num_channels"},
    "TrainablePositionEncoding": {"encoding_channels": "num_channels"},
}
LAYERS = {
    "FlowPreprocessor": lambda: FlowPreprocessor(patch_projection_channels=4, num_bands=2, input_channels=1),
    "VideoPreprocessor": lambda: VideoPreprocessor(2, (4, 4), input_channels=1, num_bands=2),
    "ImagePreprocessor": lambda: ImagePreprocessor("conv1x1", conv_channels=4, num_bands=2),
    "TextPreprocessor": lambda: TextPreprocessor(vocab_size=7, output_channels=4, max_length=3),
    "TrainablePositionEncoding": lambda: TrainablePositionEncoding(3, encoding_channels=4, projection_channels=5),
}
INPUTS = {
    "FlowPreprocessor": np.ones((2, 2, 3, 4, 1), "float32"),
    "VideoPreprocessor": np.ones((2, 2, 4, 4, 1), "float32"),
    "ImagePreprocessor": np.ones((2, 4, 4, 3), "float32"),
    "TextPreprocessor": np.ones((2, 3), "int32"),
    "TrainablePositionEncoding": np.ones((2, 1), "float32"),
}


def with_former_names(config):
    """A saved config (nested dicts and lists) as it was written before the rename."""
    if isinstance(config, list):
        return [with_former_names(c) for c in config]
    if not isinstance(config, dict):
        return config
    renames = FORMER_NAMES.get(config.get("class_name"), {})
    config = {key: with_former_names(value) for key, value in config.items()}
    if renames and isinstance(config.get("config"), dict):
        config["config"] = {renames.get(key, key): value for key, value in config["config"].items()}
    return config


@pytest.mark.parametrize("name", FORMER_NAMES)
def test_config_with_former_names_loads(name):
    layer = LAYERS[name]()
    config = layer.get_config()
    former = with_former_names({"class_name": name, "config": config})["config"]
    assert set(FORMER_NAMES[name].values()) <= set(former) and not set(FORMER_NAMES[name]) & set(former)
    assert type(layer).from_config(former).get_config() == config
    both = {**former, **{current: config[current] for current in FORMER_NAMES[name]}}
    with pytest.raises(ValueError, match="both"):
        type(layer).from_config(both)


def test_model_keras_saved_before_the_rename_loads(tmp_path):
    model = PerceiverIO(
        preprocessor=TextPreprocessor(vocab_size=7, output_channels=8, max_length=5),
        encoder=PerceiverEncoder(2, 8, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
        decoder=PerceiverDecoder(output_channels=3), query=TrainablePositionEncoding(1, encoding_channels=8),
        postprocessor=ClassificationPostprocessor(), inputs_shape=(5,), input_dtype="int32", input_name="token_ids")
    ids = np.arange(10, dtype="int32").reshape(2, 5) % 7
    path = tmp_path / "model.keras"
    model.save(path)
    old = tmp_path / "before_rename.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(with_former_names(json.loads(data))).encode()
                assert b'"num_channels"' in data and b'"encoding_channels"' not in data
            target.writestr(item, data)
    loaded = keras.saving.load_model(old)
    assert loaded.preprocessor.output_channels == 8 and loaded.query.encoding_channels == 8
    np.testing.assert_allclose(to_numpy(loaded(ids)), to_numpy(model(ids)), **TOLERANCE)


def test_keras_hub_preset_saved_before_the_rename_loads(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    from perceiver_keras.hub import PerceiverBackbone

    backbone = PerceiverBackbone(
        FlowPreprocessor(patch_projection_channels=4, num_bands=2, input_channels=1),
        PerceiverEncoder(2, 8, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
        inputs_shape=(2, 3, 4, 1), input_name="frames")
    frames = np.random.default_rng(0).normal(size=(2, 2, 3, 4, 1)).astype("float32")
    backbone.save_to_preset(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(with_former_names(config)))
    assert '"out_channels"' in (tmp_path / "config.json").read_text()
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert loaded.input_adapter.get_config() == backbone.input_adapter.get_config()
    np.testing.assert_allclose(to_numpy(loaded(frames)), to_numpy(backbone(frames)), **TOLERANCE)


def _multimodal():
    return MultimodalPreprocessor({"audio": AudioPreprocessor(8, 4, num_bands=2), "label": OneHotPreprocessor(3)})


PRODUCERS = {
    **{name: (make, INPUTS[name]) for name, make in LAYERS.items()},
    "AudioPreprocessor": (lambda: AudioPreprocessor(8, 4, num_bands=2), np.ones((2, 8, 1), "float32")),
    "OneHotPreprocessor": (lambda: OneHotPreprocessor(3), np.ones((2, 3), "float32")),
    "MultimodalPreprocessor": (_multimodal, {"audio": np.ones((2, 8, 1), "float32"), "label": np.ones((2, 3))}),
    "FourierPositionEncoding": (lambda: FourierPositionEncoding((2, 3), 2), np.ones((2, 1), "float32")),
    "FourierQuery": (lambda: FourierQuery((2, 3), 2), np.ones((2, 1), "float32")),
    "MultimodalQuery": (lambda: MultimodalQuery({"a": FourierQuery(4, 2), "b": TrainablePositionEncoding(1, 9)}),
                        np.ones((2, 1), "float32")),
}


@pytest.mark.parametrize("name", PRODUCERS)
def test_every_adapter_and_query_names_its_width_output_channels(name):
    make, inputs = PRODUCERS[name]
    layer = make()
    outputs = layer(inputs)
    assert outputs.shape[-1] == layer.output_channels
    assert not hasattr(layer, "num_channels")
