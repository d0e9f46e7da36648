"""What every benchmark shares: timing, isolated worker processes, peak memory, the machine header.

Each measurement runs in its own Python process (`python -m benchmarks.worker`), so its peak
resident memory is its own and one framework's thread pools never slow another's.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCHMARK_RESULT "
PACKAGES = ("tensorflow", "keras", "torch", "transformers", "jax", "ai-edge-litert", "numpy")


def threads() -> int:
    """Threads each framework is given: the cores this process may use."""
    return len(os.sched_getaffinity(0))


def time_calls(fn: Callable[[], Any], warmup: int, repeats: int) -> dict[str, float]:
    """Median, min and max wall seconds of `repeats` calls of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def memory_mib() -> dict[str, float]:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return {"rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]}


def reset_peak_memory() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0), so a later peak excludes set-up; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False



def step_timer():
    """A Keras callback recording each `fit` batch's wall time in `.durations` (keras is imported
    only when called, so torch-only workers never load it)."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.durations: list[float] = []
            self._start = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.durations.append(time.perf_counter() - self._start)

    return StepTimer()

def emit(result: dict[str, Any]) -> None:
    """Prints a worker's result where `run_worker` finds it."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


def run_worker(job: dict[str, Any], timeout_s: float = 3600, backend: str = "tensorflow",
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs `job` in a fresh `python -m benchmarks.worker` process and returns its result dict.

    A crash, an out-of-memory kill or a timeout gives `{"error": ...}` instead of raising, so one
    failed configuration (a quadratic Transformer at 64k inputs, say) does not end the run.
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **(env or {}))
    command = [sys.executable, "-m", "benchmarks.worker", json.dumps(job)]
    try:
        process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    for line in reversed(process.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    if process.returncode in (-9, 137):
        reason = "killed (out of memory)"
    else:
        reason = f"exit code {process.returncode}"
    tail = (process.stderr.strip().splitlines() or [""])[-1][:300]
    return {"error": f"{reason}: {tail}" if tail else reason}


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def cpu_description() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    interesting = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")
    return {"model": model, "cores": threads(), "isa": [flag for flag in interesting if flag in flags]}


def memory_total_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def header(title: str, command: str) -> str:
    """Markdown heading with the machine, versions and the command that produced the page."""
    cpu = cpu_description()
    package_versions = ", ".join(f"{name} {version}" for name, version in versions().items())
    return "\n".join([
        f"# {title}",
        "",
        f"- Machine: {cpu['model']}, {cpu['cores']} cores, {memory_total_gib():.0f} GiB; "
        f"vector ISA: {', '.join(cpu['isa']) or 'none detected'}",
        f"- Python {platform.python_version()}; {package_versions}",
        f"- Command: `{command}`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ])


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_page(path: Path, text: str) -> Path:
    """Writes a results page atomically (a killed run leaves the previous page, not half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path
