"""Where a processed recording's frames go (the sinks of :func:`~.frame_loop.run_frames`):

* :class:`BagSink`: an output bag with the messages the node publishes
  (:func:`~dense_head_pose.interfaces.frame_messages.frame_messages`, the node's own
  definition), stamped with the images' stamps and logged at their recording times; with
  several cameras, ``/humans/faces/tracked`` is the union of theirs (the merger's rule, in
  the recording's time);
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

from ..interfaces import messages
from ..interfaces.frame_messages import IDS_LIST, TRACKED, FrameOptions, frame_messages
from ..interfaces.tracked_union import STALE_AFTER_S, TrackedUnion
from ..pipeline.results import Face, FrameResult
from .bag_output import FREE_SPACE_MARGIN, BagOutput, free_bytes
from .frame_loop import Frame
from .rows import CsvWriter, FaceRow, OutputFullError, face_rows


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
