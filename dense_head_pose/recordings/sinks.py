"""Where a processed recording's frames go (the sinks of :func:`~.frame_loop.run_frames`):

* :class:`BagSink`: an output bag with the messages the node publishes
  (:func:`~dense_head_pose.interfaces.frame_messages.frame_messages`, the node's own
  definition), stamped with the images' stamps and logged at their recording times; with
  several cameras, ``/humans/faces/tracked`` is the union of theirs (the merger's rule, in
  the recording's time); with ROS4HRI, each camera's ``/humans/interactions/gazing`` and
  its anonymous persons' ``/humans/persons/<id>/engagement_status``
  (:class:`~dense_head_pose.attention.frames.FrameAttention`), their last levels in
  :attr:`BagSink.engagement`;
* :class:`CsvSink`: a row per face per frame, whole rows only;
* :class:`RowSink`: the rows kept (a chunk's warm-up rows apart), for a plot, the driver of
  a dataset, a chunk's join;
* :class:`VideoSink`: the frames drawn into a video; :class:`CallbackSink`: anything else
  (JSON lines).

A warm-up frame of a chunk goes to the rows only. Before each frame the outputs' disks are
looked at (:meth:`check_space`): the run stops while closing the outputs still fits
(:data:`~.bag_output.FREE_SPACE_MARGIN`), not after the disk is full.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..attention.frames import FrameAttention
from ..interfaces import messages
from ..interfaces.frame_messages import IDS_LIST, TRACKED, FrameOptions, frame_messages
from ..interfaces.tracked_union import STALE_AFTER_S, TrackedUnion
from ..pipeline.results import Face, FrameResult
from .bag_output import FREE_SPACE_MARGIN, BagOutput, free_bytes
from .frame_loop import Frame
from .rows import CsvWriter, FaceRow, OutputFullError, face_rows

GAZING = "/humans/interactions/gazing"
GAZE = "hri_msgs/msg/Gaze"
ENGAGEMENT = "hri_msgs/msg/EngagementLevel"


def check_disk(path: Path) -> None:
    """:class:`OutputFullError` when the disk of ``path`` is nearly full (see module)."""
    free = free_bytes(path)
    if free < FREE_SPACE_MARGIN:
        raise OutputFullError(f"the disk of {path} is full ({free >> 10} KiB free)")


def rows_of(frame: Frame, result: FrameResult | None) -> list[FaceRow]:
    """A frame's face rows."""
    faces = result.faces if result is not None else []
    return face_rows(frame.stamp_ns, frame.camera.key, faces, frame.names)


class BagSink:
    """The node's messages of every frame, into a new bag (see module)."""

    def __init__(self, path: Path, store: Any, storage: str, hri: bool, several: bool,
                 face_frame_prefix: str = "face_", gaze_frame_prefix: str = "gaze_") -> None:
        self.bag = BagOutput(path, store, storage)
        self.path = path
        self._types = store.types.__getitem__
        self.several = several
        self.options = FrameOptions(face_frame_prefix, gaze_frame_prefix, tf=True, hri=hri,
                                    tracked_topic="humans/faces/tracked" if several
                                    else TRACKED)
        self.union = TrackedUnion(stale_after=STALE_AFTER_S)
        self.written = 0
        self.attention: dict[str, FrameAttention] = {}
        """Per camera, with ROS4HRI."""

    def check_space(self) -> None:
        check_disk(self.path)

    def write(self, frame: Frame, result: FrameResult | None) -> None:
        if frame.warming:
            return
        size = (result.width, result.height) if result is not None else None
        faces: list[Face] = result.faces if result is not None else []
        for message in frame_messages(self._types, frame.header, size, faces, frame.names,
                                      self.options):
            self.bag.write(frame.camera.topic(message.topic), message.msgtype,
                           message.message, frame.log_ns)
            if self.several and message.msgtype == IDS_LIST:  # the merger's union
                union = self.union.update(frame.camera.key, frame.names if size else [],
                                          frame.log_ns * 1e-9)
                self.bag.write(TRACKED, IDS_LIST, messages.ids_list(self._types, frame.header,
                                                                    union), frame.log_ns)
        if self.options.hri:
            self._write_attention(frame, faces if size is not None else [])

    def _write_attention(self, frame: Frame, faces: list[Face]) -> None:
        """The frame's gazes and the engagement ticks due by its stamp."""
        attention = self.attention.get(frame.camera.key)
        if attention is None:
            attention = self.attention[frame.camera.key] = FrameAttention()
        stamp_ns = messages.stamp_ns(frame.header.stamp) if frame.header is not None \
            else frame.stamp_ns
        gazes, ticks = attention.frame(stamp_ns, faces, frame.names)
        for sender, receiver in gazes:
            self.bag.write(GAZING, GAZE, messages.gaze(self._types, frame.header, sender,
                                                       receiver), frame.log_ns)
        for tick_ns, levels in ticks:
            hdr = messages.header(self._types, messages.time_of(self._types, tick_ns), "")
            for person, level in levels.items():
                self.bag.write(f"/humans/persons/{person}/engagement_status", ENGAGEMENT,
                               messages.engagement_level(self._types, hdr, level),
                               frame.log_ns)

    @property
    def engagement(self) -> dict[str, str]:
        """Each person's last engagement level (with ROS4HRI; else empty)."""
        return {p: level for a in self.attention.values() for p, level in a.final.items()}

    def close(self) -> None:
        self.written = self.bag.written
        self.bag.close()


class CsvSink:
    """The face rows of every frame, into a new CSV."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = CsvWriter(path)

    def check_space(self) -> None:
        check_disk(self.path.parent if str(self.path.parent) else Path("."))

    def write(self, frame: Frame, result: FrameResult | None) -> None:
        rows = [] if frame.warming else rows_of(frame, result)
        if rows:
            self.csv.rows(rows)

    def close(self) -> None:
        self.csv.close()


class _NoDisk:
    def check_space(self) -> None:
        """Nothing on a disk of its own to look at."""


class RowSink(_NoDisk):
    """The face rows kept in memory (a chunk's warm-up rows in :attr:`warmup`)."""

    def __init__(self) -> None:
        self.rows: list[FaceRow] = []
        self.warmup: list[FaceRow] = []

    def write(self, frame: Frame, result: FrameResult | None) -> None:
        (self.warmup if frame.warming else self.rows).extend(rows_of(frame, result))

    def close(self) -> None:
        pass


class VideoSink(_NoDisk):
    """Every frame drawn (``draw(image, faces)``) into a video writer."""

    def __init__(self, writer: Any, draw: Callable[[np.ndarray, list[Face]], np.ndarray]
                 ) -> None:
        self.writer, self.draw = writer, draw

    def write(self, frame: Frame, result: FrameResult | None) -> None:
        if frame.image is not None and not frame.warming:
            self.writer.write(self.draw(frame.image, result.faces if result else []))

    def close(self) -> None:
        """The caller closes the writer (a video that is not whole is an error there)."""


class CallbackSink(_NoDisk):
    """Each frame's result handed to ``call(frame, result)`` (JSON lines on stdout)."""

    def __init__(self, call: Callable[[Frame, FrameResult | None], None]) -> None:
        self.call = call

    def write(self, frame: Frame, result: FrameResult | None) -> None:
        if not frame.warming:
            self.call(frame, result)

    def close(self) -> None:
        pass
