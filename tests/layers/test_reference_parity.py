"""Parity with transformers' PyTorch Perceiver (random weights, tiny configs): max abs diff <= 1e-4."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import keras  # noqa: E402
from transformers.models.perceiver.modeling_perceiver import PerceiverBasicDecoder  # noqa: E402

from perceiver_keras import PerceiverDecoder, PerceiverEncoder, PerceiverIO, TrainablePositionEncoding  # noqa: E402
from zoo.convert import weights  # noqa: E402

pytestmark = pytest.mark.reference

TOLERANCE = 1e-4
BATCH, INPUTS, INPUT_CHANNELS, QUERIES, OUTPUTS = 3, 11, 6, 5, 7

CASES = {
    "explicit_widths": dict(
        config=dict(qk_channels=16, v_channels=32, num_blocks=2, num_self_attends_per_block=2),
        decoder=dict(qk_channels=16, v_channels=24, num_heads=2),
    ),
    "kv_rule_shared_blocks": dict(
        config=dict(num_blocks=3, num_self_attends_per_block=2, cross_attention_shape_for_attention="kv"),
        decoder=dict(num_heads=1),
    ),
    "q_rule_query_residual": dict(
        config=dict(num_blocks=1, num_self_attends_per_block=3, cross_attention_shape_for_attention="q",
                    use_query_residual=False),
        decoder=dict(num_heads=4, use_query_residual=True),
    ),
}


def _reference(case):
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(
        num_latents=8, d_latents=32, d_model=INPUT_CHANNELS, num_self_attention_heads=4,
        num_cross_attention_heads=2, self_attention_widening_factor=2, cross_attention_widening_factor=3,
        attention_probs_dropout_prob=0.0, **case["config"],
    )
    decoder = PerceiverBasicDecoder(
        config, output_num_channels=OUTPUTS, position_encoding_type="trainable", output_index_dims=QUERIES,
        num_channels=24, widening_factor=2, final_project=True,
        trainable_position_encoding_kwargs=dict(num_channels=24, index_dims=QUERIES),
        **{"use_query_residual": False, **case["decoder"]},
    )
    model = transformers.PerceiverModel(config, decoder=decoder).eval()
    with torch.no_grad():  # Larger-than-default random weights, so that every part moves the output.
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn_like(tensor) * 0.3)
    return config, model


def _ours(config, case):
    encoder = PerceiverEncoder(
        num_latents=config.num_latents, num_latent_channels=config.d_latents, num_blocks=config.num_blocks,
        num_self_attention_layers_per_block=config.num_self_attends_per_block,
        num_cross_attention_heads=config.num_cross_attention_heads,
        num_self_attention_heads=config.num_self_attention_heads,
        cross_attention_qk_channels=config.qk_channels, cross_attention_v_channels=config.v_channels,
        self_attention_qk_channels=config.qk_channels, self_attention_v_channels=config.v_channels,
        cross_attention_shape_for_attention=config.cross_attention_shape_for_attention,
        cross_attention_widening_factor=config.cross_attention_widening_factor,
        self_attention_widening_factor=config.self_attention_widening_factor,
        use_query_residual=config.use_query_residual,
    )
    decoder = PerceiverDecoder(widening_factor=2, output_channels=OUTPUTS,
                               shape_for_attention=config.cross_attention_shape_for_attention,
                               **{"use_query_residual": False, **case["decoder"]})
    return PerceiverIO(
        encoder=encoder, decoder=decoder, query=TrainablePositionEncoding(QUERIES, 24),
        inputs_shape=(INPUTS, INPUT_CHANNELS), use_padding_mask=True,
    )


def _load(model, reference):
    tensors = weights.CheckpointTensors({k: v.numpy() for k, v in reference.state_dict().items()})
    weights.load_encoder(model.encoder, tensors)
    weights.load_decoder(model.decoder, tensors, "decoder.")
    weights.load_trainable_position_encoding(model.query, tensors, "decoder.output_position_encodings.")
    assert tensors.unused() == []


@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "mask"])
@pytest.mark.parametrize("case_name", sorted(CASES))
def test_matches_transformers_perceiver_model(case_name, masked):
    case = CASES[case_name]
    config, reference = _reference(case)
    model = _ours(config, case)
    _load(model, reference)
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(BATCH, INPUTS, INPUT_CHANNELS)).astype("float32")
    mask = np.ones((BATCH, INPUTS), "int32")
    if masked:
        mask[0, 4:] = 0
        mask[1, ::2] = 0
    with torch.no_grad():
        expected = reference(
            inputs=torch.from_numpy(inputs), attention_mask=torch.from_numpy(mask) if masked else None
        )
    outputs = keras.ops.convert_to_numpy(model({"inputs": inputs, "padding_mask": mask}))
    latents = keras.ops.convert_to_numpy(model.encoder(inputs, input_mask=mask))
    assert outputs.shape == (BATCH, QUERIES, OUTPUTS)
    np.testing.assert_allclose(latents, expected.last_hidden_state.numpy(), atol=TOLERANCE, rtol=0)
    print(f"{case_name} masked={masked}: max abs diff {np.abs(outputs - expected.logits.numpy()).max():.2e}")
    np.testing.assert_allclose(outputs, expected.logits.numpy(), atol=TOLERANCE, rtol=0)
    # The mask must matter, or the masked case proves nothing.
    if masked:
        unmasked = keras.ops.convert_to_numpy(model.encoder(inputs, input_mask=np.ones_like(mask)))
        assert np.abs(unmasked - latents)[:2].max() > 100 * TOLERANCE
