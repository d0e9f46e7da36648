"""`zoo.convert.from_transformers` on image classifiers: parity with transformers' PyTorch models."""

import json

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from zoo.convert import from_transformers  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.tensorflow_only]

TOLERANCE = 1e-4
HEADS = {
    "fourier": (transformers.PerceiverForImageClassificationFourier, 12),
    "learned": (transformers.PerceiverForImageClassificationLearned, 12),
    "conv": (transformers.PerceiverForImageClassificationConvProcessing, 32),
}


def _reference(head, image_size):
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(
        num_latents=8, d_latents=32, num_blocks=2, num_self_attends_per_block=2, num_self_attention_heads=4,
        num_cross_attention_heads=1, image_size=image_size, num_labels=5, attention_probs_dropout_prob=0.0,
    )
    model = HEADS[head][0](config).eval()
    with torch.no_grad():  # Larger-than-default random weights, so that outputs depend on the input.
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * (0.3 if "running_var" not in name else 0.0)
                             + (1.0 if "running_var" in name else 0.0) * torch.rand_like(tensor) * 2)
    return model


@pytest.mark.parametrize("head", sorted(HEADS))
def test_from_transformers_matches_reference(head, tmp_path):
    cls, image_size = HEADS[head]
    reference = _reference(head, image_size)
    reference.save_pretrained(tmp_path)
    model = from_transformers(tmp_path)
    images = np.random.default_rng(0).normal(size=(3, image_size, image_size, 3)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()
    logits = keras.ops.convert_to_numpy(model(images, training=False))
    assert logits.shape == (3, 5)
    assert np.abs(expected[0] - expected[1]).max() > 100 * TOLERANCE  # outputs depend on the image
    print(f"{head}: logits max abs diff {np.abs(logits - expected).max():.2e}")  # shown with pytest -s
    np.testing.assert_allclose(logits, expected, atol=TOLERANCE, rtol=0)
    assert model.count_params() - _non_trainable(model) == sum(p.numel() for p in reference.parameters())


def _non_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_pytorch_bin_checkpoint_loads(tmp_path):
    reference = _reference("fourier", 12)
    reference.config.architectures = [type(reference).__name__]
    reference.config.save_pretrained(tmp_path)
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    model = from_transformers(tmp_path)
    images = np.random.default_rng(1).normal(size=(2, 12, 12, 3)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), expected, atol=TOLERANCE, rtol=0)


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        from_transformers(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="config.json"):
        from_transformers(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(ValueError, match="model_type='bert'"):
        from_transformers(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "perceiver", "architectures": ["Nope"]}))
    with pytest.raises(ValueError, match=r"Received: architectures=\['Nope'\]"):
        from_transformers(tmp_path)
    reference = _reference("learned", 12)
    reference.save_pretrained(tmp_path)
    weights_file = tmp_path / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        from_transformers(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "d_latents": 64}))
    reference.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text(json.dumps({**config, "d_latents": 64}))
    with pytest.raises(ValueError, match="expects"):
        from_transformers(tmp_path / "other")


def test_sharded_checkpoint_loads_and_a_missing_shard_is_named(tmp_path):
    reference = _reference("fourier", 12)
    reference.save_pretrained(tmp_path / "one")
    reference.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    images = np.random.default_rng(1).normal(size=(2, 12, 12, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(from_transformers(tmp_path / "one")(images))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(from_transformers(tmp_path / "sharded")(images)), expected)
    (tmp_path / "sharded" / shards[-1]).unlink()
    with pytest.raises(FileNotFoundError, match=f"names the shard {shards[-1]}, which is not in"):
        from_transformers(tmp_path / "sharded")
