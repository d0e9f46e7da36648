"""`python -m zoo list | train | evaluate | demo | tune | convert`.

Exit status: 0 on success, 1 when a check fails (the demo's or the tuned model's export), 2 when the input is
refused: a usage error, a value out of range (named by its flag), an option the task does not use, a run
directory or file that cannot be used, or a data file that cannot be decoded (named by its path).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from export.arguments import COUNT, NON_NEGATIVE_INT, ArgumentParser, Number, UsageError
from export.data_errors import data_file_error
from zoo import options as zoo_options
from zoo import registry


def _parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"Expected KEY=VALUE. Received: {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


TUNERS = ("bayesian", "hyperband", "random")  # zoo.tuning.TUNERS (tuning imports KerasTuner)


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m zoo", description="The perceiver-keras model zoo.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the presets")
    listing.add_argument("--task", choices=sorted(registry.TASK_MODULES))
    train = commands.add_parser("train", help="fit a preset with model.fit into a run directory")
    _add_task_parsers(train, _add_train_arguments, "--set KEY=VALUE overrides a model builder argument, e.g. "
                                                   "--set num_blocks=2")
    evaluate = commands.add_parser("evaluate", help="test-split metrics of a run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--batch-size", type=COUNT, help="default: the run's")
    generate = commands.add_parser("generate", help="continue a prompt with a causal language model run (Perceiver AR)")
    generate.add_argument("run_dir", help="a causal_language_modeling run directory (its model.keras)")
    generate.add_argument("--prompt", required=True, help="the text to continue (at least one byte)")
    generate.add_argument("--max-new-bytes", type=int, default=256, help="bytes to generate (default 256)")
    generate.add_argument("--temperature", type=float, default=1.0, help="> 0 (default 1.0)")
    generate.add_argument("--top-k", type=int, help="sample among the k most likely bytes")
    generate.add_argument("--top-p", type=float, help="nucleus sampling, in (0, 1]")
    generate.add_argument("--seed", type=int, help="seeds the sampling")
    generate.add_argument("--greedy", action="store_true", help="take the most likely byte each step")
    generate.add_argument("--no-cache", dest="use_cache", action="store_false",
                          help="a full pass over the window per byte instead of one cached latent step")
    demo = commands.add_parser("demo", help="train digits, evaluate, export and verify (offline)")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--epochs", type=COUNT)
    _add_tune_parser(commands)
    convert = commands.add_parser("convert", help="turn a transformers save_pretrained folder (safetensors) into a "
                                                  "keras-hub preset, checked against transformers' own model")
    convert.add_argument("folder", help="the transformers folder: config.json and model.safetensors")
    convert.add_argument("--out", required=True, help="the preset folder to write (replaced if it holds a preset)")
    convert.add_argument("--no-parity", dest="parity", action="store_false",
                         help="skip the comparison with transformers' PyTorch model (needs torch)")
    return parser


class _TaskParser(ArgumentParser):
    """The parser of `train TASK` / `tune TASK`: a flag of another task is refused in that task's terms."""

    def __init__(self, *args, task: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if self.task is not None:
            known = {zoo_options.flag(name) for name in zoo_options.all_options()}
            others = sorted({text.split("=", 1)[0] for text in extras if text.split("=", 1)[0] in known})
            if others:
                self.error(zoo_options.unused_message(self.task, others))
        return namespace, extras


def _add_task_parsers(command: argparse.ArgumentParser, add_arguments, set_help: str) -> None:
    """One sub-parser per task under `command`, each with `add_arguments`' flags and the task's training options."""
    tasks = command.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=_TaskParser,
                                   help=", ".join(sorted(registry.TASK_MODULES)))
    for task in sorted(registry.TASK_MODULES):
        recipe = registry.get_recipe(task)
        parser = tasks.add_parser(task, task=task, help=(recipe.__doc__ or "").strip().split("\n")[0],
                                  description=f"{command.prog} {task}: the common training options and those of "
                                              f"task {task}.")
        add_arguments(parser)
        _add_training_options(parser, recipe, set_help)


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    from zoo.distribute import STRATEGIES

    train.add_argument("--preset", required=True)
    train.add_argument("--out", required=True, help="run directory (resumed if interrupted)")
    train.add_argument("--overwrite", action="store_true", help="train again over a finished run")
    train.add_argument("--init-from", metavar="SOURCE", help="fine-tune: start from every weight whose path and shape "
                       "match in a run directory, a .keras file, a transformers save_pretrained folder (safetensors) "
                       "or a keras-hub preset directory; run.json lists what was not loaded and why")
    train.add_argument("--freeze-backbone", action="store_true", help="with --init-from: train the head alone "
                       "(every loaded weight outside the query, decoder and postprocessor is frozen)")
    train.add_argument("--strategy", default=None, choices=STRATEGIES, help="default, mirrored, multi_worker "
                       "(TF_CONFIG), tpu, or data_parallel (JAX); --batch-size stays the global batch")
    train.add_argument("--worker-timeout", type=zoo_options.POSITIVE, default=300.0,
                       help="multi_worker: seconds to wait for the workers of TF_CONFIG (300)")


def _add_training_options(parser: argparse.ArgumentParser, recipe, set_help: str) -> None:
    """The training options of a task (the common ones and its recipe's): `train` and `tune` (every trial) take them."""
    common = parser.add_argument_group("training options (every task)")
    own = parser.add_argument_group(f"options of task {recipe.name}")
    for group, options in ((common, zoo_options.COMMON_OPTIONS), (own, recipe.options)):
        for name, option in options.items():
            if option.switch:
                group.add_argument(zoo_options.flag(name), action=argparse.BooleanOptionalAction, default=None,
                                   help=option.help)
            else:
                group.add_argument(zoo_options.flag(name), type=option.type, choices=option.choices, help=option.help)
    common.add_argument("--jit", dest="jit_compile", action=argparse.BooleanOptionalAction, default=None,
                        help="XLA compilation (default: Keras' auto)")
    common.add_argument("--set", dest="overrides", type=_parse_override, action="append", default=[],
                        metavar="KEY=VALUE", help=set_help)


def _add_tune_parser(commands) -> None:
    tune = commands.add_parser("tune", help="search latents, width, depth, heads, learning rate and weight decay "
                                            "around a preset; retrain and export the best")
    _add_task_parsers(tune, _add_tune_arguments, "--set KEY=VALUE overrides a builder argument before centring the "
                                                 "search")


def _add_tune_arguments(tune: argparse.ArgumentParser) -> None:
    from export.arguments import quantizations

    tune.add_argument("--preset", required=True, help="the preset at the centre of the search")
    tune.add_argument("--out", required=True, help="tuning directory (tuner/ state resumes; results.md; best/; export/)")
    tune.add_argument("--tuner", default="random", choices=TUNERS, help="random, hyperband or bayesian")
    tune.add_argument("--max-trials", type=COUNT, default=10, help="configurations to try (Hyperband: at most)")
    tune.add_argument("--scale", type=Number(float, 1, low_open=True), default=2.0,
                      help="architecture candidates at 1/scale, 1 and scale times the preset's (> 1)")
    tune.add_argument("--retrain-epochs", type=COUNT, help="epochs of the best configuration's run (default: --epochs)")
    tune.add_argument("--no-export", dest="export", action="store_false", help="skip exporting the best model")
    tune.add_argument("--quantize", type=quantizations, help="the export's comma-separated quantizations (default: all)")
    tune.add_argument("--latency-runs", type=NON_NEGATIVE_INT, default=20,
                      help="the export's timed runs per variant (0: skip)")
    tune.add_argument("--overwrite", action="store_true", help="start the search, retraining and export afresh")


def _options(args: argparse.Namespace) -> dict[str, object]:
    """The training options of a `train` or `tune` command line, checked for its task (None: not given)."""
    options = {name: getattr(args, name) for name in zoo_options.task_options(args.task)}
    options["jit_compile"] = args.jit_compile
    zoo_options.check_options(args.task, options)
    return options


def _tune(args: argparse.Namespace) -> int:
    options = _options(args)
    zoo_options.check_out(args.out, "a tuning directory (new or an earlier search's)")
    from zoo import tuning

    result = tuning.tune(
        args.task, args.preset, args.out, tuner=args.tuner, max_trials=args.max_trials,
        model_overrides=dict(args.overrides), scale=args.scale, retrain_epochs=args.retrain_epochs,
        export=args.export, quantize=args.quantize, latency_runs=args.latency_runs, overwrite=args.overwrite,
        **options,
    )
    print((Path(args.out) / "results.md").read_text())
    print(json.dumps(result["best"]["test_metrics"], indent=2))
    return 0 if result.get("export", {"passed": True})["passed"] else 1


EXIT_INPUT_ERROR = 2
"""The exit status of a command refused for its input (a bad option, run directory or file), as argparse's."""
_INPUT_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a command; returns 0 on success, 1 when a check fails, 2 when the input is refused."""
    try:
        args = _parser().parse_args(argv)
        return _run(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_INPUT_ERROR
    except _INPUT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as error:  # noqa: BLE001 - only our data readers' errors are input errors; others re-raise
        message = data_file_error(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _generate(args: argparse.Namespace) -> int:
    from zoo.language.generation import check_sampling, generate
    from zoo.training import load_run

    check_sampling(args.max_new_bytes, args.temperature, args.top_k, args.top_p, args.greedy)  # before loading
    model, run = load_run(args.run_dir)
    if run.get("task") != "causal_language_modeling":
        raise ValueError(f"`generate` needs a causal_language_modeling run. Received: {args.run_dir} of task "
                         f"{run.get('task')!r}")
    vocabulary = None
    data_kwargs = (run.get("data") or {}).get("kwargs") or {}
    if data_kwargs.get("tokenizer", "bytes") != "bytes":  # a SentencePiece run: its vocabulary, as it trained
        from zoo.language.vocabulary import make_vocabulary

        vocabulary = make_vocabulary(data_kwargs["tokenizer"], data_kwargs.get("vocabulary_size"),
                                     data_kwargs.get("sentencepiece_model"))
    text = generate(model, args.prompt, args.max_new_bytes, args.temperature, args.top_k, args.top_p, args.seed,
                    greedy=args.greedy, use_cache=args.use_cache, vocabulary=vocabulary)
    sys.stdout.write(text + "\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "list":
        for name in registry.list_models(args.task):
            preset = registry.get_preset(name)
            count = preset.metadata.get("parameter_count")
            print(f"{name:24s} {preset.task:22s} {preset.metadata.get('dataset', ''):14s} "
                  f"{'' if count is None else f'{count:,} params'}")
        return 0
    if args.command == "train":
        options = _options(args)
        zoo_options.check_out(args.out)
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
    if args.command == "generate":
        return _generate(args)
    if args.command == "convert":
        zoo_options.check_out(args.out, "a keras-hub preset folder (new or an earlier conversion's)")
        from zoo.convert.preset import to_preset

        print(json.dumps(to_preset(args.folder, args.out, check_parity=args.parity), indent=2))
        return 0
    from zoo import demo

    return demo.run(args.out, epochs=args.epochs)


if __name__ == "__main__":
    sys.exit(main())
