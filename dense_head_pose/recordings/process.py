"""One recording in, head poses out: a bag (what the live node would have published,
offline) or a video, through :func:`~.frame_loop.run_frames`.

Outputs are written as frames are processed and closed whatever ends the run (the end,
Ctrl-C, SIGTERM, an error, a disk that fills up), so an interrupted run leaves valid,
shorter outputs. ``on_frame`` hears of each frame written (a worker acts on a stop there,
after the frame in hand).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VideoError
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import FrameResult
from ..video.tracking import TrackerOptions
from .bag_frames import BagFrames, cameras_of
from .bag_input import open_bag
from .bag_types import BagError, typestore
from .frame_loop import Camera, Frame, Sink, Trackers, run_frames
from .plot import PlotError, plot_rows
from .rows import FaceRow, OutputFullError
from .sinks import BagSink, CsvSink, RowSink
from .summary import BagOptions, BagSummary, Window

LOG = logging.getLogger("dense_head_pose.bag")
VIDEO_CAMERA = "video"


@dataclass
class Processed:
    """What a run gives back beside its summary: its rows, when asked to keep them."""

    rows: list[FaceRow] = field(default_factory=list)
    warmup: list[FaceRow] = field(default_factory=list)


def process_bag(path: str | Path, estimator: HeadPoseEstimator, tracker: TrackerOptions,
                options: BagOptions, on_frame: Callable[[int, int | None], None] | None = None,
                window: Window | None = None, kept: Processed | None = None,
                extra: list[Sink] | None = None) -> BagSummary:
    """Process one bag, or one time chunk of it (``window``); its summary.
    ``on_frame(n, total)`` hears of progress; ``kept`` receives the face rows (a chunk's
    warm-up rows apart); ``extra`` sinks get every frame too. Ctrl-C or SIGTERM (raised as
    exceptions) end it with the outputs closed and valid; the summary then says
    ``interrupted`` and the exception goes on. A disk that fills up ends it the same way,
    and the summary says so in ``error``."""
    store, hri_known = typestore()
    hri = hri_known if options.hri is None else options.hri
    if options.hri and not hri_known:
        raise BagError("--hri needs hri_msgs' message definitions (ros-$ROS_DISTRO-hri-msgs, "
                       "or a colcon build of hri_msgs sourced)")
    summary = BagSummary(str(path))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with open_bag(path, store) as bag:
        summary.recovered = bag.recovered
        cameras = cameras_of(bag, options, hri)
        summary.cameras = [c.key for c in cameras]
        frames = BagFrames(bag, cameras, summary, options.default_intrinsics, window)
        rows = RowSink() if kept is not None or options.plot else None
        sinks, bag_sink = _bag_sinks(options, store, hri, len(cameras) > 1)
        sinks += [s for s in (rows, *(extra or [])) if s is not None]
        names: set[str] = set()

        def counted(frame: Frame, result: FrameResult | None) -> None:
            if frame.warming:
                return
            if result is not None:
                summary.frames_processed += 1
                summary.faces += len(result.faces)
                names.update(frame.names)
            if on_frame is not None:
                on_frame(summary.frames_read, frames.total)

        try:
            run_frames(frames, Trackers(estimator, tracker), sinks, counted)
        except OutputFullError as exc:
            summary.error = str(exc)
        except BaseException:
            summary.interrupted = True
            raise
        finally:
            summary.messages_written = bag_sink.written if bag_sink is not None else 0
            summary.engagement = bag_sink.engagement if bag_sink is not None else {}
            summary.face_ids = len(names)
            _close(summary, bag, frames, wall0, cpu0)
            if rows is not None:
                _plot(rows.rows, options.plot, path, summary)
                if kept is not None:
                    kept.rows, kept.warmup = rows.rows, rows.warmup
            if summary.interrupted:  # the caller gets the exception, not the summary
                for line in summary.lines():
                    LOG.warning("%s", line)
    return summary


def _close(summary: BagSummary, bag: Any, frames: BagFrames, wall0: float,
           cpu0: float) -> None:
    """The summary's last figures: what could not be read, the recording's span, times."""
    summary.problems += bag.problems
    if bag.problems and not summary.frames_read and not summary.interrupted:
        summary.error = summary.error or f"nothing could be read ({bag.problems[0]})"
    summary.recorded_s = frames.recorded_s()
    summary.wall_s = time.perf_counter() - wall0
    summary.cpu_s = time.process_time() - cpu0


def _bag_sinks(options: BagOptions, store: Any, hri: bool, several: bool
               ) -> tuple[list[Sink], BagSink | None]:
    """The output bag's and the CSV's sinks; closed again if the second cannot be made."""
    sinks: list[Sink] = []
    bag_sink = None
    try:
        if options.csv:
            sinks.append(CsvSink(options.csv))
        if options.out:
            bag_sink = BagSink(options.out, store, options.storage, hri, several,
                               options.face_frame_prefix, options.gaze_frame_prefix)
            sinks.insert(0, bag_sink)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks, bag_sink


def _plot(rows: list[FaceRow], plot: Path | None, path: str | Path,
          summary: BagSummary) -> None:
    """The plot of what was processed; a plot that cannot be written is the summary's
    error (the other outputs are whole), never a traceback."""
    if not plot:
        return
    try:
        plot_rows(rows, plot, title=Path(path).name)
    except (PlotError, OSError, ValueError) as exc:
        if summary.interrupted:
            return
        summary.error = summary.error or f"cannot write the plot {plot}: {exc}"


@dataclass
class VideoRun:
    """What a video's run did."""

    description: str = ""
    frames: int = 0
    faces: int = 0
    media_s: float = 0.0
    skipped: int = 0
    face_ids: int = 0


def process_video(source: Any, estimator: HeadPoseEstimator, tracker: TrackerOptions,
                  sinks: list[Sink], intrinsics: CameraIntrinsics | None = None,
                  max_frames: int = 0, dense: bool = False,
                  on_frame: Callable[[int, float], None] | None = None) -> VideoRun:
    """Every frame of an opened video source (:func:`~..video.sources.open_source`) into
    ``sinks``; ``on_frame(frames, seconds)`` hears of progress. VideoError if no frame
    could be decoded."""
    run = VideoRun(source.description)
    camera = Camera(VIDEO_CAMERA)
    seconds = [0.0]

    def frames() -> Any:
        for index, at, image in source.timed():
            if max_frames and index >= max_frames:
                break
            seconds[0] = at
            yield Frame(camera, round(at * 1e9), image, index=index, intrinsics=intrinsics,
                        time_s=at)

    names: set[str] = set()

    def counted(frame: Frame, result: FrameResult | None) -> None:
        run.frames += 1
        run.faces += len(result.faces) if result is not None else 0
        names.update(frame.names)
        if on_frame is not None:
            on_frame(run.frames, seconds[0])

    run_frames(frames(), Trackers(estimator, tracker, dense), sinks, counted)
    if run.frames == 0:
        raise VideoError(f"{source.description}: no frame could be decoded")
    run.media_s = seconds[0] + 1.0 / (source.fps or 30.0)
    run.skipped = source.skipped
    run.face_ids = len(names)
    return run
