"""One unit of a dataset's work, done where a worker runs: a recording, or a time chunk of a
bag, through the estimator the worker loaded once.

A task writes its own output (the bag of ``bag --out``, the drawn video of ``video --out``)
under a temporary name beside the final one and renames it when whole; its face rows
(the CSV rows of ``bag --csv``, :data:`~..recordings.outputs.CSV_COLUMNS`) go back to the
driver as CSV text, which writes the per-recording CSV, the plot and the dataset's table.
A task that fails for its recording's own reasons returns the reason; one whose worker dies
leaves at most a temporary file, which the driver removes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..recordings.outputs import CSV_COLUMNS, face_rows
from ..recordings.processor import BagOptions, Window
from ..video.tracking import TrackerOptions

PARTIAL = ".partial-"


@dataclass(frozen=True)
class Settings:
    """What every task of a run shares."""

    kind: str
    """``"bag"`` or ``"video"``."""
    tracker: TrackerOptions
    bag: BagOptions = field(default_factory=BagOptions)
    """The bag options, without the per-input outputs."""
    mode: str = "pose"
    """What ``video --out`` draws."""
    intrinsics: CameraIntrinsics | None = None
    max_frames: int = 0


@dataclass(frozen=True)
class Task:
    """A recording, or one chunk of it."""

    index: int
    """The recording's place in the dataset."""
    name: str
    """Its outputs' name, unique in the dataset."""
    path: str
    out: str | None = None
    """Its bag (``bag``) or drawn video (``video``), where the whole one lands."""
    window: Window | None = None
    chunk: int = 0
    chunks: int = 1
    media_s: float | None = None
    """Seconds of media the task covers, as far as known before (for the progress)."""
    attempt: int = 0


@dataclass
class Outcome:
    """What a task did: its counts, its face rows, or why it failed."""

    task: Task
    frames: int = 0
    faces: int = 0
    media_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rows: str = ""
    """CSV text (no header) of the faces of the task's frames."""
    warmup_rows: str = ""
    """A chunk's warm-up rows (frames before its start), to join ids across the border."""
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    node: str = ""


def partial_path(final: str | os.PathLike[str]) -> Path:
    """A temporary name beside ``final``: hidden, unique per attempt, with its suffix (the
    video writer picks its codec by it)."""
    final = Path(final)
    return final.with_name(f".{final.stem}{PARTIAL}{secrets.token_hex(4)}{final.suffix}")


def remove(path: Path | None) -> None:
    if path is None:
        return
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def put_in_place(partial: Path, final: Path) -> None:
    """Rename a whole output to its final name, replacing what a previous attempt that
    died after its rename left there."""
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(partial, final)


def reason(exc: BaseException) -> str:
    """An exception as one line: our errors' own message, others' type too."""
    text = " ".join(str(exc).split())[:500]
    if isinstance(exc, DenseHeadPoseError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def perform(task: Task, settings: Settings, estimator: HeadPoseEstimator,
            report: Callable[[float], None] | None = None) -> Outcome:
    """Do ``task`` with ``estimator``; ``report(seconds)`` hears of media seconds done."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        if settings.kind == "bag":
            outcome = _bag(task, settings, estimator, report)
        else:
            outcome = _video(task, settings, estimator, report)
    except Exception as exc:  # anything: this recording's failure, the others go on
        outcome = Outcome(task, error=reason(exc))
    outcome.wall_s = time.perf_counter() - wall0
    outcome.cpu_s = time.process_time() - cpu0
    with contextlib.suppress(Exception):
        import platform

        outcome.node = platform.node()
    return outcome


def csv_text(rows: list[list[str]]) -> str:
    """Rows as CSV text (how face rows travel from a worker to the driver)."""
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue()


def csv_rows(text: str) -> list[list[str]]:
    """CSV text as rows (:func:`csv_text`'s inverse)."""
    return list(csv.reader(io.StringIO(text)))


def _bag(task: Task, settings: Settings, estimator: HeadPoseEstimator,
         report: Callable[[float], None] | None) -> Outcome:
    from ..recordings.processor import process_bag

    scratch = Path(tempfile.mkdtemp(prefix="dense_head_pose-"))
    partial = partial_path(task.out) if task.out else None
    done = [0.0]

    def on_frame(n: int, total: int | None) -> None:
        if report is not None and total and task.media_s:
            now = task.media_s * min(1.0, n / total)
            if now - done[0] >= 1.0:
                report(now - done[0])
                done[0] = now

    try:
        options = replace(settings.bag, out=partial, csv=scratch / "faces.csv", plot=None)
        held: list[Any] = []
        summary = process_bag(task.path, estimator, settings.tracker, options, on_frame,
                              window=task.window, outputs_out=held)
        outcome = Outcome(task, frames=summary.frames_read, faces=summary.faces,
                          media_s=summary.recorded_s, problems=list(summary.problems))
        if summary.error:
            outcome.error = summary.error
            return outcome
        with open(options.csv, newline="") as file:
            file.readline()  # the header
            outcome.rows = file.read()
        if held:
            outcome.warmup_rows = csv_text(held[0].warmup_rows)
        if partial is not None and task.out:
            put_in_place(partial, Path(task.out))
            partial = None
        if report is not None and outcome.media_s > done[0]:
            report(outcome.media_s - done[0])
        return outcome
    finally:
        remove(partial)
        shutil.rmtree(scratch, ignore_errors=True)


def _video(task: Task, settings: Settings, estimator: HeadPoseEstimator,
           report: Callable[[float], None] | None) -> Outcome:
    from ..errors import VideoError
    from ..video.sources import open_source
    from ..video.tracking import FaceTracker
    from ..video.writer import VideoWriter

    partial = partial_path(task.out) if task.out else None
    outcome = Outcome(task)
    rows: list[list[str]] = []
    reported = 0.0
    try:
        with open_source(task.path) as source:
            tracker = FaceTracker(estimator, settings.tracker)
            drawer = writer = None
            if partial is not None:
                from ..pipeline.drawing import drawer as make_drawer

                drawer = make_drawer(settings.mode)
                writer = VideoWriter(partial, source.fps)
            seconds = 0.0
            try:
                for index, seconds, frame in source.timed():
                    if settings.max_frames and index >= settings.max_frames:
                        break
                    result = tracker(frame, seconds, settings.intrinsics,
                                     dense=settings.mode in ("dense", "mesh") and writer)
                    rows += face_rows(round(seconds * 1e9), "video", result.faces,
                                      [str(f.id) for f in result.faces])
                    if writer is not None and drawer is not None:
                        writer.write(drawer(frame, result.faces))
                    outcome.frames += 1
                    outcome.faces += len(result.faces)
                    if report is not None and seconds - reported >= 1.0:
                        report(seconds - reported)
                        reported = seconds
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
            if writer is not None:
                writer.close()
        if outcome.frames == 0:
            raise VideoError(f"{task.path}: no frame could be decoded")
        rate = source.fps or 30.0
        outcome.media_s = seconds + 1.0 / rate
        if report is not None and outcome.media_s > reported:
            report(outcome.media_s - reported)
        outcome.rows = csv_text(rows)
        if partial is not None and task.out:
            put_in_place(partial, Path(task.out))
            partial = None
        return outcome
    finally:
        remove(partial)


def csv_header() -> str:
    return csv_text([list(CSV_COLUMNS)])
