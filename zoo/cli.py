"""`python -m zoo list | train | evaluate | demo | tune`."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from zoo import registry

def _labels(text: str) -> list[int]:
    try:
        return [int(label) for label in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"Expected comma-separated integer labels, e.g. 6,7,8,9. "
                                         f"Received: {text!r}") from None


_TRAIN_OPTIONS = {  # flag -> (type, help)
    "epochs": (int, "epochs to train"),
    "batch_size": (int, "global batch size"),
    "optimizer": (str, "lamb or adamw"),
    "learning_rate": (float, "peak learning rate"),
    "weight_decay": (float, "decoupled weight decay (skips biases, norms, position encodings)"),
    "schedule": (str, "flat_cosine, cosine or constant"),
    "warmup_epochs": (int, "linear warm-up epochs"),
    "label_smoothing": (float, "label smoothing of the cross-entropy"),
    "ema_momentum": (float, "keep an exponential moving average of the weights (e.g. 0.99)"),
    "precision": (str, "float32, mixed_bfloat16 or mixed_float16"),
    "seed": (int, "random seed"),
    "steps_per_epoch": (int, "cap on steps per epoch"),
    "mixup": (float, "MixUp alpha (0 disables)"),
    "cutmix": (float, "CutMix factor (0 disables)"),
    "data_dir": (str, "TensorFlow Datasets data directory; optical flow: the Sintel or FlyingChairs folder"),
    "manual_dir": (str, "TFDS manual download directory (ImageNet)"),
    "take": (int, "train on the first N examples only"),
    "eval_take": (int, "evaluate on the first N examples only"),
    "classes": (_labels, "image classification: train and test on these labels only, relabelled 0..K-1 in this "
                         "order, e.g. 6,7,8,9 with --set num_classes=4"),
    "corpus": (str, "masked LM corpus: c4, wikipedia, pydoc or text_files (default: the preset's)"),
    "text_files": (str, "masked LM corpus files: a .txt file, a folder or a glob"),
    "mask_probability": (float, "masked LM: fraction of words masked (0.15)"),
    "flow_dataset": (str, "optical flow: synthetic_flow, sintel or flying_chairs (default: the preset's)"),
    "sintel_pass": (str, "optical flow: Sintel's clean or final pass (clean)"),
    "decoded_pixels": (int, "optical flow, multimodal: pixels decoded per example in a training step (subsampled "
                            "decoding)"),
    "max_flow": (float, "optical flow, synthetic pairs: the largest flow in pixels"),
    "window_candidates": (int, "optical flow, synthetic pairs: keep the most textured of K random windows"),
    "multimodal_dataset": (str, "multimodal: synthetic_audiovisual, ucf101 or clip_folder (default: the preset's)"),
    "decoded_audio_patches": (int, "multimodal: audio patches decoded per clip in a training step"),
    "image_loss_weight": (float, "multimodal: weight of the video L1 (paper 0.03)"),
    "audio_loss_weight": (float, "multimodal: weight of the audio L1 (paper 1)"),
    "label_loss_weight": (float, "multimodal: weight of the label cross-entropy (paper 0.0001)"),
    "tone_period": (int, "multimodal, synthetic clips: samples per whole number of tone cycles"),
    "frame_stride": (int, "multimodal, ucf101 and clip_folder: keep every n-th frame"),
    "frames_per_second": (float, "multimodal, clip_folder: frame rate of the clips (25)"),
}


def _parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"Expected KEY=VALUE. Received: {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zoo", description="The perceiver-keras model zoo.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the presets")
    listing.add_argument("--task", choices=sorted(registry.TASK_MODULES))
    train = commands.add_parser("train", help="fit a preset with model.fit into a run directory")
    train.add_argument("task", choices=sorted(registry.TASK_MODULES))
    train.add_argument("--preset", required=True)
    train.add_argument("--out", required=True, help="run directory (resumed if interrupted)")
    _add_training_options(train, "override a model builder argument, e.g. --set num_blocks=2")
    train.add_argument("--overwrite", action="store_true", help="train again over a finished run")
    train.add_argument("--init-from", metavar="SOURCE", help="fine-tune: start from every weight whose path and shape "
                       "match in a run directory, a .keras file, a transformers save_pretrained folder (safetensors) "
                       "or a keras-hub preset directory; run.json lists what was not loaded and why")
    train.add_argument("--freeze-backbone", action="store_true", help="with --init-from: train the head alone "
                       "(every loaded weight outside the query, decoder and postprocessor is frozen)")
    train.add_argument("--strategy", default=None, help="default, mirrored, multi_worker (TF_CONFIG), tpu, or "
                       "data_parallel (JAX); --batch-size stays the global batch")
    train.add_argument("--worker-timeout", type=float, default=300.0,
                       help="multi_worker: seconds to wait for the workers of TF_CONFIG (300)")
    evaluate = commands.add_parser("evaluate", help="test-split metrics of a run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--batch-size", type=int)
    demo = commands.add_parser("demo", help="train digits, evaluate, export and verify (offline)")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--epochs", type=int)
    _add_tune_parser(commands)
    convert = commands.add_parser("convert", help="turn a transformers save_pretrained folder (safetensors) into a "
                                                  "keras-hub preset, checked against transformers' own model")
    convert.add_argument("folder", help="the transformers folder: config.json and model.safetensors")
    convert.add_argument("--out", required=True, help="the preset folder to write (replaced if it holds a preset)")
    convert.add_argument("--no-parity", dest="parity", action="store_false",
                         help="skip the comparison with transformers' PyTorch model (needs torch)")
    return parser


def _add_training_options(parser: argparse.ArgumentParser, set_help: str) -> None:
    """The training options shared by `train` and `tune` (every trial trains with them)."""
    for name, (kind, help_text) in _TRAIN_OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=help_text)
    parser.add_argument("--rand-augment", action="store_true", default=None, help="RandAugment")
    parser.add_argument("--jit", dest="jit_compile", action=argparse.BooleanOptionalAction, default=None,
                        help="XLA compilation (default: Keras' auto)")
    parser.add_argument("--set", dest="overrides", type=_parse_override, action="append", default=[],
                        metavar="KEY=VALUE", help=set_help)


def _add_tune_parser(commands) -> None:
    tune = commands.add_parser("tune", help="search latents, width, depth, heads, learning rate and weight decay "
                                            "around a preset; retrain and export the best")
    tune.add_argument("task", choices=sorted(registry.TASK_MODULES))
    tune.add_argument("--preset", required=True, help="the preset at the centre of the search")
    tune.add_argument("--out", required=True, help="tuning directory (tuner/ state resumes; results.md; best/; export/)")
    tune.add_argument("--tuner", default="random", help="random, hyperband or bayesian")
    tune.add_argument("--max-trials", type=int, default=10, help="configurations to try (Hyperband: at most)")
    tune.add_argument("--scale", type=float, default=2.0, help="architecture candidates at 1/scale, 1 and scale times the preset's")
    tune.add_argument("--retrain-epochs", type=int, help="epochs of the best configuration's run (default: --epochs)")
    tune.add_argument("--no-export", dest="export", action="store_false", help="skip exporting the best model")
    tune.add_argument("--quantize", help="the export's comma-separated quantizations (default: all)")
    tune.add_argument("--latency-runs", type=int, default=20, help="the export's timed runs per variant (0: skip)")
    _add_training_options(tune, "override a builder argument before centring the search")
    tune.add_argument("--overwrite", action="store_true", help="start the search, retraining and export afresh")


def _tune(args: argparse.Namespace) -> int:
    from zoo import tuning

    options = {name: getattr(args, name) for name in _TRAIN_OPTIONS}
    options.update(rand_augment=args.rand_augment, jit_compile=args.jit_compile)
    result = tuning.tune(
        args.task, args.preset, args.out, tuner=args.tuner, max_trials=args.max_trials,
        model_overrides=dict(args.overrides), scale=args.scale, retrain_epochs=args.retrain_epochs,
        export=args.export, quantize=tuple(args.quantize.split(",")) if args.quantize else None,
        latency_runs=args.latency_runs, overwrite=args.overwrite, **options,
    )
    print((Path(args.out) / "results.md").read_text())
    print(json.dumps(result["best"]["test_metrics"], indent=2))
    return 0 if result.get("export", {"passed": True})["passed"] else 1


EXIT_INPUT_ERROR = 2
"""The exit status of a command refused for its input (a bad option, run directory or file), as argparse's."""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a command; returns 0 on success, 1 when a check fails, 2 when the input is refused."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _run(args: argparse.Namespace) -> int:
    if args.command == "list":
        for name in registry.list_models(args.task):
            preset = registry.get_preset(name)
            count = preset.metadata.get("parameter_count")
            print(f"{name:24s} {preset.task:22s} {preset.metadata.get('dataset', ''):14s} "
                  f"{'' if count is None else f'{count:,} params'}")
        return 0
    if args.command == "train":
        options = {name: getattr(args, name) for name in _TRAIN_OPTIONS}
        options.update(rand_augment=args.rand_augment, jit_compile=args.jit_compile)
        from zoo import training

        run = training.train(args.task, args.preset, args.out, model_overrides=dict(args.overrides),
                             overwrite=args.overwrite, strategy=args.strategy,
                             worker_timeout=args.worker_timeout, init_from=args.init_from,
                             freeze_backbone=args.freeze_backbone, **options)
        print(json.dumps(run["test_metrics"], indent=2))
        return 0
    if args.command == "evaluate":
        from zoo import training

        for name, value in training.evaluate(args.run_dir, args.batch_size).items():
            print(f"{name}: {value:.4f}")
        return 0
    if args.command == "tune":
        return _tune(args)
    if args.command == "convert":
        from zoo.convert.preset import to_preset

        print(json.dumps(to_preset(args.folder, args.out, check_parity=args.parity), indent=2))
        return 0
    from zoo import demo

    return demo.run(args.out, epochs=args.epochs)


if __name__ == "__main__":
    sys.exit(main())
