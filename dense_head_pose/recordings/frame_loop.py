"""One way to process a recording: frames from a source, through a tracker per camera, into
a list of sinks.

A *source* gives :class:`Frame`\\ s (a bag's camera topics, a video file, a camera); the loop
estimates each usable one with its camera's :class:`~dense_head_pose.video.streams.TrackerPool`
(the frame's own time drives the tracker, its ``stream`` names the camera in it) and hands
the result to every *sink* (:mod:`.sinks`: an output bag, a CSV, face rows, a drawn video,
JSON lines). With a look-ahead (:mod:`~dense_head_pose.video.look_ahead`) each frame is
held until its later frames are estimated and written then, in order; a stop signal
writes the frames held before the sinks close. A frame's outputs are written whole or not
at all: a stop signal that comes while the sinks write waits for them
(:func:`~dense_head_pose.lifetime.stop_signals_held`). The loop closes every sink
whatever ends it (the end, a stop, an error, a full disk).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..interfaces.face_ids import FaceIds, tf_name
from ..lifetime import Interrupted, stop_signals_held
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import Face, FrameResult
from ..video.look_ahead import LookAhead
from ..video.streams import TrackerPool
from ..video.tracking import TrackerOptions


@dataclass
class Camera:
    """A camera of a recording: its key (a bag's image topic, ``video``), where its outputs
    go and how its faces are named."""

    key: str
    namespace: str = ""
    """The namespace of its output topics ("" with one camera)."""
    ids: FaceIds | None = None
    """ROS4HRI ids of its faces (None: the interface is off; faces are named by number)."""
    id_prefix: str = ""

    def names(self, faces: Sequence[Face]) -> list[str]:
        """The faces' ids in TF, ROS4HRI and the rows (:func:`tf_name`)."""
        return [tf_name(self.ids, self.id_prefix, f.id) for f in faces]

    def topic(self, name: str) -> str:
        """A relative output topic in this camera's namespace."""
        return name if name.startswith("/") else f"{self.namespace}/{name}"


@dataclass
class Frame:
    """One frame of a recording, as its source gives it."""

    camera: Camera
    stamp_ns: int
    """Its stamp (a header stamp, as it came; a video's presentation time)."""
    image: np.ndarray | None
    """BGR, or None: the frame is unusable (outputs say so, as live)."""
    index: int = 0
    log_ns: int = 0
    """When it was recorded (a bag's log time)."""
    header: Any = None
    """The image message's header (bags)."""
    intrinsics: CameraIntrinsics | None = None
    stream: str = ""
    """The camera's name inside its source (a frame_id): another one restarts its tracks."""
    time_s: float | None = None
    """The time its tracker goes by, seconds (None: the stamp; a bag's zero stamp: the log
    time)."""
    warming: bool = False
    """A chunk's warm-up frame: estimated for the trackers, written by no sink but the rows."""
    names: list[str] = field(default_factory=list)
    """Its faces' ids, once estimated."""


class Sink(Protocol):
    """Where a recording's results go."""

    def check_space(self) -> None:
        """OutputFullError if its disk is nearly full (before any sink writes a frame)."""

    def write(self, frame: Frame, result: FrameResult | None) -> None:
        """One frame's outputs (``result`` None: the frame was unusable)."""

    def close(self) -> None:
        """Finish (the loop calls it whatever ended the run)."""


class Trackers:
    """A tracker pool per camera of a recording, on one estimator; with the options'
    ``look_ahead``, each frame's faces smoothed with that many later frames too."""

    def __init__(self, estimator: HeadPoseEstimator, options: TrackerOptions,
                 dense: bool = False) -> None:
        self.estimator, self.options, self.dense = estimator, options, dense
        self._pools: dict[str, TrackerPool] = {}
        self._ahead = LookAhead(estimator, options.smoothing, options.look_ahead) \
            if options.look_ahead and options.smooth else None

    def __call__(self, frame: Frame) -> FrameResult:
        """The frame's faces as its camera's tracker gives them."""
        return self._estimate(frame, self.dense)[0]

    def push(self, frame: Frame) -> list[tuple[Frame, FrameResult | None]]:
        """Take a frame; the frames ready to be written, in order, with their results
        (None for an unusable frame)."""
        if self._ahead is None:
            return [(frame, self(frame) if frame.image is not None else None)]
        if frame.image is None:
            return self._ahead.push(frame, 0.0, None, {}, group=frame.camera.key)
        result, pool, time_s, intrinsics = self._estimate(frame, False)
        return self._ahead.push(frame, time_s, result, pool.inputs, intrinsics, self.dense,
                                group=(frame.camera.key, frame.stream))

    def finish(self) -> list[tuple[Frame, FrameResult | None]]:
        """The frames still held, with the later frames there are."""
        return self._ahead.finish() if self._ahead is not None else []

    def _estimate(self, frame: Frame, dense: bool
                  ) -> tuple[FrameResult, TrackerPool, float, CameraIntrinsics]:
        pool = self._pools.get(frame.camera.key)
        if pool is None:
            pool = self._pools[frame.camera.key] = TrackerPool(self.estimator, self.options)
        assert frame.image is not None
        height, width = frame.image.shape[:2]
        intrinsics = frame.intrinsics or CameraIntrinsics.default(width, height)
        time_s = frame.stamp_ns * 1e-9 if frame.time_s is None else frame.time_s
        return (pool(frame.image, time_s, intrinsics, dense, stream=frame.stream), pool,
                time_s, intrinsics)


def run_frames(frames: Iterable[Frame], trackers: Trackers, sinks: Sequence[Sink],
               on_frame: Callable[[Frame, FrameResult | None], None] | None = None) -> None:
    """Every frame of ``frames`` estimated and written to every sink (see module); the
    sinks are closed at the end, whatever ends the run."""
    def write(ready: list[tuple[Frame, FrameResult | None]], stopping: bool = False) -> None:
        for frame, result in ready:
            frame.names = frame.camera.names(result.faces) if result is not None else []
            if not frame.warming:
                for sink in sinks:
                    sink.check_space()
            with stop_signals_held():
                for sink in sinks:
                    sink.write(frame, result)
            if on_frame is not None:
                try:
                    on_frame(frame, result)
                except (Interrupted, KeyboardInterrupt):
                    if not stopping:  # a stop heard there while already stopping: the
                        raise         # frames held are written all the same

    with contextlib.ExitStack() as stack:
        for sink in reversed(sinks):
            stack.callback(sink.close)
        try:
            for frame in frames:
                write(trackers.push(frame))
        except (Interrupted, KeyboardInterrupt):
            write(trackers.finish(), stopping=True)  # estimated already: not lost to a stop
            raise
        write(trackers.finish())
