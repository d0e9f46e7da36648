"""`python -m benchmarks [inference|training|scaling|profile|learning|all] ...`: writes benchmarks/results/*.md.

Examples:
    python -m benchmarks inference --models imagenet_fourier --batch-sizes 1 8
    python -m benchmarks training --training-model small_fourier   # or a paper preset: imagenet_learned
    python -m benchmarks scaling
    python -m benchmarks profile      # the ImageNet model's pieces and plain GEMMs, per engine
    python -m benchmarks learning --steps 1000 --seeds 0 1 2   # model.fit vs a PyTorch loop on digits
    python -m benchmarks user-paths   # predict / predict_on_batch / model(x) / tf.function, in one process
    python -m benchmarks ar-scaling   # Perceiver AR vs a causal Transformer, context 1k-64k
    python -m benchmarks edge   # every small preset on vela (Ethos-U), TensorFlow Lite Micro, XNNPACK int8 vs float
    python -m benchmarks all --toy --out /tmp/bench   # the smoke run the tests use
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from benchmarks import harness, inference, models

RESULTS = Path(__file__).parent / "results"
SUITES = ("inference", "training", "scaling", "profile", "learning")
TOY_MODEL = "toy_fourier"


def run_inference(args: argparse.Namespace, command: str) -> Path:
    """Measures every engine, writing PAGE.md and PAGE.json after each one (marked incomplete until the end).

    Finished jobs are also appended to PAGE.jsonl, and the models' checkpoints and outputs kept in
    .PAGE.work/: the same command run again after a crash or Ctrl-C measures only what is missing
    (`--fresh` starts over). Both are removed once the page is complete.
    """
    model_names = [TOY_MODEL] if args.toy else args.models
    batch_sizes = args.batch_sizes or ([1, 2] if args.toy else [1, 8])
    engines = args.engines or list(inference.QUICK_ENGINES if args.quick else inference.ENGINES)
    page = args.page or ("inference_quick" if args.quick else "inference")
    journal_path, work_dir = args.out / f"{page}.jsonl", args.out / f".{page}.work"
    total = len(model_names) * len(batch_sizes) * (len(set(engines) - {"torch"}) + 2)

    load_before = os.getloadavg()[0]

    def write(results: dict, complete: bool = False) -> Path:
        results = {**results, "command": command, "warmup": args.warmup, "repeats": args.repeats,
                   "load": [load_before, os.getloadavg()[0]]}
        done = sum(len(entry["runs"]) for entry in results["models"].values())
        if not complete:
            results["incomplete"] = f"{done} of {total} engine runs measured so far"
        (args.out / f"{page}.json").write_text(json.dumps(results, indent=1))
        return write_inference_page(results, args.out / f"{page}.md")

    journal = inference.Journal(journal_path, fresh=args.fresh)
    results = inference.measure(model_names, batch_sizes, engines, warmup=args.warmup, repeats=args.repeats,
                                log=lambda line: print(line, flush=True), work_dir=work_dir, journal=journal,
                                on_result=write)
    path = write(results, complete=True)
    journal_path.unlink(missing_ok=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    return path


def write_inference_page(results: dict, path: Path) -> Path:
    """The inference page from a run's results (also used to re-render a saved PAGE.json)."""
    peak = results["matmul_peak"]
    incomplete = [f"**Incomplete: {results['incomplete']}** (the run was stopped or is still going; the same "
                  "command measures the rest).", ""] if results.get("incomplete") else []
    text = "\n".join([
        harness.header("Inference: perceiver-keras beside transformers' PyTorch Perceiver", results["command"]),
        *incomplete,
        "Same configuration, same random weights (transformers' initialisation, written with `save_pretrained`",
        "and loaded with `zoo.convert.from_transformers`), same inputs. Latency is the median of "
        f"{results['repeats']} timed calls after {results['warmup']} warm-up calls (compilation and weight",
        "packing happen there); every engine runs in its own process with threads = cores. The reference runs",
        "first and again last (`torch-again`); ratios use its faster run. GFLOP/s = the reference's",
        "forward FLOPs (counted by `torch.utils.flop_counter`) / latency; our cross-attention folds its",
        "key/value projections and so executes fewer FLOPs than it is credited with. Peak RSS is the",
        "process's resident-memory high-water mark over the timed calls (set-up excluded); working memory",
        "is that peak minus the RSS with the model loaded, before its first call. TFLite files are converted",
        "in one process and timed in another that imports only LiteRT, as an app would run them.",
        "",
        f"Matmul peak measured in this run (2048^3 float32): torch {peak.get('torch', float('nan')):.1f} GFLOP/s, "
        f"TensorFlow {peak.get('tensorflow', float('nan')):.1f} GFLOP/s.",
        "",
        inference.table(results),
        *inference.memory_notes(results),
        *([f"1-minute load average on {harness.threads()} cores: {results['load'][0]:.1f} before the run, "
           f"{results['load'][1]:.1f} after it (a load near or above the core count means other processes competed "
           "for the cores and inflated the latencies; memory figures hardly depend on it).", ""]
          if "load" in results else []),
        "## Targets (ImageNet Fourier, this run; the issue sets them at batch 1)",
        "",
        *inference.verdicts(results),
        "",
    ])
    return harness.write_page(path, text)


def run_training(args: argparse.Namespace, command: str) -> Path:
    from benchmarks import training

    return training.run(args.out, model=args.training_model, batch_size=args.training_batch_size,
                        steps=args.training_steps, toy=args.toy, command=command)


def run_scaling(args: argparse.Namespace, command: str) -> Path:
    from benchmarks import scaling

    return scaling.run(args.out, toy=args.toy, command=command)


def run_profile(args: argparse.Namespace, command: str) -> Path:
    from benchmarks import profile

    return profile.run(args.out, repeats=2 if args.toy else 10, command=command)


def run_learning(args: argparse.Namespace, command: str) -> Path:
    from benchmarks import learning

    if args.toy:
        return learning.run(args.out, steps=5, seeds=(0,), batch_size=16, eval_every=5, command=command)
    return learning.run(args.out, steps=args.steps, seeds=tuple(args.seeds), batch_size=args.batch_size,
                        learning_rate=args.learning_rate, weight_decay=args.weight_decay,
                        warmup_fraction=args.warmup_fraction, epsilon=args.epsilon, eval_every=args.eval_every,
                        threads=args.threads, keras_start=args.keras_start, head=args.head, page=args.page or "learning",
                        command=command)


RUNNERS = {"inference": run_inference, "training": run_training, "scaling": run_scaling, "profile": run_profile,
           "learning": run_learning}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", nargs="?", default="all", choices=(*SUITES, "all"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default benchmarks/results)")
    parser.add_argument("--toy", action="store_true", help="tiny configurations: checks the pipeline runs")
    parser.add_argument("--models", nargs="+", default=["imagenet_fourier", "imagenet_learned", "imagenet_conv"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, help="default: 1 8 (--toy: 1 2)")
    parser.add_argument("--engines", nargs="+", choices=inference.ENGINES,
                        help="default: every engine (--quick: the headline ones and the user paths)")
    parser.add_argument("--quick", action="store_true", help="inference: the headline table (`make bench-quick`)")
    parser.add_argument("--fresh", action="store_true",
                        help="inference: measure everything again (default: keep what an interrupted run measured)")
    parser.add_argument("--page", help="inference and learning page name (PAGE.md, PAGE.json; default: the suite's)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--training-model", default="small_fourier", choices=sorted(models.MODELS))
    parser.add_argument("--training-batch-size", type=int, default=8)
    parser.add_argument("--training-steps", type=int, default=3)
    learning = parser.add_argument_group("learning (Keras fit vs a PyTorch loop on digits)")
    learning.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000)")
    learning.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    learning.add_argument("--batch-size", type=int, default=64)
    learning.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW peak learning rate")
    learning.add_argument("--weight-decay", type=float, default=0.05)
    learning.add_argument("--warmup-fraction", type=float, default=0.1, help="linear warm-up, then cosine to zero")
    learning.add_argument("--epsilon", type=float, help="AdamW epsilon, both sides (default: Keras' 1e-7)")
    learning.add_argument("--eval-every", type=int, default=50, help="steps between test evaluations")
    learning.add_argument("--threads", type=int, default=1, help="TensorFlow and torch threads (default 1)")
    learning.add_argument("--head", choices=("learned", "fourier"), default="learned",
                          help="transformers' image head: trainable or Fourier position encodings")
    learning.add_argument("--keras-start", choices=("own", "torch"), default="own",
                          help="Keras' initial weights: its own initialisers, or torch's for the same seed (a control)")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1:
        parser.error(f"--warmup and --repeats must be >= 1. Received: --warmup {args.warmup} --repeats {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks " + shlex.join(argv)
    if argv[:1] == ["user-paths"]:  # its own options (`python -m benchmarks user-paths --help`)
        from benchmarks import user_paths

        print(f"user-paths: wrote {user_paths.main(argv[1:], command)}", flush=True)
        return 0
    if argv[:1] == ["edge"]:  # its own options (`python -m benchmarks edge --help`); not part of "all"
        from benchmarks import edge

        print(f"edge: wrote {edge.main(argv[1:], command)}", flush=True)
        return 0
    if argv[:1] == ["ar-scaling"]:  # Perceiver AR against a causal Transformer over context length
        from benchmarks import ar_scaling

        rest = argparse.ArgumentParser(prog="python -m benchmarks ar-scaling")
        rest.add_argument("--out", type=Path, default=RESULTS)
        rest.add_argument("--toy", action="store_true")
        options = rest.parse_args(argv[1:])
        _make_out(options.out)
        print(f"ar-scaling: wrote {ar_scaling.run(options.out, toy=options.toy, command=command)}", flush=True)
        return 0
    args = parse_args(argv)
    _make_out(args.out)  # before anything is measured: a result must never be lost to a missing folder
    for suite in SUITES if args.suite == "all" else (args.suite,):
        print(f"{suite}: wrote {RUNNERS[suite](args, command)}", flush=True)
    return 0


def _make_out(out: Path) -> None:
    """Creates the results folder up front; an unusable one is refused before any measurement."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"python -m benchmarks: error: --out {out} is a file; expected a folder for the pages")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SystemExit(f"python -m benchmarks: error: --out {out} cannot be created: {error}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise SystemExit(f"python -m benchmarks: error: --out {out} is not writable")


if __name__ == "__main__":
    sys.exit(main())
