"""Perceiver AR presets of a SentencePiece vocabulary (the T5X `c4_ar_*`): windows, training, generation, export.

T5's SentencePiece file is on Google Cloud Storage; these tests train a small SentencePiece model on
the pydoc corpus offline and pass it as `--sentencepiece-model`, as a user does with T5's file.
"""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo import cli
from zoo.language import causal_data, generate
from zoo.language.vocabulary import SentencePieceVocabulary, make_vocabulary, vocabulary_for
from zoo.registry import get_preset

pytestmark = pytest.mark.tensorflow_only

TOY = dict(max_sequence_length=48, num_latents=16, num_channels=32, num_heads=2, head_channels=16,
           rotary_channels=16, num_self_attention_layers=1, vocabulary_size=512)


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory):
    """A 500-piece unigram SentencePiece model of pydoc, with T5's special ids (pad 0, EOS 1, unknown 2)."""
    import sentencepiece

    texts = [doc.decode() for doc in causal_data.causal_documents("pydoc", "train").as_numpy_iterator()]
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=proto, vocab_size=500, model_type="unigram", pad_id=0, eos_id=1,
        unk_id=2, bos_id=-1, input_sentence_size=50_000, shuffle_input_sentence=False, minloglevel=2)
    path = tmp_path_factory.mktemp("spm") / "pydoc.model"
    path.write_bytes(proto.getvalue())
    return path


def test_windows_are_the_sentencepiece_ids_of_the_documents(sentencepiece_model):
    import sentencepiece

    vocabulary = make_vocabulary("t5_sentencepiece", 512, str(sentencepiece_model))
    assert (vocabulary.size, vocabulary.eos_id, vocabulary.pad_id, vocabulary.unit) == (512, 1, 0, "token")
    docs = causal_data.causal_documents("pydoc", "validation")
    ds = causal_data.causal_lm_dataset(docs, sequence_length=40, num_latents=8, batch_size=4, training=False,
                                       vocabulary=vocabulary)
    x, y = next(iter(ds))
    x, y = x.numpy(), y.numpy()
    np.testing.assert_array_equal(y[:, :-1], x[:, 33:])
    reference = sentencepiece.SentencePieceProcessor(model_file=str(sentencepiece_model))
    first = next(docs.as_numpy_iterator()).decode()
    assert x[0, 0] == 1 and list(x[0, 1:]) == reference.encode(first)[:39]  # EOS, then the first document's ids
    assert x.max() < 500
    mask = vocabulary.sampling_mask()
    assert mask.shape == (512,) and not mask[[0, 1, 2]].any() and not mask[500:].any() and mask[3:500].all()


def test_bad_sentencepiece_models_are_refused_clearly(tmp_path, sentencepiece_model):
    with pytest.raises(ValueError, match="not found"):
        SentencePieceVocabulary(tmp_path / "missing.model")
    (tmp_path / "text.model").write_text("not a model")
    with pytest.raises(ValueError, match="Expected a SentencePiece model"):
        SentencePieceVocabulary(tmp_path / "text.model")
    with pytest.raises(ValueError, match="vocabulary_size=100"):
        SentencePieceVocabulary(sentencepiece_model, size=100)
    with pytest.raises(ValueError, match="tokenizer"):
        make_vocabulary("wordpiece")
    # The c4 presets name T5's file unless --sentencepiece-model replaces it.
    assert get_preset("c4_ar_base").metadata["tokenizer"] == "t5_sentencepiece"
    assert vocabulary_for(get_preset("pydoc_ar")).unit == "byte"


@pytest.fixture(scope="module")
def token_run(tmp_path_factory, sentencepiece_model):
    """A toy c4_ar_small (the T5X layout) trained on pydoc with the SentencePiece model, through the CLI, given
    as a path relative to the working folder (the run records it absolute)."""
    out = tmp_path_factory.mktemp("t5x") / "run"
    overrides = [f"--set={key}={value}" for key, value in TOY.items()]
    relative = os.path.relpath(sentencepiece_model)
    assert cli.main(["train", "causal_language_modeling", "--preset", "c4_ar_small", "--corpus", "pydoc",
                     "--sentencepiece-model", relative, "--out", str(out), "--epochs", "1",
                     "--warmup-epochs", "1", "--steps-per-epoch", "3", "--batch-size", "4", "--eval-take", "8",
                     *overrides]) == 0
    return out


def test_trains_with_the_preset_layout_in_bits_per_token(token_run):
    run = json.loads((token_run / "run.json").read_text())
    assert run["status"] == "finished" and run["options"]["optimizer"] == "adafactor"
    assert os.path.isabs(run["data"]["kwargs"]["sentencepiece_model"]) and os.path.isabs(
        run["options"]["sentencepiece_model"])  # a resume or an export from another folder still finds it
    assert set(run["test_metrics"]) == {"loss", "bits_per_token", "accuracy"}
    assert run["test_metrics"]["bits_per_token"] == pytest.approx(run["test_metrics"]["loss"] / np.log(2), rel=1e-5)
    assert 4.0 < run["baselines"]["unigram_bits_per_token"] < np.log2(500)
    model = keras.saving.load_model(token_run / "model.keras")
    assert model.normalization == "rms_norm" and model.gated_mlp and not model.position_embedding


def test_generate_cli_uses_the_runs_vocabulary(token_run, sentencepiece_model, tmp_path):
    command = [sys.executable, "-m", "zoo", "generate", str(token_run), "--prompt", "The for statement", "--greedy",
               "--max-new-bytes", "12"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)  # any folder
    assert done.returncode == 0, done.stderr
    model = keras.saving.load_model(token_run / "model.keras")
    vocabulary = make_vocabulary("t5_sentencepiece", 512, str(sentencepiece_model))
    expected = generate(model, "The for statement", 12, greedy=True, vocabulary=vocabulary)
    assert done.stdout == expected + "\n" and expected
    assert generate(model, "The for statement", 12, greedy=True, vocabulary=vocabulary, use_cache=False) == expected
    with pytest.raises(ValueError, match="vocabulary_size=512"):
        generate(model, "x", 2, vocabulary=make_vocabulary("t5_sentencepiece", 600, str(sentencepiece_model)))


def test_exports_the_step_pair_without_a_byte_generate_signature(token_run, tmp_path):
    """`python -m export RUN` in a fresh process: windows in the run's vocabulary, no byte `generate`
    signature (its tokenizer is ByteTokenizer's ops), the prefill/decode-step pair checked as for bytes."""
    out = tmp_path / "export"
    done = subprocess.run([sys.executable, "-m", "export", str(token_run), "--out", str(out)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["extra_artifacts"]["passed"]
    steps = report["extra_artifacts"]["steps"]["variants"]
    assert steps["float32"]["max_abs_diff"] < 1e-4
    assert steps["int8"]["float_ops"] == {"prefill": 0, "decode_step": 0}
    signatures = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                                 str(out / "saved_model"), "--tag_set", "serve"], capture_output=True, text=True,
                                timeout=300)
    assert "serving_default" in signatures.stdout and "generate" not in signatures.stdout
    # The float32 pair generates the Keras model's tokens in the run's vocabulary.
    from zoo.language.tflite_generation import TFLiteGenerator

    model = keras.saving.load_model(token_run / "model.keras")
    vocabulary = make_vocabulary("t5_sentencepiece", 512, json.loads((token_run / "run.json").read_text())
                                 ["data"]["kwargs"]["sentencepiece_model"])
    generator = TFLiteGenerator(out / "prefill_float32.tflite", out / "decode_step_float32.tflite")
    prompt = "Return the number of items in a container, as len() does for a list or a dict. " * 2
    with pytest.warns(UserWarning, match="tokens, more than the model's window"):
        want = generate(model, prompt, 40, greedy=True, vocabulary=vocabulary)  # slides its window
    with pytest.warns(UserWarning, match="tokens"):
        assert generator.generate(prompt, 40, greedy=True, vocabulary=vocabulary) == want
