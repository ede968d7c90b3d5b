"""Video: faces tracked from frame to frame by their landmarks, and smoothed over time.

:class:`FaceTracker` wraps a :class:`~dense_head_pose.HeadPoseEstimator` for a stream of
frames (the CLI's ``video``, the ROS node and library users all use it):

* **Tracking.** Each tracked face's next crop is the ROI of its previous output landmarks
  (3DDFA_V2's video rule, with the smoothed landmarks: they are where the face is, without
  the noise of one frame), fitted in one pass, so the detector is needed only to find new
  faces: it runs every ``detect_every`` frames, and at once when a track is lost.
* **Track quality.** A fit on a face reproduces its own crop: the ROI of its output
  landmarks overlaps the ROI it was given; a crop off the face does not
  (``scripts/measure_track_quality.py`` prints both distributions, ``docs/video.md`` has
  them). Below ``min_track_quality`` the track counts as lost and the detector runs on the
  same frame to re-acquire it. Some background crops score close to faces, so a track that
  ``max_unconfirmed`` detector runs in a row do not confirm is dropped too: a crop that
  drifted onto something face-like cannot live on.
* **Steady crops.** The crop stays put while the face's landmark ROI stays within
  ``crop_deadband`` of it, so a still head is seen through the same crop every frame and
  only image noise moves its estimate; once the face has moved farther, the next frame's
  crop moves to it.
* **Identities.** A face keeps its id while tracked; a face lost and found again within
  ``forget_after`` seconds near where it was lost gets its old id back; ids are not reused.
* **Smoothing.** Per track, the filters of :mod:`.smoothing`; ``smooth=False`` gives the
  fits unfiltered.

Timestamps (seconds) come with each frame: the video's presentation times, ROS header stamps.
The state resets when the image size or the camera (``stream``) changes, or when time goes
backwards.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ..images import as_bgr8
from ..options import check_fields
from ..pipeline.alignment import roi_from_box, roi_from_landmarks
from ..pipeline.detection import Detection
from ..pipeline.estimator import Fit, HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import Face, FrameResult, compute_vertices
from .look_schedule import LookSchedule
from .smoothing import FitSmoother, SmoothingOptions
from .tracks import Track, TrackInput, box_from_landmarks, box_iou, box_offset, greedy_pairs


@dataclass(frozen=True)
class TrackerOptions:
    """Settings of :class:`FaceTracker`; validated on construction."""

    detect_every: int = 10
    """Run the detector every N frames to find new faces (and at once when a track is
    lost). 1: the detector every frame and crops from its boxes, i.e. exactly the
    per-image pipeline, with ids and smoothing on top."""
    smooth: bool = True
    """Smoothing of each tracked face (:mod:`.smoothing`)."""
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    crop_deadband: float = 0.02
    """The crop follows the face once its landmark ROI has moved more than this fraction of
    its side (see :meth:`FaceTracker._next_crop`)."""
    min_track_quality: float = 0.8
    """A tracked fit whose crop and landmark ROI overlap less (IoU) has lost its face."""
    max_unconfirmed: int = 2
    """Drop a track after this many detector runs in a row without a detection on it."""
    forget_after: float = 1.0
    """Seconds a lost face's id is kept for it, should it come back where it was lost."""
    look_ahead: int = 0
    """Recordings only (a bag, a video file; the tracker itself ignores it): smooth each
    frame's faces with this many later frames too (:mod:`.look_ahead`); 0: as live."""

    KINDS: ClassVar[dict[str, type]] = {
        "detect_every": int, "smooth": bool, "crop_deadband": float,
        "min_track_quality": float, "max_unconfirmed": int, "forget_after": float,
        "look_ahead": int}
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "detect_every": (1, 10_000), "crop_deadband": (0.0, 0.5),
        "min_track_quality": (0.0, 1.0), "max_unconfirmed": (0, 1000),
        "forget_after": (0.0, 3600.0), "look_ahead": (0, 10_000)}
    """Inclusive range of each number (the CLI and the node take theirs from here)."""

    def __post_init__(self) -> None:
        check_fields(self, self.KINDS, self.LIMITS)
        if not isinstance(self.smoothing, SmoothingOptions):
            raise TypeError("smoothing must be SmoothingOptions")


class FaceTracker:
    """Tracked, smoothed faces of a video: ``tracker(frame, timestamp) -> FrameResult``.

    >>> tracker = FaceTracker(HeadPoseEstimator.from_model_dir())      # doctest: +SKIP
    >>> for t, frame in frames:                                        # doctest: +SKIP
    ...     for face in tracker(frame, t).faces:
    ...         print(face.id, face.yaw, face.pose.translation)
    """

    def __init__(self, estimator: HeadPoseEstimator, options: TrackerOptions | None = None,
                 ids: Iterator[int] | None = None, **overrides: Any) -> None:
        """``ids`` hands out new track ids (default: 1, 2, 3, ...); trackers that share one
        never give two faces the same id (one tracker per camera of a node, say)."""
        self.estimator = estimator
        self._options = replace(options or TrackerOptions(), **overrides)
        self._tracks: list[Track] = []
        self._lost: list[tuple[int, np.ndarray, float]] = []  # (id, last box, time lost)
        self._ids = ids if ids is not None else itertools.count(1)
        self._since_detection = 0
        self._looks = LookSchedule()
        self._t: float | None = None
        self._key: tuple[Any, ...] | None = None
        self.detections_run = 0
        """How many frames the detector ran on (a measure of the tracker's work)."""
        self.inputs: dict[int, TrackInput] = {}
        """The last frame's unsmoothed fit of each face and its smoother's state, by id (what
        a look-ahead smoother starts from, :mod:`.look_ahead`)."""

    @property
    def options(self) -> TrackerOptions:
        """Current options; see :meth:`configure`."""
        return self._options

    def configure(self, **changes: Any) -> None:
        """Change options at run time; new smoothing parameters restart the filters."""
        options = replace(self._options, **changes)
        if options.smoothing != self._options.smoothing or options.smooth != self._options.smooth:
            for track in self._tracks:
                track.smoother = FitSmoother(options.smoothing) if options.smooth else None
        self._options = options

    def reset(self) -> None:
        """Forget every track and filter (ids keep counting up, never reused)."""
        self._tracks.clear()
        self._lost.clear()
        self._since_detection = 0
        self._looks.reset()
        self._t = None

    # ------------------------------------------------------------------------------ frame
    def __call__(self, image: np.ndarray, timestamp: float | None = None,
                 camera: CameraIntrinsics | None = None, dense: bool = False,
                 stream: str | None = None) -> FrameResult:
        """Estimate the faces of the next frame. ``timestamp`` in seconds (default: 1/30 s
        after the previous frame); ``camera`` and ``dense`` as for the estimator; ``stream``
        names the camera (e.g. a ROS frame_id): another name restarts the tracks, as another
        image size does. New intrinsics alone do not: tracking and smoothing happen in the
        image, the metric pose is derived afterwards."""
        times: dict[str, float] = {}
        t_start = time.perf_counter()
        image = as_bgr8(image)
        height, width = image.shape[:2]
        intrinsics = camera or CameraIntrinsics.default(width, height)
        t = self._clock(timestamp, (width, height, stream))
        if self._options.detect_every == 1:
            faces = self._per_frame(image, intrinsics, t, times)
        else:
            faces = self._tracked(image, intrinsics, t, times)
        if dense:
            start = time.perf_counter()
            compute_vertices(faces)
            times["reconstruct_dense"] = (time.perf_counter() - start) * 1e3
        times["total"] = (time.perf_counter() - t_start) * 1e3
        return FrameResult(faces, width, height, times)

    def _clock(self, timestamp: float | None, key: tuple[Any, ...]) -> float:
        """The frame's time; resets the state on a new image size or camera, or when time
        goes backwards."""
        if timestamp is None:
            timestamp = 0.0 if self._t is None else self._t + 1.0 / 30.0
        if not math.isfinite(timestamp):
            raise ValueError(f"timestamp must be finite, got {timestamp}")
        if key != self._key or (self._t is not None and timestamp < self._t):
            self.reset()
            self._key = key
        self._t = timestamp
        return timestamp

    def _per_frame(self, image: np.ndarray, intrinsics: CameraIntrinsics, t: float,
                   times: dict[str, float]) -> list[Face]:
        """detect_every == 1: the estimator's own result, ids by box overlap, smoothed."""
        result = self.estimator(image, intrinsics)
        times.update(result.timings)
        self.detections_run += 1
        fits = [Fit(roi=f.roi, params=f.params, camera=f.camera, landmarks=f.landmarks)
                for f in result.faces]
        detections = [Detection(f.box, f.score) for f in result.faces]
        tracks = self._match_detections(detections, fits, t)
        return self._faces(tracks, intrinsics, t, times)

    def _tracked(self, image: np.ndarray, intrinsics: CameraIntrinsics, t: float,
                 times: dict[str, float]) -> list[Face]:
        opts = self._options
        self._limit(t)  # a max_faces lowered at run time applies at once
        lost: list[Track] = []
        fits = self.estimator.fits(image, [track.crop for track in self._tracks], 1, times)
        for track, fit in zip(list(self._tracks), fits):
            if not self._follow(track, fit):
                self._tracks.remove(track)
                lost.append(track)
        self._since_detection += 1
        # a lost track is re-acquired (or retired) by the detector on this very frame
        if lost or not self._tracks or self._since_detection >= opts.detect_every:
            self._detect(image, lost, t, times)
        return self._faces(self._tracks, intrinsics, t, times)

    def _follow(self, track: Track, fit: Fit | None) -> bool:
        """Take ``fit``, made from the track's crop in this frame in one pass, if it still
        shows the face; False if the face is lost."""
        track.quality = 0.0 if fit is None else fit.quality
        if fit is None or track.quality < self._options.min_track_quality:
            return False
        track.fit = fit
        return True

    def _next_crop(self, track: Track, landmarks: np.ndarray) -> None:
        """Where ``track`` is cropped next, from its output ``landmarks`` of this frame.

        The crop stays where it is while the landmarks' ROI stays within ``crop_deadband``
        of it: a still head is then seen through the very same crop every frame and only
        image noise moves its estimate, which smoothing removes. Once the face has moved
        farther, the crop moves to it: the smoothed landmarks already follow a moving head
        without lag, so one fit per frame keeps up."""
        roi = roi_from_landmarks(landmarks)
        side = roi[2] - roi[0]
        if track.crop is None or np.max(np.abs(roi - track.crop)) > (
                self._options.crop_deadband * side):
            track.crop = roi

    # -------------------------------------------------------------------------- detection
    def _detect(self, image: np.ndarray, lost: list[Track], t: float,
                times: dict[str, float]) -> None:
        """Run the detector: confirm tracks, re-acquire lost ones, start new ones."""
        t0 = time.perf_counter()
        height, width = image.shape[:2]
        view, far = self._looks.next(not self._tracks and not lost,
                                     self.estimator.options.retry_mirrored,
                                     self.estimator.far_look_cost(width, height))
        detections = self.estimator.detect(image, view, far)
        times["detect"] = times.get("detect", 0.0) + (time.perf_counter() - t0) * 1e3
        self.detections_run += 1
        self._since_detection = 0
        candidates = self._tracks + lost
        pairs = greedy_pairs(np.array([d.box for d in detections]),
                             np.array([c.box for c in candidates]), 0.3)
        matched = {j: i for i, j in pairs}
        # one pass more than the per-image pipeline: a track starts from where its own crops
        # will converge (the ROI of the refined landmarks), not one pass short of it
        passes = 3 if self.estimator.options.refine else 2
        # the fits of every lost track found again and of every new face: one batch a pass
        starts = [i for j, i in matched.items() if candidates[j] in lost]
        starts += [i for i in range(len(detections)) if i not in matched.values()]
        fitted = dict(zip(starts, self.estimator.fits(
            image, [roi_from_box(detections[i].box) for i in starts], passes, times)))
        for j, track in enumerate(candidates):
            det = detections[matched[j]] if j in matched else None
            fit = fitted.get(matched[j]) if det is not None else None
            self._update(track, det, fit, track in lost, far, (width, height), t)
        for i, det in enumerate(detections):
            fit = fitted.get(i)
            if i in matched.values() or fit is None or self._duplicate(fit):
                continue
            self._tracks.append(self._new_track(det, fit, t))
        self._tracks.sort(key=lambda tr: -float(np.prod(tr.box[2:] - tr.box[:2])))
        self._limit(t)

    def _update(self, track: Track, det: Detection | None, fit: Fit | None, lost: bool,
                far: bool, size: tuple[int, int], t: float) -> None:
        """A track after a detection: re-acquired (if lost), confirmed, or one detection
        closer to being dropped."""
        if lost:
            if fit is None:
                self._retire(track, t)
                return
            track.fit, track.unconfirmed = fit, 0
            track.crop = roi_from_landmarks(fit.landmarks)
            self._tracks.append(track)
        if det is None:
            if not far and not self.estimator.near_look_sees(track.box, *size):
                return  # a face across the room: only the far look can confirm it
            track.unconfirmed += 1
            if track.unconfirmed > self._options.max_unconfirmed:
                self._tracks.remove(track)
                self._retire(track, t)
            return
        track.unconfirmed, track.score = 0, det.score
        track.box_offset = box_offset(det.box, track.fit.landmarks)

    def _limit(self, t: float) -> None:
        """Keep the ``max_faces`` largest tracks (they are sorted by size)."""
        limit = self.estimator.options.max_faces
        for track in self._tracks[limit:]:
            self._retire(track, t)
        del self._tracks[limit:]

    def _match_detections(self, detections: list[Detection], fits: list[Fit], t: float
                          ) -> list[Track]:
        """detect_every == 1: each detection continues the overlapping track or starts one."""
        pairs = dict(greedy_pairs(np.array([d.box for d in detections]),
                                   np.array([tr.box for tr in self._tracks]), 0.3))
        tracks = []
        for i, (det, fit) in enumerate(zip(detections, fits)):
            if i in pairs:
                track = self._tracks[pairs[i]]
                track.fit, track.score = fit, det.score
                track.box_offset = box_offset(det.box, fit.landmarks)
            else:
                track = self._new_track(det, fit, t)
            tracks.append(track)
        for j, track in enumerate(self._tracks):
            if j not in pairs.values():
                self._retire(track, t)
        self._tracks = tracks
        return tracks

    def _new_track(self, det: Detection, fit: Fit, t: float) -> Track:
        """A track for a new detection, with the id of a face lost near there, if any."""
        self._lost = [e for e in self._lost if t - e[2] <= self._options.forget_after]
        track_id = None
        if self._lost:
            iou = box_iou(det.box, np.array([e[1] for e in self._lost]))[0]
            best = int(np.argmax(iou))
            if iou[best] >= 0.3:
                track_id = self._lost.pop(best)[0]
        if track_id is None:
            track_id = next(self._ids)
        smoother = FitSmoother(self._options.smoothing) if self._options.smooth else None
        return Track(id=track_id, fit=fit, score=det.score,
                      box_offset=box_offset(det.box, fit.landmarks), smoother=smoother,
                      crop=roi_from_landmarks(fit.landmarks))

    def _duplicate(self, fit: Fit) -> bool:
        """Whether a new fit lands on a face already tracked (a detection that missed its
        track's box)."""
        roi = roi_from_landmarks(fit.landmarks)
        return any(box_iou(roi, roi_from_landmarks(tr.fit.landmarks))[0, 0] > 0.5
                   for tr in self._tracks)

    def _retire(self, track: Track, t: float) -> None:
        self._lost.append((track.id, track.box, t))

    # ----------------------------------------------------------------------------- output
    def _faces(self, tracks: list[Track], intrinsics: CameraIntrinsics, t: float,
               times: dict[str, float]) -> list[Face]:
        faces = []
        t0 = time.perf_counter()
        for track in tracks:
            face = self._face(track, intrinsics, t)
            if face is None and track.smoother is not None:
                # a filter state gone bad (it should not; timestamps are checked): start the
                # filters again from this fit rather than lose the face while its track lives
                track.smoother = FitSmoother(self._options.smoothing)
                face = self._face(track, intrinsics, t)
            if face is not None:
                face.id = track.id
                faces.append(face)
        self.inputs = {track.id: TrackInput(track.fit, track.box_offset, track.score,
                                            track.smoother.estimate if track.smoother else None)
                       for track in tracks}
        times["smooth"] = (time.perf_counter() - t0) * 1e3
        faces.sort(key=lambda f: -float(np.prod(f.box[2:] - f.box[:2])))
        return faces

    def _face(self, track: Track, intrinsics: CameraIntrinsics, t: float) -> Face | None:
        fit = track.fit
        if track.smoother is not None:
            fit = track.smoother(fit, t, self._project)
        if self._options.detect_every > 1 and np.all(np.isfinite(fit.landmarks)):
            self._next_crop(track, fit.landmarks)
        box = box_from_landmarks(fit.landmarks, track.box_offset)
        return self.estimator.face_from_fit(fit, box, track.score, intrinsics)

    def _project(self, params: np.ndarray, camera: np.ndarray) -> np.ndarray:
        model = self.estimator.model
        return model.project(model.landmarks_model(params), camera)
