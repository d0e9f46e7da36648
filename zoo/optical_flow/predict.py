"""`python -m zoo.optical_flow.predict`: the flow between two frames, as a colour image and a .flo file.

    python -m zoo.optical_flow.predict runs/flow_small --frames frame_0001.png frame_0002.png \\
        --out flow.png --flo flow.flo

The source is a run directory (model.keras + run.json, whose preset supplies the normalisation and
the flow scale factor) or a .keras file (the optical-flow presets' conventions: frames in [-1, 1],
outputs x 20 = pixels, unless --normalization / --flow-scale say otherwise). Frames are PNG, JPEG
or binary PPM files of one size, at least the model's; larger ones are tiled (`predict_flow`).

Exit status: 0 on success, 2 on a usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.arguments import COUNT, NON_NEGATIVE_INT, ArgumentParser, Number, UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status instead of exiting."""
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    from zoo.optical_flow.formats import write_flo
    from zoo.optical_flow.inference import predict_flow
    from zoo.optical_flow.visualize import save_flow_png

    try:
        model, metadata = _load(Path(args.source))
        frames = [read_frame(path) for path in args.frames]
        flow = predict_flow(
            model, *frames, overlap=args.overlap, batch_size=args.batch_size,
            flow_scale=args.flow_scale or metadata.get("flow_scale_factor"),
            normalization=args.normalization or metadata.get("normalization"),
        )
        save_flow_png(args.out, flow, max_flow=args.max_flow)
        if args.flo:
            write_flo(args.flo, flow)
    except (FileNotFoundError, NotADirectoryError, PermissionError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    magnitude = (flow[..., 0] ** 2 + flow[..., 1] ** 2) ** 0.5
    print(f"flow {flow.shape[0]}x{flow.shape[1]}: mean magnitude {magnitude.mean():.3f} px, "
          f"max {magnitude.max():.3f} px -> {args.out}" + (f", {args.flo}" if args.flo else ""))
    return 0


def read_frame(path: str):
    """A PNG, JPEG (or other `tf.io.decode_image` format) or binary PPM file -> uint8 (H, W, 3)."""
    import tensorflow as tf

    from zoo.optical_flow.formats import read_ppm

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No frame file {path}.")
    if path.endswith(".ppm"):
        return read_ppm(path)
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(f"Expected a PNG, JPEG, GIF, BMP or PPM image. Received: {path} ({error.message})") from None
    return image.numpy()


def _load(source: Path) -> tuple[Any, dict[str, Any]]:
    """The model and its preset's metadata ({} for a bare .keras file)."""
    import importlib

    from export.run_directory import check_model_of_run, read_finished_run

    if source.is_dir():
        for name in ("model.keras", "run.json"):
            if not (source / name).is_file():
                raise FileNotFoundError(f"The run directory {source} has no {name}.")
        run = read_finished_run(source)
        for module in run.get("imports", ["perceiver_keras"]):
            importlib.import_module(module)
        metadata = {}
        if run.get("preset"):
            from zoo import registry

            metadata = registry.get_preset(run["preset"]).metadata
        from perceiver_keras import load_model

        model = load_model(source / "model.keras", compile=False)
        check_model_of_run(model, run, source / "model.keras")
        return model, metadata
    if source.suffix != ".keras" or not source.is_file():
        raise FileNotFoundError(f"Expected a run directory (model.keras + run.json) or a .keras file. "
                                f"Received: {source}")
    from perceiver_keras import load_model

    return load_model(source, compile=False), {}


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m zoo.optical_flow.predict",
                                     description="Optical flow between two frames with a Perceiver IO flow model.")
    parser.add_argument("source", help="a run directory (model.keras + run.json) or a .keras file")
    parser.add_argument("--frames", nargs=2, required=True, metavar=("FRAME1", "FRAME2"),
                        help="the two frames (PNG, JPEG or PPM), flow from the first to the second")
    parser.add_argument("--out", required=True, help="the colour-coded flow PNG to write")
    parser.add_argument("--flo", help="also write the flow as a Middlebury .flo file")
    parser.add_argument("--max-flow", type=Number(float, 0, low_open=True), help="magnitude (pixels) drawn at full colour; default the largest")
    parser.add_argument("--overlap", type=NON_NEGATIVE_INT, help="minimum tile overlap in pixels (default min(20, tile/4))")
    parser.add_argument("--flow-scale", type=Number(float, 0, low_open=True), help="model output x this = pixels (default the preset's, 20)")
    parser.add_argument("--normalization", choices=("minus_one_to_one", "zero_to_one"),
                        help="how the model wants its frames (default the preset's, minus_one_to_one)")
    parser.add_argument("--batch-size", type=COUNT, default=8, help="tiles per model call")
    return parser


if __name__ == "__main__":
    sys.exit(main())
