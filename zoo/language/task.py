"""What training, evaluation and export need to know about the language tasks."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from perceiver_keras.metrics import BitsPerByte
from zoo.language import causal_data, data, metrics
from zoo.language.classification_data import classification_dataset, classification_info
from zoo.language.vocabulary import model_location, tokenizer_of, unit_of, vocabulary_for
from zoo.options import EVAL_TAKE, OPEN_FRACTION, Option
from zoo.recipe import Recipe
from zoo.registry import Preset, register_recipe


def _corpus(preset: Preset, options: dict[str, Any]) -> str:
    """--corpus; else "text_files" when --text-files is given; else the preset's corpus."""
    return options.get("corpus") or ("text_files" if options.get("text_files") else preset.metadata["dataset"])


def _sequence_length(preset: Preset) -> int:
    return preset.config.get("sequence_length", 2048)


class MaskedLanguageModelingRecipe(Recipe):
    """Byte masked language modelling: loss and accuracy on the masked positions only."""

    name = "masked_language_modeling"
    options = {
        "corpus": Option("corpus (default: the preset's)", choices=data.SOURCES),
        "text_files": Option("corpus files: a .txt file, a folder or a glob (implies --corpus text_files)",
                             data.text_files_argument),
        "mask_probability": Option("fraction of words masked (0.15)", OPEN_FRACTION),
        "eval_take": EVAL_TAKE,
    }

    def check(self, preset: Preset, options: dict[str, Any]) -> None:
        """--text-files goes with --corpus text_files (which it implies), and --corpus text_files needs it."""
        corpus, files = options.get("corpus"), options.get("text_files")
        if files and corpus not in (None, "text_files"):
            raise ValueError(f"--text-files is read only with --corpus text_files (which it implies when --corpus is "
                             f"not given). Received: --corpus {corpus} --text-files {files!r}")
        if _corpus(preset, options) == "text_files" and not files:
            raise ValueError("--corpus text_files needs --text-files: a .txt file, a folder or a glob. Received: no "
                             "--text-files")

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, validation) pipelines of (x, y, sample_weight) from the preset's corpus."""
        source = _corpus(preset, options)
        common = dict(sequence_length=_sequence_length(preset), batch_size=batch_size, seed=seed,
                      mask_probability=options.get("mask_probability", 0.15))
        files, data_dir = options.get("text_files"), options.get("data_dir")
        train_docs = data.documents(source, "train", data_dir=data_dir, files=files)
        test_docs = data.documents(source, "validation", data_dir=data_dir, files=files)
        # A corpus is a stream: epochs are `steps_per_epoch` batches of an endless repetition.
        train = data.masked_lm_dataset(train_docs, training=True, take=options.get("take"), **common).repeat()
        test = data.masked_lm_dataset(test_docs, training=False, take=options.get("eval_take"), **common)
        return train, test

    def baselines(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """Accuracy on the test masks of always predicting the training data's most frequent masked byte."""
        # The batch size of training, so that the evaluation masks are the ones the model was scored on.
        train, test = self.datasets(preset, options["batch_size"], options.get("seed", 0), {**options, "take": None})
        train = train.take(options.get("steps_per_epoch") or 100)  # the training stream repeats
        baseline = data.most_frequent_byte_baseline(train, test)
        return {"most_frequent_byte_accuracy": float(baseline["accuracy"]),
                "most_frequent_byte_id": int(baseline["most_frequent_id"])}

    def loss(self, preset: Preset, options: dict[str, Any]) -> keras.losses.Loss:
        return metrics.masked_lm_loss()

    def weighted_metrics(self, preset: Preset) -> list:
        """Masked accuracy: the sample weights (1 at masked positions) restrict it to those."""
        return metrics.masked_lm_metrics()

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "builder": "zoo.language.export:export_arrays",
            "kwargs": {"dataset": _corpus(preset, options),
                       "sequence_length": _sequence_length(preset), "data_dir": options.get("data_dir"),
                       "files": options.get("text_files")},
        }


class TextClassificationRecipe(Recipe):
    """Text classification (or regression, with one output) with each dataset's own metrics.

    The tuning objective is the first of the dataset's metrics (`metrics.metrics_for`: accuracy,
    Matthews correlation, F1 or Pearson correlation), maximised.
    """

    name = "text_classification"
    options = {"eval_take": EVAL_TAKE}

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, evaluation) pipelines of (x, y) for the preset's dataset."""
        info = classification_info(preset.metadata["dataset"])
        common = dict(sequence_length=_sequence_length(preset), batch_size=batch_size, seed=seed,
                      data_dir=options.get("data_dir"))
        train = classification_dataset(info.name, info.train_split, training=True, take=options.get("take"),
                                       **common)
        test = classification_dataset(info.name, info.eval_split, training=False,
                                      take=options.get("eval_take"), **common)
        return train, test

    def baselines(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """Accuracy of always predicting the training data's most frequent class, on the test data."""
        info = classification_info(preset.metadata["dataset"])
        if info.num_classes == 1:
            return {}
        # Batched as in training (a training split smaller than a batch of 256 gave no batch at all).
        batch_size = options["batch_size"]
        train, test = self.datasets(preset, batch_size, options.get("seed", 0), options)
        # The majority class from up to ~10,240 shuffled training examples: GLUE's QQP alone has 364k.
        labels = [y for _, y in train.take(max(1, 10_240 // batch_size)).as_numpy_iterator()]
        if not labels:
            raise ValueError(f"Expected at least one training batch of {batch_size} examples for the majority-class "
                             f"baseline: pass a smaller --batch-size or a larger --take. Received: --take {options.get('take')!r}")
        counts = np.bincount(np.concatenate(labels), minlength=info.num_classes)
        labels = np.concatenate([y for _, y in test.as_numpy_iterator()])
        return {"majority_class": int(counts.argmax()), "majority_accuracy": float(np.mean(labels == counts.argmax()))}

    def loss(self, preset: Preset, options: dict[str, Any]) -> keras.losses.Loss:
        if classification_info(preset.metadata["dataset"]).num_classes == 1:
            return keras.losses.MeanSquaredError()  # regression (STS-B)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, preset: Preset) -> list:
        return metrics.metrics_for(preset.metadata["dataset"])

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "builder": "zoo.language.export:export_arrays",
            "kwargs": {"dataset": preset.metadata["dataset"],
                       "sequence_length": _sequence_length(preset), "data_dir": options.get("data_dir")},
        }


def _causal_windows(preset: Preset) -> dict[str, int]:
    config = preset.config
    return dict(sequence_length=config["max_sequence_length"], num_latents=config["num_latents"])


class CausalLanguageModelingRecipe(Recipe):
    """Causal language modelling (Perceiver AR): loss on the latent positions, scored in bits per byte
    (bits per token for a SentencePiece preset, whose metadata's "tokenizer" names its vocabulary)."""

    name = "causal_language_modeling"
    objective_direction = "min"
    # Not the latents: they are the positions with a loss, so another N would score other bytes.
    architecture = (None, "num_channels", "num_self_attention_layers", "num_heads")
    options = {
        "corpus": MaskedLanguageModelingRecipe.options["corpus"],
        "text_files": MaskedLanguageModelingRecipe.options["text_files"],
        "eval_take": EVAL_TAKE,
        "sentencepiece_model": Option("the SentencePiece model file or URL of a preset with tokenizer "
                                      "t5_sentencepiece (default: T5's, gs://t5-data/vocabs/...)", model_location),
    }

    def check(self, preset: Preset, options: dict[str, Any]) -> None:
        """The corpus options as the masked LM's; --sentencepiece-model only for a SentencePiece preset."""
        MaskedLanguageModelingRecipe.check(self, preset, options)
        if options.get("sentencepiece_model") and tokenizer_of(preset) == "bytes":
            raise ValueError(f"--sentencepiece-model is read only by presets of a SentencePiece vocabulary (c4_ar_*); "
                             f"preset '{preset.name}' reads bytes. Received: --sentencepiece-model "
                             f"{options['sentencepiece_model']!r}")

    def datasets(self, preset: Preset, batch_size: int, seed: int, options: dict[str, Any]):
        """(train, validation) pipelines of (x (B, L), y (B, N)).

        Validation scores every held-out byte once (overlapping windows of the preset's eval_window, one
        every N bytes), so models of one N but different contexts are scored on the same bytes.
        """
        source = _corpus(preset, options)
        files, data_dir = options.get("text_files"), options.get("data_dir")
        common = dict(_causal_windows(preset), batch_size=batch_size, seed=seed,
                      vocabulary=vocabulary_for(preset, options))
        train_docs = causal_data.causal_documents(source, "train", data_dir=data_dir, files=files)
        test_docs = causal_data.causal_documents(source, "validation", data_dir=data_dir, files=files)
        # A corpus is a stream: epochs are `steps_per_epoch` batches of an endless repetition.
        train = causal_data.causal_lm_dataset(train_docs, training=True, take=options.get("take"), **common).repeat()
        test = causal_data.causal_lm_dataset(test_docs, training=False, take=options.get("eval_take"),
                                             eval_window=preset.metadata.get("eval_window"), every_byte=True,
                                             **common)
        return train, test

    def baselines(self, preset: Preset, options: dict[str, Any]) -> dict[str, float]:
        """Held-out bits per byte (token) of a unigram model fitted to the training stream."""
        train, test = self.datasets(preset, options["batch_size"], options.get("seed", 0), {**options, "take": None})
        train = train.take(options.get("steps_per_epoch") or 100)
        size = vocabulary_for(preset, options).size
        return {f"unigram_bits_per_{unit_of(preset)}": causal_data.unigram_bits_per_byte(train, test, size)}

    def loss(self, preset: Preset, options: dict[str, Any]) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, preset: Preset) -> list:
        return [BitsPerByte(name=f"bits_per_{unit_of(preset)}"),
                keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def export_data(self, preset: Preset, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "builder": "zoo.language.causal_export:export_arrays",
            "kwargs": {"dataset": _corpus(preset, options), **_causal_windows(preset),
                       "data_dir": options.get("data_dir"), "files": options.get("text_files"),
                       "tokenizer": tokenizer_of(preset), "vocabulary_size": preset.config.get("vocabulary_size"),
                       "sentencepiece_model": model_location(options.get("sentencepiece_model"))},
        }


MASKED_LANGUAGE_MODELING = register_recipe(MaskedLanguageModelingRecipe())
TEXT_CLASSIFICATION = register_recipe(TextClassificationRecipe())
CAUSAL_LANGUAGE_MODELING = register_recipe(CausalLanguageModelingRecipe())
