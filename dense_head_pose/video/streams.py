"""Several cameras through one estimator: a :class:`FaceTracker` per stream.

A ROS topic may carry more than one camera (a driver alternating ``frame_id``s, a bag that
merged two recordings). One tracker would restart at every alternation: every face would get
a new id each frame and its smoothing would start over. :class:`TrackerPool` keeps one
tracker per stream name instead, with one id sequence for all of them, so ids are unique
across the pool. The least recently seen stream is dropped beyond ``max_streams``, so a
stream of made-up names cannot grow the state without bound.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import fields, replace
from typing import Any

import numpy as np

from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import FrameResult
from .tracking import FaceTracker, TrackerOptions
from .tracks import TrackInput


class TrackerPool:
    """``pool(image, timestamp, camera, stream=name)``: the faces of that stream's tracker."""

    def __init__(self, estimator: HeadPoseEstimator, options: TrackerOptions | None = None,
                 max_streams: int = 8) -> None:
        self.estimator = estimator
        self._options = options or TrackerOptions()
        self.max_streams = max_streams
        self._ids = itertools.count(1)
        self._trackers: OrderedDict[str, FaceTracker] = OrderedDict()
        self.inputs: dict[int, TrackInput] = {}
        """The unsmoothed fits of the last frame's faces (see ``FaceTracker.inputs``)."""

    @property
    def options(self) -> TrackerOptions:
        """The options every tracker of the pool runs with."""
        return self._options

    @property
    def streams(self) -> list[str]:
        """Stream names, least recently seen first."""
        return list(self._trackers)

    def configure(self, **changes: Any) -> None:
        """Change the options of every tracker (see :meth:`FaceTracker.configure`)."""
        options = replace(self._options, **changes)  # validated by TrackerOptions
        for tracker in self._trackers.values():
            tracker.configure(**changes)
        self._options = options

    def reconfigure(self, options: TrackerOptions) -> None:
        """Take every option of ``options`` (see :meth:`FaceTracker.configure`)."""
        self.configure(**{f.name: getattr(options, f.name) for f in fields(options)})

    def reset(self) -> None:
        """Forget every stream and track (ids keep counting up, never reused)."""
        self._trackers.clear()

    def __call__(self, image: np.ndarray, timestamp: float | None = None,
                 camera: CameraIntrinsics | None = None, dense: bool = False,
                 stream: str = "") -> FrameResult:
        tracker = self._trackers.get(stream)
        if tracker is None:
            tracker = FaceTracker(self.estimator, self._options, ids=self._ids)
            self._trackers[stream] = tracker
            while len(self._trackers) > self.max_streams:
                self._trackers.popitem(last=False)
        else:
            self._trackers.move_to_end(stream)
        result = tracker(image, timestamp, camera, dense, stream=stream)
        self.inputs = tracker.inputs
        return result
