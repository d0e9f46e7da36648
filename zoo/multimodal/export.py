"""Exporting multimodal autoencoders: the full model, an encoder and a chunked decoder, verified against Keras.

Two deployments of the same weights:

1. The full model (`full_model`: every point decoded, no index inputs; the label masked by
   default, so that the label output is classification from video and audio, as the run's test
   metrics), through `export.export_model`: a SavedModel whose default signature takes "audio",
   "image", "label" and returns the three full outputs, plus two signatures for on-demand decoding:
       encode(audio, image, label) -> latents (B, N, D)
       decode(latents, audio_indices (B, O_a), image_indices (B, O_i)) -> audio (B, O_a, P),
           image (B, O_i, 3), label (B, K)
   (indices as the training model's: pixel (t, y, x) is (t H + y) W + x, audio patch p is samples
   [p P, (p + 1) P)); and the full model's .tflite variants, verified by `max_abs_diff` and per
   variant by `reconstruction_metrics` (PSNRs against the input clips, the label's accuracy and
   top-1 agreement). Only small models: every pixel's query is decoded in one call.
2. For edge devices and large models, `export_chunked`: `encoder_<q>.tflite` (batch 1, static
   shapes: the clip -> latents) and `decoder_<q>.tflite` (batch 1, a fixed chunk of points per call:
   latents + that chunk's query array -> the values of `chunk_size` pixels, a proportional number
   of audio patches, and the label), builtin ops only. The query arrays of every chunk are data,
   `decoder_queries.npy` (num_chunks, points per call, channels), computed once by the model's own
   query layer: the decoder file then needs no index arithmetic or gather, which microcontroller
   NPUs (Ethos-U55) cannot run. `tflite_reconstruct` encodes once and decodes chunk by chunk (the
   last chunk padded with point 0, discarded), as `zoo.multimodal.reconstruct` does in Keras;
   `export_chunked` checks the encoder's latents, every decoder chunk and the assembled
   reconstruction against Keras (float32: max abs diff <= 1e-4 each) into `chunked_report.json`.

    report, chunked = export_multimodal_model(model, "exports/mm", inputs=clips, latency_runs=0)

or, from a run directory, `python -m export runs/multimodal_small --out exports/multimodal_small`,
whose run.json names `export_arrays` below (its "extra_artifacts" hook writes the chunked pair).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export.accelerators import VELA_CONFIGS, accelerator_reports, summary_line
from export.api import TFLM_SAMPLES, ExtraMetrics, export_model
from export.report import ExportReport, strict_json
from export.savedmodel import ExtraSignature
from export.tflite import INTEGER_QUANTIZATIONS, check_quantizations, convert
from export.verify import TFLiteRunner, max_abs_diff
from perceiver_keras import MultimodalPerceiverIO, integer_friendly
from zoo.multimodal.baselines import PSNR_MAX_VALUE, psnr
from zoo.multimodal.task import clip_datasets
from zoo.registry import Preset

DEFAULT_CHUNK_SIZE = 1024
CHUNKED_LIMITS = {"float32": 1e-4, "float16": 1e-2}  # max abs diff; other quantizations are reported only
_ENCODE, _DECODE = "encode", "decode"
QUERIES_FILE = "decoder_queries.npy"
"""The chunked decoder's query arrays, one per chunk (see `chunk_queries`)."""
MODALITIES = ("audio", "image", "label")


def full_model(model: MultimodalPerceiverIO, mask_label: bool = True) -> MultimodalPerceiverIO:
    """The model that decodes every point (no index inputs), with a copy of `model`'s weights.

    Args:
        model: a multimodal autoencoder, e.g. a run's model.keras (built with output indices).
        mask_label: always replace the label input by the mask token (label probability 1), so that
            the label output classifies from video and audio; False keeps `model`'s probability
            (below 1, the label input is then copied at inference).
    """
    if not isinstance(model, MultimodalPerceiverIO):
        raise ValueError(f"Expected a MultimodalPerceiverIO. Received: {type(model).__name__} {model.name!r}")
    probabilities = model.preprocessor.mask_probabilities
    if not model.subsampled_modalities and (not mask_label or probabilities.get("label") == 1.0):
        return model
    config = model.get_config()
    config["subsampled_modalities"] = []
    if mask_label:
        if "label" not in probabilities:
            raise ValueError(f"Expected a model with a maskable 'label' modality. Received: mask_probabilities="
                             f"{probabilities}")
        config["preprocessor"]["config"]["mask_probabilities"] = {**probabilities, "label": 1.0}
    dense = MultimodalPerceiverIO.from_config(config)
    dense.set_weights(model.get_weights())
    return dense


def chunk_plan(model: MultimodalPerceiverIO, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, np.ndarray]:
    """The points each decoder call decodes: modality -> int32 (num_chunks, points per call).

    Every multi-point modality is split into the same number of chunks, ceil(most points /
    `chunk_size`): the largest (the pixels) `chunk_size` a call, the others (the audio patches)
    evenly; each last row is padded with point 0, whose outputs are discarded. Single-point
    modalities (the label) are decoded every call.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"`chunk_size` must be a positive integer. Received: chunk_size={chunk_size!r}")
    points = model.postprocessor.num_positions
    chunked = [key for key in model.query.queries if points[key] > 1]
    num_chunks = max([math.ceil(points[key] / chunk_size) for key in chunked] or [1])
    plan = {}
    for key in chunked:
        if math.ceil(points[key] / chunk_size) == num_chunks:
            per_call = min(chunk_size, points[key])
        else:
            per_call = math.ceil(points[key] / num_chunks)
        indices = np.arange(num_chunks * per_call, dtype="int32")
        indices[indices >= points[key]] = 0
        plan[key] = indices.reshape(num_chunks, per_call)
    return plan


def chunk_queries(model: MultimodalPerceiverIO, plan: Mapping[str, np.ndarray]) -> np.ndarray:
    """The decoder's query array of every chunk of `plan`: float32 (num_chunks, points per call, channels).

    Rows in the model's order of modalities (e.g. audio points, image points, the label), as its
    query layer builds them for those indices.
    """
    num_chunks = len(next(iter(plan.values())))
    latents = np.zeros((1, *model.encoder.latents.shape), np.float32)  # the queries read only its batch size
    return np.concatenate([
        keras.ops.convert_to_numpy(model.query(latents, indices={key: points[chunk][None] for key, points in plan.items()}))
        for chunk in range(num_chunks)
    ]).astype(np.float32)


def chunked_decode_function(model: MultimodalPerceiverIO, plan: Mapping[str, np.ndarray]) -> Any:
    """decode(latents (1, N, D), queries (1, points per call, channels)) -> the chunk's outputs, static shapes."""
    indices = {key: tf.constant(points[:1]) for key, points in plan.items()}  # for the outputs' sizes only

    def decode(latents, queries):
        return model.postprocessor(model.decoder(queries, latents, training=False), indices=indices)

    queries = chunk_queries(model, {key: points[:1] for key, points in plan.items()})
    specs = [tf.TensorSpec((1, *model.encoder.latents.shape), tf.float32, name="latents"),
             tf.TensorSpec((1, *queries.shape[1:]), tf.float32, name="queries")]
    return tf.function(decode, input_signature=specs, autograph=False)


def _check_modalities(model: MultimodalPerceiverIO) -> None:
    points = model.postprocessor.num_positions
    if sorted(model.preprocessor.modalities) != list(MODALITIES) or sorted(points) != list(MODALITIES) or (
            points["label"] != 1):
        raise ValueError(f"Expected a video autoencoder with the modalities {MODALITIES} (one label point). "
                         f"Received: inputs {sorted(model.preprocessor.modalities)}, outputs {points}")


def encode_decode_functions(model: MultimodalPerceiverIO, batch: int | None = None,
                            plan: Mapping[str, np.ndarray] | None = None) -> tuple[Any, Any]:
    """`tf.function`s (encode, decode) through `model`'s own layers, in inference mode.

    encode(audio, image, label) -> {"latents"}; decode(latents, audio_indices, image_indices) ->
    {"audio", "image", "label"} at those points. A static `batch` and `plan` (its per-call point
    counts) fix the shapes, as TFLite wants; otherwise the batch and point counts are dynamic.
    """
    _check_modalities(model)
    modalities = model.preprocessor.modalities

    def spec(shape, name, dtype=tf.float32):
        return tf.TensorSpec((batch, *shape), dtype, name=name)

    points = {key: None if plan is None else int(plan[key].shape[1]) for key in ("audio", "image")}

    def encode(audio, image, label):
        preprocessed = model.preprocessor({"audio": audio, "image": image, "label": label}, training=False)
        return {"latents": model.encoder(preprocessed, training=False)}

    def decode(latents, audio_indices, image_indices):
        indices = {"audio": audio_indices, "image": image_indices}
        # The queries need only the batch size of their first argument; they do not read its values.
        queries = model.query(latents, indices=indices)
        return model.postprocessor(model.decoder(queries, latents, training=False), indices=indices)

    encode_specs = [spec(modalities[key].expected_shape, key) for key in MODALITIES]
    decode_specs = [spec(model.encoder.latents.shape, "latents"), spec((points["audio"],), "audio_indices", tf.int32),
                    spec((points["image"],), "image_indices", tf.int32)]
    return (tf.function(encode, input_signature=encode_specs, autograph=False),
            tf.function(decode, input_signature=decode_specs, autograph=False))


def encode_decode_signatures(model: MultimodalPerceiverIO, inputs: Mapping[str, np.ndarray],
                             chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, ExtraSignature]:
    """The SavedModel's "encode" and "decode" signatures (dynamic batch and point counts), checked on
    the first two clips of `inputs` (decode: on the first chunk of `chunk_plan`)."""
    encode, decode = encode_decode_functions(model)
    example = {key: np.asarray(inputs[key][:2], np.float32) for key in model.preprocessor.modalities}
    latents = encode(**{key: tf.constant(value) for key, value in example.items()})["latents"].numpy()
    batch = len(latents)
    indices = {f"{key}_indices": np.tile(points[0][None], (batch, 1))
               for key, points in chunk_plan(model, chunk_size).items()}
    return {_ENCODE: ExtraSignature(encode, example),
            _DECODE: ExtraSignature(decode, {"latents": latents, **indices})}


def reconstruction_metrics() -> ExtraMetrics:
    """`export_model(extra_metrics=...)` for an autoencoder: the inputs are the truth.

    Per variant: "image_psnr" and "audio_psnr" (dB, against the input clips) next to Keras'
    ("keras_image_psnr", "keras_audio_psnr"), "label_accuracy" next to Keras' and
    "label_top1_agreement" (argmax of the label logits equal to Keras').
    """

    def metrics(feed: dict, expected: dict, actual: dict) -> dict[str, Any]:
        found = {}
        for key in ("image", "audio"):
            if key in expected:
                found[f"{key}_psnr"] = psnr(feed[key], actual[key], PSNR_MAX_VALUE[key])
                found[f"keras_{key}_psnr"] = psnr(feed[key], expected[key], PSNR_MAX_VALUE[key])
        if "label" in expected:
            truth = np.argmax(feed["label"], -1)
            found["label_accuracy"] = float(np.mean(np.argmax(actual["label"], -1) == truth))
            found["keras_label_accuracy"] = float(np.mean(np.argmax(expected["label"], -1) == truth))
            found["label_top1_agreement"] = float(np.mean(np.argmax(actual["label"], -1)
                                                          == np.argmax(expected["label"], -1)))
        return found

    return metrics


def tflite_reconstruct(encoder: TFLiteRunner, decoder: TFLiteRunner, inputs: Mapping[str, np.ndarray],
                       queries: np.ndarray, output_shapes: Mapping[str, tuple]) -> dict[str, np.ndarray]:
    """Full outputs through a batch-1 encoder and chunked decoder: encode each clip once, decode chunk by chunk.

    Args:
        encoder, decoder: runners of `export_chunked`'s .tflite files ("encode" and "decode" signatures).
        inputs: dict modality -> (B, ...) arrays.
        queries: `chunk_queries` of the decoder's plan (the export's `decoder_queries.npy`).
        output_shapes: modality -> full output shape without the batch (`model.postprocessor.output_shapes`).
    """
    batch = len(next(iter(inputs.values())))
    clips = []
    for b in range(batch):
        latents = encoder({key: np.asarray(value[b:b + 1], np.float32) for key, value in inputs.items()})["latents"]
        chunks = [decoder({"latents": latents, "queries": chunk[None]}) for chunk in queries]
        clip = {}
        for key in chunks[0]:
            points = math.prod(output_shapes[key]) // chunks[0][key].shape[-1]
            if points == 1:  # the label, decoded every call
                clip[key] = chunks[0][key]
                continue
            values = np.concatenate([chunk[key] for chunk in chunks], axis=1)  # (1, padded points, channels)
            clip[key] = values[:, :points].reshape(1, *output_shapes[key])  # the padding's outputs dropped
        clips.append(clip)
    return {key: np.concatenate([clip[key] for clip in clips]) for key in clips[0]}


@dataclasses.dataclass
class ChunkedReport:
    """What `export_chunked` measured, per quantization: the files and their max abs diffs from Keras."""

    chunk_points: dict[str, int]
    num_chunks: int
    num_eval: int
    variants: dict[str, dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(not variant["failures"] for variant in self.variants.values())

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}

    def summary(self) -> str:
        lines = [f"chunked TFLite (encoder + decoder of {self.chunk_points} points a call, {self.num_chunks} calls "
                 f"a clip, {self.num_eval} clips):"]
        for name, v in self.variants.items():
            result = "PASS" if not v["failures"] else "FAIL: " + "; ".join(v["failures"])
            lines.append(f"  {name}: encoder {v['encoder_max_abs_diff']:.3g}, decoder {v['decoder_max_abs_diff']:.3g}, "
                         f"reconstruction {v['reconstruction_max_abs_diff']:.3g} max abs diff; image "
                         f"{v['image_psnr']:.2f} dB, audio {v['audio_psnr']:.2f} dB, label accuracy "
                         f"{v['label_accuracy']:.3f}  {result}")
            lines += [f"    {part}: {summary_line(report)}" for part, report in v.get("accelerators", {}).items()]
        return "\n".join(lines)


def export_chunked(model: MultimodalPerceiverIO, out_dir: str | os.PathLike, *, inputs: Mapping[str, np.ndarray],
                   chunk_size: int = DEFAULT_CHUNK_SIZE, quantizations: tuple[str, ...] = ("float32",),
                   mask_label: bool = True, calibration_inputs: Mapping[str, np.ndarray] | None = None,
                   vela_configs: tuple[str, ...] | None = None) -> ChunkedReport:
    """Writes `encoder_<q>.tflite` and `decoder_<q>.tflite` into `out_dir` and checks them against Keras.

    Args:
        model: a multimodal autoencoder (with or without output indices).
        out_dir: the folder to write into (created if missing; existing files of these names replaced).
        inputs: held-out clips (dict modality -> (B, ...)) to verify on.
        chunk_size: the most pixels (points of the largest modality) per decoder call.
        quantizations: "float32" (held to 1e-4), "float16" (held to 1e-2), "dynamic", "int8" and
            "int16x8" (reported; the integer files are traced `integer_friendly` and calibrated).
        mask_label: as `full_model`.
        calibration_inputs: clips calibrating the integer files (`inputs` when None): the encoder on
            the clips, the decoder on their Keras latents and every chunk's indices.
        vela_configs: Ethos-U configurations the integer files are compiled for, with TensorFlow Lite
            Micro runs and float-op counts (`export.accelerators`); None: the defaults, () for none.

    Returns:
        The `ChunkedReport`, also written as `chunked_report.json`.
    """
    quantizations = check_quantizations(quantizations)
    model = full_model(model, mask_label)
    plan = chunk_plan(model, chunk_size)
    inputs = {key: np.asarray(inputs[key], np.float32) for key in model.preprocessor.modalities}
    keras_encode, keras_decode = encode_decode_functions(model)
    latents = np.concatenate([keras_encode(**{k: v[b:b + 1] for k, v in inputs.items()})["latents"].numpy()
                              for b in range(len(inputs["label"]))])
    expected = {key: keras.ops.convert_to_numpy(value) for key, value in model(inputs, training=False).items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = {False: out_dir / ".chunked_saved_model", True: out_dir / ".chunked_integer_saved_model"}
    integer = any(q in INTEGER_QUANTIZATIONS for q in quantizations)
    for traced_integer in (False, True) if integer else (False,):
        archive = keras.export.ExportArchive()
        archive.track(model)
        with integer_friendly() if traced_integer else contextlib.nullcontext():
            archive.add_endpoint(_ENCODE, encode_decode_functions(model, batch=1, plan=plan)[0])
            archive.add_endpoint(_DECODE, chunked_decode_function(model, plan))
            archive.write_out(os.fspath(scratch[traced_integer]), verbose=False)
    queries = chunk_queries(model, plan)
    np.save(out_dir / QUERIES_FILE, queries)
    calibration = _chunked_calibration(keras_encode, dict(calibration_inputs or inputs), queries) if integer else {}
    variants = {}
    try:
        for quantization in quantizations:
            files, accelerators = {}, {}
            for name, prefix in ((_ENCODE, "encoder"), (_DECODE, "decoder")):
                files[name] = f"{prefix}_{quantization}.tflite"
                flatbuffer = convert(scratch[quantization in INTEGER_QUANTIZATIONS], name, quantization,
                                     representative_dataset=calibration.get(name))
                (out_dir / files[name]).write_bytes(flatbuffer)
                if quantization in INTEGER_QUANTIZATIONS and vela_configs != ():
                    feed = calibration[name]()[:TFLM_SAMPLES]
                    feed = {key: np.concatenate([sample[key] for sample in feed]) for key in feed[0]}
                    raw = TFLiteRunner(flatbuffer, name).run_raw(feed)
                    accelerators[prefix] = accelerator_reports(flatbuffer, quantization, feed, raw,
                                                               vela_configs=vela_configs or VELA_CONFIGS)
            encoder = TFLiteRunner((out_dir / files[_ENCODE]).read_bytes(), _ENCODE)
            decoder = TFLiteRunner((out_dir / files[_DECODE]).read_bytes(), _DECODE)
            tflite_latents = np.concatenate([encoder({k: v[b:b + 1] for k, v in inputs.items()})["latents"]
                                             for b in range(len(latents))])
            decoder_diff = 0.0
            for chunk in range(len(queries)):  # Keras' latents, so only the decoder differs.
                feed = {"latents": latents, **{f"{key}_indices": np.tile(points[chunk][None], (len(latents), 1))
                                               for key, points in plan.items()}}
                keras_chunk = {k: v.numpy() for k, v in keras_decode(**feed).items()}
                decoder_chunk = {k: np.concatenate([decoder({"latents": latents[b:b + 1], "queries": queries[chunk][None]})[k]
                                                    for b in range(len(latents))]) for k in keras_chunk}
                decoder_diff = max(decoder_diff, max_abs_diff(keras_chunk, decoder_chunk))
            actual = tflite_reconstruct(encoder, decoder, inputs, queries, model.postprocessor.output_shapes)
            variant = {"encoder": files[_ENCODE], "decoder": files[_DECODE], "accelerators": accelerators,
                       "encoder_bytes": (out_dir / files[_ENCODE]).stat().st_size,
                       "decoder_bytes": (out_dir / files[_DECODE]).stat().st_size,
                       "encoder_max_abs_diff": max_abs_diff({"latents": latents}, {"latents": tflite_latents}),
                       "decoder_max_abs_diff": decoder_diff,
                       "reconstruction_max_abs_diff": max_abs_diff(expected, actual),
                       **reconstruction_metrics()(inputs, expected, actual)}
            limit = CHUNKED_LIMITS.get(quantization)
            variant["failures"] = [f"{what} {variant[what]:.3g} > {limit:g}" for what in
                                   ("encoder_max_abs_diff", "decoder_max_abs_diff", "reconstruction_max_abs_diff")
                                   if limit is not None and not variant[what] <= limit]  # NaN fails
            variant["failures"] += [f"{what} is {variant[what]}" for what in ("image_psnr", "audio_psnr")
                                    if not math.isfinite(variant[what])]
            variants[quantization] = variant
    finally:
        for folder in scratch.values():
            if folder.exists():
                tf.io.gfile.rmtree(os.fspath(folder))
    report = ChunkedReport({key: int(points.shape[1]) for key, points in plan.items()},
                           len(next(iter(plan.values()))), len(latents), variants)
    (out_dir / "chunked_report.json").write_text(json.dumps(strict_json(report.to_dict()), indent=2, allow_nan=False) + "\n")
    return report


def _chunked_calibration(keras_encode: Any, clips: Mapping[str, np.ndarray], queries: np.ndarray) -> dict[str, Any]:
    """Representative datasets of the chunked pair: the encoder's clips; the decoder's latents and chunk queries."""
    clips = {key: np.asarray(value, np.float32) for key, value in clips.items()}
    samples = [{key: value[b:b + 1] for key, value in clips.items()} for b in range(len(clips["label"]))]
    latents = [keras_encode(**sample)["latents"].numpy() for sample in samples]
    chunks = [{"latents": latent, "queries": chunk[None]} for latent in latents for chunk in queries]
    return {_ENCODE: lambda: list(samples), _DECODE: lambda: list(chunks)}


def export_multimodal_model(model: MultimodalPerceiverIO, out_dir: str | os.PathLike, *,
                            inputs: Mapping[str, np.ndarray],
                            calibration_inputs: Mapping[str, np.ndarray] | None = None,
                            chunk_size: int = DEFAULT_CHUNK_SIZE, mask_label: bool = True,
                            chunked_quantizations: tuple[str, ...] = ("float32",), **export_kwargs: Any
                            ) -> tuple[ExportReport, ChunkedReport]:
    """The full model (SavedModel with encode/decode signatures + .tflite variants) and the chunked pair.

    Args:
        model: a multimodal autoencoder, e.g. a run's model.keras.
        out_dir: the directory to create.
        inputs: held-out clips, dict modality -> (N, ...): they are also the reconstruction targets.
        calibration_inputs: int8 calibration clips; `inputs` when None.
        chunk_size: pixels per decoder call of the chunked pair (and of the decode signature's check).
        mask_label: as `full_model`.
        chunked_quantizations: quantizations of the encoder/decoder pair.
        **export_kwargs: further `export_model` arguments (`quantizations`, `batch_size`, `latency_runs`, ...).

    Returns:
        (the full model's `ExportReport`, the chunked pair's `ChunkedReport`).
    """
    for arg in ("eval_data", "extra_metrics", "regression", "extra_signatures", "calibration_data"):
        if arg in export_kwargs:
            raise ValueError(f"export_multimodal_model sets {arg} itself. Received: {arg}={export_kwargs[arg]!r}")
    prepared = full_model(model, mask_label)
    calibration = dict(calibration_inputs or inputs)
    chunked = []

    def write_chunked(exported: MultimodalPerceiverIO, folder: Path) -> dict[str, Any]:
        chunked.append(export_chunked(exported, folder, inputs=inputs, chunk_size=chunk_size,
                                      quantizations=chunked_quantizations, mask_label=mask_label))
        return {"passed": chunked[0].passed, "summary": chunked[0].summary()}

    report = export_model(prepared, out_dir, eval_data=dict(inputs), calibration_data=calibration,
                          extra_signatures=encode_decode_signatures(prepared, inputs, chunk_size),
                          extra_metrics=reconstruction_metrics(), regression=True, extra_artifacts=write_chunked,
                          **export_kwargs)
    return report, chunked[0]


def export_arrays(dataset: str, num_frames: int, frame_size: list[int], num_audio_samples: int, num_classes: int,
                  data_dir: str | None = None, frame_stride: int | None = None, frames_per_second: float | None = None,
                  tone_period: int | None = None,
                  num_calibration: int = 16, num_eval: int = 64, num_chunked_eval: int = 2,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, seed: int = 0) -> dict[str, Any]:
    """The `python -m export` data builder of a multimodal run (named in run.json's "data").

    Args:
        dataset: as the task's `multimodal_dataset`: calibration clips from its training split,
            held-out clips from its test split (the synthetic validation clips, balanced classes).
        num_frames, frame_size, num_audio_samples, num_classes: the model's sizes.
        data_dir: the dataset's folder (TFDS data directory for "ucf101"; not read for synthetic clips).
        frame_stride, frames_per_second: as the task's options, for "ucf101" and "clip_folder".
        tone_period: as the task's option, for the synthetic clips.
        num_calibration, num_eval: clips of each (64 held-out clips: the int8 PSNRs of 16 clips moved by
            0.1-0.2 dB against those of 64 on a trained multimodal_small).
        num_chunked_eval: held-out clips the chunked encoder/decoder pair is verified on.
        chunk_size: pixels per decoder call of the chunked pair.
        seed: seeds the synthetic calibration clips.

    Returns:
        `{"calibration", "eval"}` (dicts of clip arrays: autoencoding needs no separate labels) and
        the hooks: "prepare_model" (`full_model`, label masked), "extra_signatures" (encode and
        decode), "extra_metrics" (`reconstruction_metrics`), "regression" and "extra_artifacts"
        (`export_chunked` into the export directory).
    """
    config = dict(num_frames=int(num_frames), frame_size=tuple(int(s) for s in frame_size),
                  num_audio_samples=int(num_audio_samples), num_classes=int(num_classes))
    preset = Preset("export", "multimodal_autoencoding", None, config, {"dataset": dataset})
    options = {"multimodal_dataset": dataset, "data_dir": data_dir, "frame_stride": frame_stride,
               "frames_per_second": frames_per_second, "tone_period": tone_period, "take": num_calibration, "eval_take": num_eval}
    train, test = clip_datasets(preset, 1, seed, options)  # batches of one: exactly the counts asked for
    calibration, evaluation = _arrays(train.take(num_calibration)), _arrays(test.take(num_eval))
    return {
        "calibration": calibration,
        "eval": evaluation,
        "prepare_model": full_model,
        "extra_signatures": functools.partial(encode_decode_signatures, inputs=evaluation, chunk_size=chunk_size),
        "extra_metrics": reconstruction_metrics(),
        "regression": True,
        "extra_artifacts": functools.partial(_chunked_artifacts, inputs={k: v[:num_chunked_eval]
                                                                         for k, v in evaluation.items()},
                                             chunk_size=chunk_size),
    }


def _chunked_artifacts(model: MultimodalPerceiverIO, out_dir: str | os.PathLike, *, inputs, chunk_size) -> dict:
    report = export_chunked(model, out_dir, inputs=inputs, chunk_size=chunk_size)
    return {"passed": report.passed, "summary": report.summary()}


def _arrays(dataset: tf.data.Dataset) -> dict[str, np.ndarray]:
    batches = [x for x, _ in dataset.as_numpy_iterator()]
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
