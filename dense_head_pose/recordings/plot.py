"""The plot of a recording: yaw, pitch and roll against time, a line per face id, broken
where the face was not seen."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime
from ..errors import DenseHeadPoseError
from .rows import FaceRow


class PlotError(DenseHeadPoseError):
    """The plot cannot be made (matplotlib missing)."""


def gaps_as_nan(samples: Sequence[tuple[float, ...]], period: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of one face with a NaN row where it went unseen for more than 1.5
    frame periods, so a plotted line breaks there instead of bridging the gap."""
    data = np.asarray(samples, dtype=float)
    if len(data) < 2 or not period > 0:
        return data[:, 0], data[:, 1:]
    breaks = np.nonzero(np.diff(data[:, 0]) > 1.5 * period)[0]
    for i in breaks[::-1]:
        data = np.insert(data, i + 1, np.nan, axis=0)
    return data[:, 0], data[:, 1:]


def pyplot() -> Any:
    """matplotlib's pyplot (:func:`~dense_head_pose.runtime.pyplot`), or PlotError."""
    try:
        return runtime.pyplot()
    except ImportError:
        raise PlotError("--plot needs matplotlib: pip install 'dense_head_pose[bag]'") from None


def series_of(rows: Iterable[FaceRow]) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per face id, its (seconds, yaw, pitch, roll) in row order."""
    series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for row in rows:
        series[row.id].append((row.stamp_ns * 1e-9, row.yaw, row.pitch, row.roll))
    return series


def plot_rows(rows: Iterable[FaceRow], path: Path, title: str = "") -> None:
    """Yaw, pitch and roll against time (seconds from the first frame), a line per face."""
    series = series_of(rows)
    plt = pyplot()
    times = sorted(t for samples in series.values() for t, *_ in samples)
    start = times[0] if times else 0.0
    period = float(np.median(np.diff(np.unique(times)))) if len(set(times)) > 1 else 0.0
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(10, 7), constrained_layout=True)
    try:
        for name, samples in sorted(series.items(), key=lambda kv: kv[1][0][0]):
            t, values = gaps_as_nan(samples, period)
            for k, ax in enumerate(axes):
                ax.plot(t - start, values[:, k], label=name, linewidth=1.2)
        for ax, label in zip(axes, ("yaw", "pitch", "roll")):
            ax.set_ylabel(f"{label} (deg)")
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("time (s, from the first frame)")
        if series and len(series) <= 12:
            axes[0].legend(loc="upper right", fontsize="small", ncol=min(len(series), 4))
        elif series:
            axes[0].set_title(f"{len(series)} faces")
        fig.suptitle(title or "head pose")
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
