"""Per-stage timing summaries (median / p95) and their table and JSON forms.

Speed is measured by commands that print these tables, not asserted in tests: machines differ,
a table says what was measured where.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

#: Canonical stage order of the pipeline tables; other stages follow in first-seen order.
STAGE_ORDER = ("detect", "preprocess", "infer", "reconstruct_sparse", "pose",
               "reconstruct_dense", "draw", "render")


class StageSamples:
    """Collects one duration (ms) per stage per frame."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.frame_ms: list[float] = []

    def add(self, timings: Mapping[str, float], frame_ms: float | None = None) -> None:
        """Record the stage timings of one frame (and optionally its wall time)."""
        for stage, ms in timings.items():
            self.samples.setdefault(stage, []).append(float(ms))
        if frame_ms is not None:
            self.frame_ms.append(float(frame_ms))

    def ordered_stages(self) -> list[str]:
        """Stages in pipeline order."""
        known = [s for s in STAGE_ORDER if s in self.samples]
        return known + [s for s in self.samples if s not in STAGE_ORDER]

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {"median_ms": m, "p95_ms": p}}`` in pipeline order."""
        return {stage: summarise(self.samples[stage]) for stage in self.ordered_stages()}


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Median and 95th percentile of ``values`` (ms), rounded to microseconds."""
    arr = np.asarray(values, dtype=np.float64)
    return {"median_ms": round(float(np.median(arr)), 3),
            "p95_ms": round(float(np.percentile(arr, 95)), 3)}


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform says: benchmark tables name
    the CPU they ran on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table, so output can be pasted into the README."""
    text_rows = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in text_rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(text_rows[0]), sep, *(line(r) for r in text_rows[1:])])


def stage_table(summary: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of a :meth:`StageSamples.summary`."""
    return format_table(
        [(stage, f"{s['median_ms']:.3f}", f"{s['p95_ms']:.3f}") for stage, s in summary.items()],
        ("stage", "median ms", "p95 ms"))
