"""Smoothing with future frames, for recordings: where no one waits for a frame's answer,
each face is estimated from the frames before it and the frames after it.

A live filter (:mod:`.smoothing`) knows only the past: it must choose between steadiness
and lag. Offline, the frames after this one are known too. :class:`LookAhead` takes the
tracker's own filter as the forward pass, runs the same filter backwards in time over a
window of later frames, and combines the two estimates of each frame, number by number, by
the inverse of their variances (a two-filter smoother, Fraser and Potter 1969): the
backward estimate is the prediction from the later frames alone, so no sample counts
twice. A still face is then averaged over the frames on
both sides, and a turn is met by both directions' predictions, whose lags cancel.

Frames are held back until :attr:`LookAhead.frames` later frames have been seen, then given
out in order, in blocks (one backward pass per block, so the cost per frame does not grow
with the window); :meth:`LookAhead.finish` gives out the rest. A face is smoothed by its id
within its ``group`` (a camera); frames of different groups may interleave.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import FrameResult, compute_vertices
from .smoothing import Estimate, FitSmoother, SmoothingOptions, combine, fit_from
from .tracks import TrackInput, box_from_landmarks

#: The default window: frames after a frame that its estimate waits for.
DEFAULT_FRAMES = 15


@dataclass
class _Held:
    """A frame waiting for its later frames."""

    payload: Any
    group: Hashable
    t: float
    result: FrameResult | None
    inputs: dict[int, TrackInput]
    intrinsics: CameraIntrinsics | None
    dense: bool


class LookAhead:
    """Two-filter smoothing of tracked faces over a window of later frames (see module)."""

    def __init__(self, estimator: HeadPoseEstimator, options: SmoothingOptions,
                 frames: int = DEFAULT_FRAMES) -> None:
        if not 1 <= frames <= 10_000:
            raise ValueError(f"look-ahead frames must be 1 to 10000, got {frames}")
        self.estimator, self.options, self.frames = estimator, options, frames
        self._held: deque[_Held] = deque()

    def push(self, payload: Any, t: float, result: FrameResult | None,
             inputs: dict[int, TrackInput], intrinsics: CameraIntrinsics | None = None,
             dense: bool = False, group: Hashable = "") -> list[tuple[Any, FrameResult | None]]:
        """Take a frame: its tracker's ``result`` (None: an unusable frame, passed on in
        its place) and the unsmoothed ``inputs`` of its faces by id (the tracker's
        :attr:`~.tracking.FaceTracker.inputs`); the frames now ready, oldest first, each
        with its ``payload``."""
        held = _Held(payload, group, t, result, dict(inputs), intrinsics, dense)
        self._held.append(held)
        if len(self._held) < 2 * self.frames:
            return []
        return self._release(len(self._held) - self.frames)

    def finish(self) -> list[tuple[Any, FrameResult | None]]:
        """Every frame still held, smoothed with the later frames there are."""
        return self._release(len(self._held))

    def _release(self, count: int) -> list[tuple[Any, FrameResult | None]]:
        """Smooth the held frames backwards, give out the ``count`` oldest."""
        backward: dict[tuple[Hashable, int], FitSmoother] = {}
        combined: list[dict[int, Estimate]] = [{} for _ in self._held]
        for k in range(len(self._held) - 1, -1, -1):
            held = self._held[k]
            for face_id, given in held.inputs.items():
                key = (held.group, face_id)
                smoother = backward.get(key)
                later = smoother.predicted(-held.t) if smoother is not None else None
                forward = given.forward
                if k < count and forward is not None:
                    combined[k][face_id] = forward if later is None else combine(forward,
                                                                                 later)
                if smoother is None:
                    smoother = backward[key] = FitSmoother(self.options)
                smoother.observe(given.fit, -held.t)  # time runs backwards
        out = []
        for k in range(count):
            held = self._held.popleft()
            out.append((held.payload, self._rebuilt(held, combined[k])))
        return out

    def _rebuilt(self, held: _Held, estimates: dict[int, Estimate]) -> FrameResult | None:
        """The frame's result with each face made from its combined estimate."""
        if held.result is None:
            return None
        faces = []
        for face in held.result.faces:
            given = held.inputs.get(face.id) if face.id is not None else None
            estimate = estimates.get(face.id) if face.id is not None else None
            if given is None or estimate is None:
                faces.append(face)
                continue
            fit = fit_from(given.fit, estimate.rotation, estimate.linear, self._project)
            rebuilt = self.estimator.face_from_fit(
                fit, box_from_landmarks(fit.landmarks, given.box_offset), given.score,
                held.intrinsics or CameraIntrinsics.default(held.result.width,
                                                            held.result.height))
            if rebuilt is None:
                faces.append(face)
                continue
            rebuilt.id = face.id
            faces.append(rebuilt)
        if held.dense:
            compute_vertices(faces)
        return FrameResult(faces, held.result.width, held.result.height,
                           held.result.timings)

    @property
    def _project(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        model = self.estimator.model

        def project(params: np.ndarray, camera: np.ndarray) -> np.ndarray:
            return model.project(model.landmarks_model(params), camera)
        return project


class LookAheadTracker:
    """A :class:`~.tracking.FaceTracker` whose results come smoothed with later frames:
    ``push(image, t)`` gives the results now ready, :meth:`finish` the rest (see module)."""

    def __init__(self, tracker: Any, frames: int = DEFAULT_FRAMES) -> None:
        self.tracker = tracker
        self.look_ahead = LookAhead(tracker.estimator, tracker.options.smoothing, frames)

    def push(self, image: np.ndarray, t: float) -> list[FrameResult]:
        result = self.tracker(image, t)
        return [r for _, r in self.look_ahead.push(None, t, result, self.tracker.inputs)
                if r is not None]

    def finish(self) -> list[FrameResult]:
        return [r for _, r in self.look_ahead.finish() if r is not None]
