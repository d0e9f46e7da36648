"""Language tasks through the zoo: model.fit via the CLI, run directories, baselines, fill_mask."""

import json

import numpy as np
import pytest

import zoo
from zoo import cli, training
from zoo.language import inference

pytestmark = pytest.mark.tensorflow_only

TOY = dict(num_self_attention_layers_per_block=1, embedding_channels=32, num_latents=8, num_latent_channels=32,
           qk_channels=16, v_channels=32)


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    """A toy MLM trained two short epochs on Python's own documentation, through the CLI."""
    out = tmp_path_factory.mktemp("mlm") / "run"
    overrides = [f"--set={key}={value}" for key, value in {**TOY, "decoder_qk_channels": 16}.items()]
    assert cli.main(["train", "masked_language_modeling", "--preset", "pydoc_mlm", "--out", str(out),
                     "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "8", "--eval-take", "16",
                     *overrides]) == 0
    return out


def test_masked_lm_trains_into_a_run_directory_with_its_baseline(mlm_run):
    run = json.loads((mlm_run / "run.json").read_text())
    assert run["status"] == "finished" and run["task"] == "masked_language_modeling"
    assert set(run["test_metrics"]) == {"loss", "masked_accuracy"}
    assert np.isfinite(run["test_metrics"]["loss"])
    baseline = run["baselines"]
    assert 0.0 < baseline["most_frequent_byte_accuracy"] < 1.0 and 6 <= baseline["most_frequent_byte_id"] < 262
    history = (mlm_run / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + two epochs
    assert training.evaluate(mlm_run)["masked_accuracy"] == pytest.approx(run["test_metrics"]["masked_accuracy"],
                                                                          abs=1e-6)


def test_fill_mask_replaces_only_masked_bytes(mlm_run):
    model, _ = training.load_run(mlm_run)
    filled = inference.fill_mask(model, "The value of [MASK][MASK] is printed.")
    assert filled.startswith("The value of ") and filled.endswith(" is printed.")
    assert len(filled.encode("utf-8")) == len("The value of xx is printed.") or "\ufffd" in filled
    spans = inference.fill_mask(model, ["abcdef", "ghijkl"], mask_spans=[[(1, 3)], []])
    assert spans[0][0] == "a" and spans[0][3:] == "def" and spans[1] == "ghijkl"
    room = inference.sequence_length_of(model) - 2  # CLS and SEP
    with pytest.warns(UserWarning, match=f"1 of 1 texts .* truncated to {room} bytes"):
        long = inference.fill_mask(model, "x" * 300)
    assert long == "x" * room
    with pytest.raises(ValueError, match=r"Received: span=\(4, 9\)"):
        inference.fill_mask(model, "abcdef", mask_spans=[(4, 9)])
    with pytest.raises(ValueError, match="empty"):
        inference.fill_mask(model, [])


def test_check_token_inputs_names_expected_and_received():
    ids = np.full((2, 8), 7, "int32")
    mask = np.ones_like(ids)
    assert inference.check_token_inputs({"token_ids": ids, "padding_mask": mask}, 8)["token_ids"].dtype == np.int32
    for inputs, message in (
        ({"token_ids": ids}, "Expected the keys"),
        ({"token_ids": ids[:0], "padding_mask": mask[:0]}, "empty batch"),
        ({"token_ids": ids, "padding_mask": mask[:, :5]}, r"padding_mask of shape \(2, 8\).*\(2, 5\)"),
        ({"token_ids": ids + 300, "padding_mask": mask}, r"\[0, 262\)\. Received: id=307"),
        ({"token_ids": ids[:, :4], "padding_mask": mask[:, :4]}, r"\(batch, 8\)"),
    ):
        with pytest.raises(ValueError, match=message):
            inference.check_token_inputs(inputs, 8)


def test_text_classifier_trains_on_the_offline_source_type_task(tmp_path):
    # take < 256: the majority-class baseline once batched its training data by 256 and found none.
    run = training.train("text_classification", "source_type", tmp_path / "run", epochs=1, steps_per_epoch=3,
                         batch_size=8, take=40, eval_take=32, model_overrides=dict(TOY), verbose=0)
    assert run["status"] == "finished" and 0.0 <= run["test_metrics"]["accuracy"] <= 1.0
    assert 0.0 <= run["baselines"]["majority_accuracy"] <= 1.0


def test_training_rejects_a_preset_of_another_task(tmp_path):
    with pytest.raises(ValueError, match="belongs to task 'masked_language_modeling'"):
        training.train("text_classification", "pydoc_mlm", tmp_path / "x")
    assert "pydoc_mlm" in zoo.list_models("masked_language_modeling")
