"""Exporting the optical-flow models: the full-frame model, verified by its end-point error in pixels.

A run trains with subsampled decoding (the model takes "output_indices"); the exported model is
its dense version (`inference.dense_model`): frames (B, 2, H, W, 3) at the static training size,
normalised as the model expects, -> flow (B, H, W, 2) in model units (times the preset's
`flow_scale_factor`, 20, is pixels). Flow is a regression output, so the export is verified by
`max_abs_diff` (float32 and float16 held to the usual limits) and, for every variant, the
end-point error (EPE, pixels) on held-out pairs next to the Keras model's:

    epe_px            the variant's EPE against the ground truth
    keras_epe_px      the Keras model's EPE on the same pairs
    epe_increase_px   epe_px - keras_epe_px: what the conversion costs
    epe_to_keras_px   the mean distance in pixels between the variant's flow and Keras' flow
    output_grid_px    for an integer file, the step between its output values, in pixels (when its
                      outputs on the held-out pairs are dense enough on their levels to show it)
    rounding_floor_px the EPE change from rounding Keras' flow to that grid alone: what the output
                      range costs by itself (near 0, and either sign, when the grid is fine)

    report = export_flow_model(model, "exports/flow", frames=frames, flow=flow, calibration_frames=calib)
    print(report.table())

or, from a run directory, `python -m export runs/flow_small --out exports/flow_small`, whose
run.json names `export_arrays` below.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from export.api import ExtraMetrics, export_model
from export.data import num_samples
from export.report import ExportReport
from zoo.optical_flow import data
from zoo.optical_flow.inference import DEFAULT_FLOW_SCALE, DEFAULT_NORMALIZATION, dense_model, normalize_frames
from zoo.optical_flow.task import DATASETS, SINTEL_HELD_OUT_EVERY


def flow_metrics(flow: np.ndarray | None = None, flow_scale: float = DEFAULT_FLOW_SCALE) -> ExtraMetrics:
    """`export_model(extra_metrics=...)` for a flow model: end-point errors in pixels.

    Args:
        flow: ground-truth flow in pixels (N, H, W, 2), aligned with the evaluation inputs; without
            it only `epe_to_keras_px` is computed.
        flow_scale: model outputs times this are pixels.
    """

    def metrics(feed: dict, expected: dict, actual: dict) -> dict[str, Any]:
        (name,) = expected  # A flow model has one output.
        keras_flow, variant_flow = flow_scale * expected[name], flow_scale * actual[name]
        found = {"epe_to_keras_px": data.end_point_error(keras_flow, variant_flow)}
        if flow is not None:
            truth = np.asarray(flow)[: num_samples(feed)]
            epe, keras_epe = data.end_point_error(truth, variant_flow), data.end_point_error(truth, keras_flow)
            found.update(epe_px=epe, keras_epe_px=keras_epe, epe_increase_px=epe - keras_epe)
            step = output_grid(variant_flow)
            if step is not None:
                offset = variant_flow.flat[0] - step * np.round(variant_flow.flat[0] / step)
                rounded = offset + step * np.round((keras_flow - offset) / step)
                found.update(output_grid_px=step,
                             rounding_floor_px=data.end_point_error(truth, rounded) - keras_epe)
        return found

    return metrics


def output_grid(values: np.ndarray, max_levels: int = 65536) -> float | None:
    """The step of the grid an integer file's dequantised outputs lie on, or None for float outputs.

    Integer outputs (int8, int16) lie on at most 65,536 evenly spaced levels; float outputs lie on no
    such grid (their smallest spacing, float32 rounding, would need far more levels to span them).
    None too when the values are too sparse on their levels for their smallest gap to be one step.
    """
    levels = np.unique(np.asarray(values, np.float64))
    if len(levels) < 2:
        return None
    span, smallest = levels[-1] - levels[0], np.diff(levels).min()
    if span / smallest > max_levels - 1:
        return None
    step = span / np.round(span / smallest)  # From the span: float32 dequantisation blurs single steps.
    positions = (levels - levels[0]) / step
    return float(step) if np.abs(positions - np.round(positions)).max() < 0.05 else None


def export_flow_model(
    model: keras.Model,
    out_dir: str | os.PathLike,
    *,
    frames: np.ndarray,
    flow: np.ndarray | None = None,
    calibration_frames: np.ndarray | None = None,
    flow_scale: float = DEFAULT_FLOW_SCALE,
    **export_kwargs: Any,
) -> ExportReport:
    """Exports the dense version of a flow model with `export_model`, reporting EPEs per variant.

    Args:
        model: an optical-flow model, with or without output indices (exported dense, at its size).
        out_dir: the directory to create.
        frames: held-out pairs (N, 2, H, W, 3), normalised as the model expects.
        flow: their ground-truth flow in pixels (N, H, W, 2), for `epe_px` and `keras_epe_px`.
        calibration_frames: int8 calibration pairs, normalised; `frames` when `None`.
        flow_scale: model outputs times this are pixels.
        **export_kwargs: further `export_model` arguments (`quantizations`, `batch_size`, ...).
    """
    for arg in ("eval_data", "extra_metrics", "regression"):
        if arg in export_kwargs:
            raise ValueError(f"export_flow_model sets {arg} itself. Received: {arg}={export_kwargs[arg]!r}")
    if flow is not None and np.shape(flow) != (*np.shape(frames)[:1], *np.shape(frames)[2:4], 2):
        raise ValueError(f"Expected flow (N, H, W, 2) for frames (N, 2, H, W, 3) {np.shape(frames)}. "
                         f"Received: flow.shape={np.shape(flow)}")
    return export_model(
        dense_model(model), out_dir, eval_data=frames if flow is None else (frames, flow),
        calibration_data=frames if calibration_frames is None else calibration_frames,
        extra_metrics=flow_metrics(flow, flow_scale), regression=True, **export_kwargs,
    )


def export_arrays(
    dataset: str,
    frame_size: Sequence[int],
    data_dir: str | None = None,
    num_calibration: int = 64,
    num_eval: int = 64,
    normalization: str = DEFAULT_NORMALIZATION,
    flow_scale: float = DEFAULT_FLOW_SCALE,
    pass_name: str = "clean",
    seed: int = 0,
    max_flow: float | None = None,
    window_candidates: int = 1,
) -> dict[str, Any]:
    """The `python -m export` data builder of an optical-flow run (named in run.json's "data").

    Args:
        dataset: "synthetic_flow" (calibration from the train photos, evaluation from the
            validation photos), "flying_chairs" (its train and validation splits; `data_dir` holds
            `data/` and `FlyingChairs_train_val.txt`) or "sintel" (MPI-Sintel's training pairs
            under `data_dir`, `pass_name` pass: the scenes training holds out evaluate, every
            fifth in name order, the others calibrate). Real frames are centre-cropped to
            `frame_size`; the pairs are spread evenly over each split.
        frame_size: (height, width), the model's frame size.
        data_dir: the dataset's folder (not read for "synthetic_flow").
        num_calibration: calibration pairs.
        num_eval: held-out pairs.
        normalization: how the model wants its frames.
        flow_scale: model outputs times this are pixels (the preset's `flow_scale_factor`).
        pass_name: Sintel's "clean" or "final" pass.
        seed: seeds the synthetic pairs.
        max_flow, window_candidates: shape the synthetic pairs (`synthetic_flow_dataset`'s).

    Returns:
        `{"calibration": frames, "eval": (frames, flow in pixels), "extra_metrics", "prepare_model"
        (the dense model at `frame_size`), "regression": True}`; frames (N, 2, H, W, 3) normalised.
    """
    frame_size = tuple(int(s) for s in frame_size)
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset. Expected one of: {', '.join(DATASETS)}. Received: dataset={dataset!r}")
    if dataset == "synthetic_flow":
        from zoo.optical_flow.synthetic import synthetic_flow_dataset

        def pairs(split: str, count: int):
            return synthetic_flow_dataset(split, size=frame_size, batch_size=16, seed=seed, num_pairs=count,
                                          max_flow=max_flow, window_candidates=window_candidates)

        calibration, evaluation = pairs("train", num_calibration), pairs("validation", num_eval)
    else:
        if data_dir is None:
            raise ValueError(f"dataset={dataset!r} needs data_dir, the dataset's folder. Received: data_dir=None")
        if dataset == "flying_chairs":
            calibration_files = data.flying_chairs_files(data_dir, split="train")
            eval_files = data.flying_chairs_files(data_dir, split="validation")
        else:
            files = data.sintel_files(data_dir, pass_name=pass_name)
            scenes = sorted({os.path.dirname(triple.frame1) for triple in files})
            held_out = set(scenes[SINTEL_HELD_OUT_EVERY - 1::SINTEL_HELD_OUT_EVERY] or scenes[-1:])
            eval_files = [t for t in files if os.path.dirname(t.frame1) in held_out]
            calibration_files = [t for t in files if os.path.dirname(t.frame1) not in held_out] or eval_files

        def pairs_of(files: list, count: int):
            return data.make_flow_dataset(_evenly(files, count), batch_size=16, crop_size=frame_size)

        calibration, evaluation = pairs_of(calibration_files, num_calibration), pairs_of(eval_files, num_eval)
    calibration_frames, _ = _arrays(calibration)
    frames, flow = _arrays(evaluation)
    return {
        "calibration": normalize_frames(calibration_frames, normalization),
        "eval": (normalize_frames(frames, normalization), flow),
        "extra_metrics": flow_metrics(flow, flow_scale),
        "prepare_model": functools.partial(dense_model, frame_size=frame_size),
        "regression": True,
    }


def _evenly(files: list, count: int) -> list:
    """`count` items spread evenly over `files` (all of them when there are no more)."""
    if count >= len(files):
        return list(files)
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def _arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    frames, flow = zip(*dataset.as_numpy_iterator())
    return np.concatenate(frames), np.concatenate(flow)
