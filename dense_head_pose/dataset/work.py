"""One unit of a run's work, done where a worker runs: a recording, or a time chunk of a
bag, through the estimator the worker loaded once (:func:`perform`).

A task on a whole recording writes that recording's outputs itself, at their final paths,
as it goes (the output bag or drawn video, the CSV, the plot, the table's part): a stop
leaves them closed and valid, shorter. A chunk writes nothing: its face rows go back to the
driver, which joins the chunks and writes the recording's outputs. A task that fails for
its recording's own reasons returns the reason; a stop raises on (a worker process returns
``interrupted``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError
from ..lifetime import Interrupted
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..recordings.frame_loop import Frame, Sink
from ..recordings.process import Processed, process_bag, process_video
from ..recordings.rows import CsvWriter, FaceRow
from ..recordings.sinks import CallbackSink, CsvSink, VideoSink, rows_of
from ..recordings.summary import BagOptions, Window
from ..video.tracking import TrackerOptions
from .table import PART_COLUMNS, part_cells


@dataclass(frozen=True)
class Settings:
    """What every task of a run shares."""

    kind: str
    """``"bag"`` or ``"video"``."""
    tracker: TrackerOptions
    bag: BagOptions = field(default_factory=BagOptions)
    """The bag options, without the per-recording outputs."""
    mode: str = "pose"
    """What ``video --out`` draws."""
    intrinsics: CameraIntrinsics | None = None
    max_frames: int = 0


@dataclass(frozen=True)
class Outputs:
    """Where a recording's outputs land (None: not asked)."""

    out: Path | None = None
    """Its output bag (``bag``) or drawn video (``video``)."""
    csv: Path | None = None
    plot: Path | None = None
    part: Path | None = None
    """Its rows for the run's table (``--summary``), a hidden CSV."""

    def paths(self) -> list[Path]:
        return [p for p in (self.out, self.csv, self.plot, self.part) if p is not None]


@dataclass(frozen=True)
class Task:
    """A recording, or one chunk of it."""

    index: int
    """The recording's place in the run."""
    name: str
    """Its outputs' name, unique in the run."""
    path: str
    outputs: Outputs = Outputs()
    """What the task writes (nothing for a chunk: the driver writes a chunked recording's)."""
    window: Window | None = None
    chunk: int = 0
    chunks: int = 1
    media_s: float | None = None
    """Seconds of media the task covers, as far as known before (for the progress)."""
    attempt: int = 0


@dataclass
class Outcome:
    """What a task did: its counts, its rows (a chunk's), or why it failed."""

    task: Task
    frames: int = 0
    faces: int = 0
    media_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    """A bag's summary (:meth:`~..recordings.summary.BagSummary.record`)."""
    rows: list[FaceRow] = field(default_factory=list)
    warmup_rows: list[FaceRow] = field(default_factory=list)
    """A chunk's warm-up rows (frames before its start), to join the ids across the border."""
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    interrupted: bool = False
    node: str = ""


def reason(exc: BaseException) -> str:
    """An exception as one line: our errors' own message, others' type too."""
    text = " ".join(str(exc).split())[:500]
    if isinstance(exc, DenseHeadPoseError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


Report = Callable[[float], None]
"""Hears of media seconds done."""


def perform(task: Task, settings: Settings, estimator: HeadPoseEstimator,
            report: Report | None = None, emit: Callable[[Frame, Any], None] | None = None,
            checkpoint: Callable[[], None] | None = None) -> Outcome:
    """Do ``task`` with ``estimator``. ``report(seconds)`` hears of progress, ``emit`` gets
    each frame's result (JSON lines), ``checkpoint()`` runs after each frame (a worker raises
    a stop there). A stop raises on with the outputs closed; any other failure is the
    outcome's ``error``."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        if settings.kind == "bag":
            outcome = _bag(task, settings, estimator, report, checkpoint)
        else:
            outcome = _video(task, settings, estimator, report, emit, checkpoint)
    except (KeyboardInterrupt, Interrupted):
        raise
    except Exception as exc:  # anything: this recording's failure, the others go on
        if isinstance(exc, BrokenPipeError) or getattr(exc, "ends_the_run", False):
            raise  # the command's own output is gone (JSON on stdout): nothing goes on
        outcome = Outcome(task, error=reason(exc))
    outcome.wall_s = time.perf_counter() - wall0
    outcome.cpu_s = time.process_time() - cpu0
    with contextlib.suppress(Exception):
        import platform

        outcome.node = platform.node()
    return outcome


class _Progress:
    """Media seconds done, reported in steps of a second at least."""

    def __init__(self, report: Report | None) -> None:
        self.report, self.sent = report, 0.0

    def at(self, seconds: float, final: bool = False) -> None:
        if self.report is not None and (seconds - self.sent >= 1.0 or
                                        (final and seconds > self.sent)):
            self.report(seconds - self.sent)
            self.sent = seconds


def _bag(task: Task, settings: Settings, estimator: HeadPoseEstimator,
         report: Report | None, checkpoint: Callable[[], None] | None) -> Outcome:
    progress = _Progress(report)

    def on_frame(n: int, total: int | None) -> None:
        if total and task.media_s:
            progress.at(task.media_s * min(1.0, n / total))
        if checkpoint is not None:
            checkpoint()

    outputs = task.outputs
    options = replace(settings.bag, out=outputs.out, csv=outputs.csv, plot=outputs.plot)
    kept = Processed() if task.chunks > 1 else None
    extra = [PartSink(outputs.part)] if outputs.part is not None else []
    summary = process_bag(task.path, estimator, settings.tracker, options, on_frame,
                          window=task.window, kept=kept, extra=extra)
    outcome = Outcome(task, frames=summary.frames_read, faces=summary.faces,
                      media_s=summary.recorded_s, problems=list(summary.problems),
                      details=summary.record(), error=summary.error)
    if kept is not None:
        outcome.rows, outcome.warmup_rows = kept.rows, kept.warmup
    progress.at(outcome.media_s, final=True)
    return outcome


def _video(task: Task, settings: Settings, estimator: HeadPoseEstimator,
           report: Report | None, emit: Callable[[Frame, Any], None] | None,
           checkpoint: Callable[[], None] | None) -> Outcome:
    from ..video.sources import open_source
    from ..video.writer import VideoWriter

    progress = _Progress(report)
    outputs = task.outputs
    sinks: list[Sink] = []
    writer = None

    def on_frame(frames: int, seconds: float) -> None:
        progress.at(seconds)
        if checkpoint is not None:
            checkpoint()

    source_path: Any = int(task.path) if task.path.isdigit() else task.path
    with open_source(source_path) as source:
        if emit is not None:
            sinks.append(CallbackSink(emit))
        if outputs.out is not None:
            from ..pipeline.drawing import drawer

            writer = VideoWriter(outputs.out, source.fps)
            sinks.append(VideoSink(writer, drawer(settings.mode)))
        if outputs.part is not None:
            sinks.append(PartSink(outputs.part))
        try:
            run = process_video(source, estimator, settings.tracker, sinks,
                                settings.intrinsics, settings.max_frames,
                                dense=settings.mode in ("dense", "mesh") and writer is not None,
                                on_frame=on_frame)
        except BaseException:
            if writer is not None:  # whatever stopped us, the frames so far stay playable
                writer.abort()
            raise
        if writer is not None:
            writer.close()  # VideoError if the file is not whole (a full disk)
    outcome = Outcome(task, frames=run.frames, faces=run.faces, media_s=run.media_s,
                      details={"description": run.description, "skipped": run.skipped,
                               "face_ids": run.face_ids, "out": str(outputs.out or ""),
                               "codec": writer.codec if writer is not None else None})
    progress.at(outcome.media_s, final=True)
    return outcome


class PartSink(CsvSink):
    """A recording's rows for the run's table (:data:`~.table.PART_COLUMNS`: a whole
    recording is chunk 0), written as its CSV is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = CsvWriter(path, PART_COLUMNS)

    def write(self, frame: Frame, result: Any) -> None:
        if not frame.warming:
            self.csv.cells(part_cells(0, rows_of(frame, result)))
