"""Thresholds, the export report, and its JSON / Markdown / terminal renderings."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from export.accelerators import markdown_lines, summary_line

PASS, FAIL = "pass", "FAIL"


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Parity limits against the Keras model; a violated one fails the export report.

    Attributes:
        saved_model_max_abs_diff: largest absolute output difference of the reloaded SavedModel.
        float32_max_abs_diff: the same for the unoptimized .tflite.
        float16_max_abs_diff: the same for the float16-weight .tflite.
        dynamic_top1_agreement: smallest fraction of argmax predictions that match Keras, for
            dynamic-range quantization.
        int8_top1_agreement: the same for full-integer quantization.
        int8_max_accuracy_drop: largest accuracy drop (a fraction: 0.01 is one point) of the int8
            model below the Keras model's, when labels are known.
        int16x8_top1_agreement, int16x8_max_accuracy_drop: the same for the 16x8 variant.

    A limit of `None` is not held: the value is reported only (e.g. a masked LM's agreement over
    all positions, where only its masked positions matter). The agreement and accuracy limits apply
    to logits only: a regression export (`export_model(regression=True)`) has neither, and its
    dynamic and int8 variants are reported.
    """

    saved_model_max_abs_diff: float | None = 1e-5
    float32_max_abs_diff: float | None = 1e-4
    float16_max_abs_diff: float | None = 1e-2
    dynamic_top1_agreement: float | None = 0.99
    int8_top1_agreement: float | None = 0.99
    int8_max_accuracy_drop: float | None = 0.01
    int16x8_top1_agreement: float | None = 0.99
    int16x8_max_accuracy_drop: float | None = 0.01

    def saved_model_failures(self, diff: float | None) -> list[str]:
        return _at_most("max_abs_diff", diff, self.saved_model_max_abs_diff)

    def variant_failures(self, variant: VariantReport, keras_accuracy: float | None) -> list[str]:
        """Human-readable descriptions of the thresholds `variant` violates (empty if none)."""
        q = variant.quantization
        if q == "float32":
            return _at_most("max_abs_diff", variant.max_abs_diff, self.float32_max_abs_diff)
        if q == "float16":
            return _at_most("max_abs_diff", variant.max_abs_diff, self.float16_max_abs_diff)
        if q == "dynamic":
            return _at_least("top1_agreement", variant.top1_agreement, self.dynamic_top1_agreement)
        agreement, limit = getattr(self, f"{q}_top1_agreement"), getattr(self, f"{q}_max_accuracy_drop")
        failures = _at_least("top1_agreement", variant.top1_agreement, agreement)
        if limit is not None and variant.accuracy is not None and keras_accuracy is not None:
            drop = round(keras_accuracy - variant.accuracy, 9)  # 0.97 - 0.96 is 0.01000000000000001.
            if drop > limit:
                failures.append(
                    f"accuracy drop {drop:.4f} (Keras {keras_accuracy:.4f} -> {q} "
                    f"{variant.accuracy:.4f}) > {limit}"
                )
        return failures


def _at_most(metric: str, value: float | None, limit: float | None) -> list[str]:
    """A NaN or infinite value fails every limit: `nan > limit` is False, which must not pass."""
    if value is None or limit is None:
        return []
    if not math.isfinite(value):
        return [f"{metric} is {value} (NaN or infinite outputs)"]
    return [f"{metric} {value:.3g} > {limit:g}"] if value > limit else []


def _at_least(metric: str, value: float | None, limit: float | None) -> list[str]:
    if value is None or limit is None:
        return []
    if not math.isfinite(value):
        return [f"{metric} is {value}"]
    return [f"{metric} {value:.4f} < {limit:g}"] if value < limit else []


def strict_json(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, so `json.dumps(allow_nan=False)` works.

    Python's json writes bare `NaN`, which strict JSON readers reject; the failures say what it was.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


@dataclasses.dataclass
class VariantReport:
    """What was measured for one .tflite file (`None`: not applicable, e.g. no labels).

    `extra_metrics` holds task-specific measurements (`export_model(extra_metrics=...)`), reported
    but not held to a threshold; `accelerators` the edge toolchains' reports
    (`export.accelerators.accelerator_reports`: float ops, vela, TensorFlow Lite Micro, GPU delegate).
    """

    quantization: str
    file: str
    size_bytes: int
    max_abs_diff: float | None
    top1_agreement: float | None
    accuracy: float | None
    latency_ms: dict[str, float]
    ops: dict[str, int]
    gpu_delegate: dict[str, Any]
    failures: list[str] = dataclasses.field(default_factory=list)
    extra_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    accelerators: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclasses.dataclass
class ExportReport:
    """Everything `export_model` wrote and measured; `report.json` is `to_dict()`."""

    model: str
    created: str
    versions: dict[str, str]
    keras: dict[str, Any]
    saved_model: dict[str, Any]
    variants: dict[str, VariantReport]
    thresholds: Thresholds
    batch_size: int | None
    out_dir: str = ""
    extra_artifacts: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[str]:
        """Every violated threshold, prefixed by the artefact it concerns."""
        found = [f"keras: {f}" for f in self.keras.get("failures", [])]
        found += [f"saved_model: {f}" for f in self.saved_model["failures"]]
        found += [f"{q}: {f}" for q, v in self.variants.items() for f in v.failures]
        if self.extra_artifacts is not None and not self.extra_artifacts.get("passed"):
            found.append(f"extra artifacts: {self.extra_artifacts.get('summary', 'failed')}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "created": self.created,
            "versions": self.versions,
            "batch_size": self.batch_size,
            "static_batch": self.batch_size is not None,
            "thresholds": dataclasses.asdict(self.thresholds),
            "keras": self.keras,
            "saved_model": self.saved_model,
            "variants": {q: v.to_dict() for q, v in self.variants.items()},
            **({"extra_artifacts": self.extra_artifacts} if self.extra_artifacts is not None else {}),
            "failures": self.failures,
            "passed": self.passed,
        }

    def write(self, directory: str | os.PathLike) -> None:
        """Writes `report.json` and `report.md` into `directory`."""
        with open(os.path.join(directory, "report.json"), "w") as f:
            json.dump(strict_json(self.to_dict()), f, indent=2, allow_nan=False)
            f.write("\n")
        with open(os.path.join(directory, "report.md"), "w") as f:
            f.write(self.markdown())

    def rows(self) -> list[list[str]]:
        """The summary table: a header, then Keras, the SavedModel and one row per variant."""
        rows = [[
            "variant", "size", "max abs diff", "top-1 agreement", "accuracy", "latency 1t / 2t (ms)",
            "GPU delegate", "result",
        ]]
        keras_result = FAIL if self.keras.get("failures") else "baseline"
        rows.append(["keras", "-", "-", "-", _fraction(self.keras.get("accuracy")), "-", "-", keras_result])
        sm = self.saved_model
        rows.append(
            ["saved_model", "-", _number(sm["max_abs_diff"]), "-", "-", "-", "-", _result(sm["failures"])]
        )
        for name, extra in sm.get("extra_signatures", {}).items():
            rows.append([
                f"saved_model:{name}", "-", _number(extra["max_abs_diff"]), "-", "-", "-", "-",
                _result(extra["failures"]),
            ])
        for q, v in self.variants.items():
            latency = " / ".join(f"{v.latency_ms[t]:.3f}" for t in sorted(v.latency_ms))
            gpu = {True: "yes", False: "no"}.get(v.gpu_delegate.get("compatible"), "unknown")
            rows.append([
                q, _size(v.size_bytes), _number(v.max_abs_diff), _fraction(v.top1_agreement),
                _fraction(v.accuracy), latency or "-", gpu, _result(v.failures),
            ])
        return rows

    def table(self) -> str:
        """The summary table as aligned plain text, with the failures below it."""
        rows = self.rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [f"{q}: {_metrics(v.extra_metrics)}" for q, v in self.variants.items() if v.extra_metrics]
        lines += [summary_line(v.accelerators) for v in self.variants.values() if v.accelerators]
        if self.extra_artifacts is not None:
            lines.append(self.extra_artifacts.get("summary", ""))
        lines += [f"  {failure}" for failure in self.failures]
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: {self.out_dir or self.model}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """`report.md`: the summary table, the thresholds and the failures."""
        rows = self.rows()
        lines = [
            f"# Export report: {self.model}",
            "",
            f"Created {self.created}; .tflite batch {'dynamic' if self.batch_size is None else f'static ({self.batch_size})'}; "
            f"{self.keras.get('num_eval', 0)} evaluation samples; "
            + ", ".join(f"{k} {v}" for k, v in self.versions.items()) + ".",
            "",
            "| " + " | ".join(rows[0]) + " |",
            "|" + "---|" * len(rows[0]),
            *("| " + " | ".join(row) + " |" for row in rows[1:]),
            "",
            "## Thresholds",
            "",
            "| threshold | value |",
            "|---|---|",
            *(f"| {k} | {'reported, not held' if v is None else format(v, 'g')} |"
              for k, v in dataclasses.asdict(self.thresholds).items()),
            "",
            *(["Regression outputs: the top-1 agreement and accuracy limits do not apply.", ""]
              if self.keras.get("regression") else []),
            "## Operators",
            "",
            *(_ops_line(q, v) for q, v in self.variants.items()),
            "",
            *_accelerator_section(self.variants),
            *_extra_metrics_section(self.variants),
            *(["## Further artifacts", "", "```", self.extra_artifacts.get("summary", ""), "```", ""]
              if self.extra_artifacts is not None else []),
            f"## Result: {'passed' if self.passed else 'FAILED'}",
            "",
            *(f"- {failure}" for failure in self.failures),
        ]
        return "\n".join(lines).rstrip() + "\n"


def _ops_line(quantization: str, variant: VariantReport) -> str:
    line = f"- {quantization}: " + ", ".join(f"{op} x{count}" for op, count in variant.ops.items())
    unsupported = variant.gpu_delegate.get("unsupported_ops") or []
    return line + (f" (not supported by the GPU delegate: {', '.join(unsupported)})" if unsupported else "")


def _accelerator_section(variants: dict[str, VariantReport]) -> list[str]:
    reports = {q: v.accelerators for q, v in variants.items() if v.accelerators}
    if not reports:
        return []
    return ["## Edge accelerators", "",
            "Arm Ethos-U by `vela`, TensorFlow Lite Micro's interpreter, the GPU delegate's op list; float ops "
            "counted from the flatbuffer (QUANTIZE/DEQUANTIZE at a float model input or output excluded).", "",
            *markdown_lines(reports), ""]


def _extra_metrics_section(variants: dict[str, VariantReport]) -> list[str]:
    lines = [f"- {q}: {_metrics(v.extra_metrics)}" for q, v in variants.items() if v.extra_metrics]
    return ["## Task metrics", "", *lines, ""] if lines else []


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
        for name, value in metrics.items()
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1024**2 else f"{size / 1024**2:.2f} MiB"


def _result(failures: list[str]) -> str:
    return FAIL if failures else PASS
