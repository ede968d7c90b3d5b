"""The pipeline: image in, :class:`~dense_head_pose.pipeline.results.FrameResult` out.

``HeadPoseEstimator.from_model_dir()(image)`` detects faces, crops each (a square region
from its detector box, :func:`~.alignment.roi_from_box`), regresses its 3DMM parameters
(with the crop's mirror image, ``mirror``), reconstructs its 68 landmarks and derives its
pose. Everything per frame is allocated once at load; the per-face work is a crop, one or
two small inferences and a few small matrix products.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .. import model_pack
from ..errors import ModelError
from ..images import as_bgr8
from ..options import check_fields
from ..runtime import limit_native_threads
from .alignment import (
    CROP_SIZE,
    Regressor,
    roi_from_box,
    roi_from_landmarks,
    roi_iou,
    unmirror_camera,
)
from .detection import DETECTOR_FILES, Detection, FaceDetector, parse_input_size
from .morphable_model import MorphableModel
from .pose import CameraIntrinsics, euler_angles, metric_pose, pnp_pose, view_rotation
from .results import Face, FrameResult, compute_vertices

POSE_METHODS = ("affine", "pnp")
PRECISIONS = ("float32", "int8")
REGRESSOR_FILES = {"float32": "face_3dmm_mb05.tflite", "int8": model_pack.INT8_REGRESSOR}


@dataclass(frozen=True)
class Fit:
    """One face's 3DMM fit in an image: the ROI the regressor saw, its 62 parameters, the
    3x4 image camera and the 68 landmarks (pixels, relative depth)."""

    roi: np.ndarray
    params: np.ndarray
    camera: np.ndarray
    landmarks: np.ndarray
    quality: float = 1.0
    """How well the fit reproduces its crop: IoU of ``roi`` and the ROI of the landmarks of
    the plain (not mirror-averaged) estimate. Near 1 on a face, lower off it
    (``scripts/measure_track_quality.py`` prints both; docs/video.md). The mirror average is
    left out: it centres a fit on anything, blank walls included."""


@dataclass(frozen=True)
class EstimatorOptions:
    """Settings of :class:`HeadPoseEstimator`; validated on construction. Their accuracy
    and cost are measured in the docs (``docs/accuracy.md``, ``docs/performance.md``)."""

    num_threads: int = 1
    """LiteRT threads per model."""
    score_threshold: float = 0.6
    """Minimum detector confidence of a face."""
    nms_iou: float = 0.3
    """Overlap above which the weaker of two boxes is dropped."""
    retry_mirrored: bool = True
    """When the detector finds no face in a frame, look once more in the mirrored frame
    (one more detector inference, on frames without a face only): the network is not
    left-right symmetric, and profiles it misses one way round it often finds the other."""
    max_faces: int = 16
    """Keep at most this many faces, the largest ones."""
    refine: bool = False
    """A second alignment pass from the first pass's landmarks (3DDFA_V2's landmark ROI
    rule): one more inference per face (two with ``mirror``)."""
    accurate: bool = False
    """Accuracy mode: the last pass averages five crops (the ROI and four shifted by 5 % of
    its side), each with its mirror (``mirror``): ten inferences per face."""
    mirror: bool = True
    """Average each fit with the fit of its crop's mirror image (one more inference per
    face): the network's left-right biases cancel."""
    precision: str = "float32"
    """The regressor: ``float32``, or ``int8`` (the post-training-quantised model that
    ``models build --precision int8`` makes beside the pack)."""
    pose_method: str = "affine"
    """``affine``: metric pose from the 3DMM camera; ``pnp``: refined by solvePnP."""
    detector_input: str = "auto"
    """The detector's input: ``auto``, a near look at 320x240 and, on frames larger than
    that, a far look at the places it scores likeliest for the faces of people across the
    room (see :mod:`.far_look`); or ``WxH`` (sides multiples of 8, 64 to 1920), one look at
    that size (``320x240``: the near look only, the fastest)."""
    detector_model: str = "rfb320"
    """The detector's weights: ``rfb320`` (trained at 320x240) or ``rfb640`` (the same
    network trained at 640x480); docs/accuracy.md compares them."""
    min_face_size: float = 8.0
    """Detector boxes narrower than this many pixels are ignored."""
    limit_threads: bool = True
    """Pin the process's BLAS and OpenCV thread pools to ``num_threads`` when the models are
    loaded (see :func:`dense_head_pose.runtime.limit_native_threads`)."""

    KINDS: ClassVar[dict[str, type]] = {
        "num_threads": int, "score_threshold": float, "nms_iou": float,
        "retry_mirrored": bool, "max_faces": int, "refine": bool, "accurate": bool,
        "mirror": bool, "precision": str, "pose_method": str, "detector_input": str,
        "detector_model": str, "min_face_size": float,
        "limit_threads": bool}
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "num_threads": (1, 64), "score_threshold": (0.01, 0.99), "nms_iou": (0.01, 1.0),
        "max_faces": (0, 1000), "min_face_size": (0.0, 10_000.0)}
    """Inclusive range of each number (the CLI and the node take theirs from here)."""
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"precision": PRECISIONS,
                                                     "pose_method": POSE_METHODS,
                                                     "detector_model": tuple(DETECTOR_FILES)}

    def __post_init__(self) -> None:
        check_fields(self, self.KINDS, self.LIMITS, self.CHOICES)
        try:
            parse_input_size(self.detector_input)
        except ValueError as exc:
            raise ValueError(f"detector_input: {exc}") from None


def crop_to_image_camera(crop_camera: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Map the regressor's 3x4 crop camera (120 px, y up) to a 3x4 image camera.

    Uses 3DDFA_V2's own reconstruction mapping (``x - 1``, ``120 - y``, then scale by the ROI
    side / 120 and shift by its corner), which is what the network was trained against. The
    depth row keeps the scale but drops the offset: depth is relative to the model origin.
    """
    k = (roi[2] - roi[0]) / CROP_SIZE
    to_image = np.array([[k, 0.0, 0.0, roi[0] - k],
                         [0.0, -k, 0.0, roi[1] + CROP_SIZE * k],
                         [0.0, 0.0, k, 0.0]])
    camera = to_image[:, :3] @ crop_camera
    camera[:, 3] += to_image[:, 3]
    camera[2, 3] = 0.0
    return camera


class HeadPoseEstimator:
    """Face detection, 3DMM alignment, reconstruction and pose in one callable.

    >>> estimator = HeadPoseEstimator.from_model_dir()          # doctest: +SKIP
    >>> result = estimator(bgr_image)                           # doctest: +SKIP
    >>> result.faces[0].yaw, result.faces[0].pose.translation   # doctest: +SKIP
    """

    def __init__(self, detector: FaceDetector, regressor: Regressor, model: MorphableModel,
                 options: EstimatorOptions) -> None:
        self.detector = detector
        self.regressor = regressor
        self.model = model
        self._options = options

    @classmethod
    def from_model_dir(cls, model_dir: str | os.PathLike[str] | None = None,
                       options: EstimatorOptions | None = None, **overrides: object
                       ) -> HeadPoseEstimator:
        """Load the pack found by :func:`dense_head_pose.model_pack.locate`.

        ``overrides`` are :class:`EstimatorOptions` fields, e.g. ``num_threads=2``.
        """
        opts = replace(options or EstimatorOptions(), **overrides)  # type: ignore[arg-type]
        directory = model_pack.locate(model_dir)
        if opts.limit_threads:
            limit_native_threads(opts.num_threads)
        detector = FaceDetector(directory / DETECTOR_FILES[opts.detector_model],
                                opts.num_threads, opts.score_threshold, opts.nms_iou,
                                opts.retry_mirrored, parse_input_size(opts.detector_input))
        regressor_path = directory / REGRESSOR_FILES[opts.precision]
        if opts.precision == "int8":  # not in the manifest: checked against its own hash
            if not regressor_path.exists():
                raise ModelError(f"{regressor_path} does not exist: build it with "
                                 f"dense-head-pose models build --precision int8 "
                                 f"--calibration VIDEO --dest {directory}")
            model_pack.require_recorded(regressor_path)
        regressor = Regressor(regressor_path, opts.num_threads)
        model = MorphableModel(directory / "bfm_sparse68.npz", directory / "bfm_dense_mean.npz",
                               directory / model_pack.FULL_BFM)
        return cls(detector, regressor, model, opts)

    @property
    def options(self) -> EstimatorOptions:
        """Current options; see :meth:`configure`."""
        return self._options

    def configure(self, **changes: object) -> None:
        """Change options at run time (thread count excepted: it is fixed at load)."""
        opts = replace(self._options, **changes)  # type: ignore[arg-type]
        if opts.num_threads != self._options.num_threads:
            raise ValueError("num_threads is fixed when the models are loaded")
        if opts.precision != self._options.precision:
            raise ValueError("precision is fixed when the models are loaded")
        if opts.detector_model != self._options.detector_model:
            raise ValueError("detector_model is fixed when the models are loaded")
        self.detector.input_size = parse_input_size(opts.detector_input)
        self.detector.score_threshold = opts.score_threshold
        self.detector.nms_iou = opts.nms_iou
        self.detector.retry_mirrored = opts.retry_mirrored
        self._options = opts

    def far_look_cost(self, width: int, height: int) -> float:
        """What the detector's far look costs on a ``width`` x ``height`` frame, in near
        looks; 0 when there is no far look for it (a tracker schedules it by this)."""
        return self.detector.far_cost(width, height)

    def near_look_sees(self, box: np.ndarray, width: int, height: int) -> bool:
        """Whether the near look alone finds a face of ``box`` as reliably as with the far
        look (a tracker confirms such a face without the far look)."""
        return self.detector.near_sees(box, width, height)

    def detect(self, image: np.ndarray, view: str = "auto", far: bool = True
               ) -> list[Detection]:
        """Faces in a BGR uint8 image, largest first, after size and count limits; ``view``
        and ``far`` as :meth:`.detection.FaceDetector.__call__`."""
        opts = self._options
        found = [d for d in self.detector(image, view, far)
                 if d.box[2] - d.box[0] >= opts.min_face_size]
        return found[:opts.max_faces]

    def __call__(self, image: np.ndarray, camera: CameraIntrinsics | None = None,
                 dense: bool = False, boxes: Sequence[Detection] | None = None) -> FrameResult:
        """Estimate every face in ``image`` (any layout :func:`as_bgr8` accepts).

        ``camera`` gives the metric pose its intrinsics (default: f = width, centred);
        ``dense`` computes the dense vertices now rather than on first access; ``boxes``
        skips detection (e.g. boxes from another detector or a tracker).
        """
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        image = as_bgr8(image)
        height, width = image.shape[:2]
        intrinsics = camera or CameraIntrinsics.default(width, height)
        detections = (self.detect(image) if boxes is None
                      else [b for b in boxes if _usable_box(b.box)][:self._options.max_faces])
        t1 = time.perf_counter()
        times["detect"] = (t1 - t0) * 1e3
        fits = self.fits(image, [roi_from_box(d.box) for d in detections],
                         2 if self._options.refine else 1, times)
        faces = [face for det, fit in zip(detections, fits) if fit is not None
                 and (face := self.face_from_fit(fit, det.box, det.score, intrinsics,
                                                 times)) is not None]
        if dense:
            start = time.perf_counter()
            compute_vertices(faces)
            times["reconstruct_dense"] = (time.perf_counter() - start) * 1e3
        return FrameResult(faces, width, height, times)

    def fit(self, image: np.ndarray, roi: np.ndarray, passes: int = 1,
            times: dict[str, float] | None = None) -> Fit | None:
        """Regress the 3DMM in ``roi`` of a BGR uint8 ``image``, ``passes`` times, each pass
        cropping from the previous one's landmarks; ``None`` if the output is unusable.

        This is the per-face step a tracker calls with the ROI of the previous frame's
        landmarks (3DDFA_V2's video rule) instead of a detector box."""
        return self.fits(image, [roi], passes, times)[0]

    def fits(self, image: np.ndarray, rois: Sequence[np.ndarray], passes: int = 1,
             times: dict[str, float] | None = None) -> list[Fit | None]:
        """:meth:`fit` of several ROIs at once: each pass runs every face's crops (and their
        mirror images) through the regressor in one batch."""
        times = {} if times is None else times
        fits: list[Fit | None] = [None] * len(rois)
        current = [np.asarray(r, dtype=np.float64) for r in rois]
        live = list(range(len(rois)))
        for i in range(passes):
            if i:  # each further pass crops where the previous one found the landmarks
                current = [roi_from_landmarks(f.landmarks) if f is not None else r
                           for f, r in zip(fits, current)]
            for k in live:
                fits[k] = None
            live = [k for k in live if current[k][2] - current[k][0] >= 1.0
                    and np.all(np.isfinite(current[k]))]
            if not live:
                break
            shifted = self._options.accurate and i == passes - 1
            groups = [_shifted(current[k]) if shifted else [current[k]] for k in live]
            crops = [r for group in groups for r in group]
            plain, flipped = self.regressor.regress(image, crops, self._options.mirror, times)
            t0 = time.perf_counter()
            row = 0
            for k, group in zip(live, groups):
                rows = slice(row, row + len(group))
                row += len(group)
                fits[k] = self._fit_of(current[k], group, plain[rows],
                                       None if flipped is None else flipped[rows])
            live = [k for k in live if fits[k] is not None]
            _accumulate(times, "reconstruct_sparse", time.perf_counter() - t0)
        return fits

    def _fit_of(self, roi: np.ndarray, crops: list[np.ndarray], plain: np.ndarray,
                flipped: np.ndarray | None) -> Fit | None:
        """One face's fit from the parameters of its crops (``crops``, several in the
        accuracy mode) and of their mirror images (``flipped``, with ``mirror``): the mirror
        images' cameras un-mirrored and averaged in, the crops' cameras averaged in the
        image. ``None`` if a number is not finite."""
        estimates = plain.copy()
        if flipped is not None:
            for j, crop_roi in enumerate(crops):
                estimates[j, :12] = (plain[j, :12] + unmirror_camera(flipped[j, :12],
                                                                      crop_roi).reshape(-1)) / 2.0
        params = estimates.mean(axis=0)
        if len(crops) > 1:  # cameras of different crops: averaged in the image
            camera = np.mean([crop_to_image_camera(e[:12].reshape(3, 4), r)
                              for e, r in zip(estimates, crops)], axis=0)
            params[:12] = image_to_crop_camera(camera, roi).reshape(-1)
        first = plain[0]
        if not np.all(np.isfinite(params)) or not np.all(np.isfinite(first)):
            return None
        camera = crop_to_image_camera(params[:12].reshape(3, 4), roi)
        landmarks = self.model.project(self.model.landmarks_model(params), camera)
        if flipped is not None or len(crops) > 1:  # the plain estimate's quality (Fit.quality)
            plain_landmarks = self.model.project(
                self.model.landmarks_model(first),
                crop_to_image_camera(first[:12].reshape(3, 4), crops[0]))
        else:
            plain_landmarks = landmarks
        quality = roi_iou(roi, roi_from_landmarks(plain_landmarks))
        return Fit(roi=roi, params=params, camera=camera, landmarks=landmarks, quality=quality)

    def face_from_fit(self, fit: Fit, box: np.ndarray, score: float,
                      intrinsics: CameraIntrinsics, times: dict[str, float] | None = None
                      ) -> Face | None:
        """The :class:`Face` of a fit: angles and metric pose from its camera. ``None`` if the
        camera is degenerate. Also used to rebuild a face from smoothed parameters."""
        t0 = time.perf_counter()
        view = view_rotation(fit.camera)
        if not np.all(np.isfinite(view[0])):
            return None
        yaw, pitch, roll = euler_angles(view[0])
        landmarks_model = self.model.landmarks_model(fit.params)
        head_pose = metric_pose(fit.camera, landmarks_model, intrinsics, view)
        if self._options.pose_method == "pnp":
            head_pose = pnp_pose(fit.landmarks, landmarks_model, intrinsics, head_pose)
        if not (np.all(np.isfinite(head_pose.translation)) and head_pose.translation[2] > 0
                and np.all(np.isfinite(fit.landmarks))):
            return None  # a degenerate fit: no face rather than NaN downstream
        if times is not None:
            _accumulate(times, "pose", time.perf_counter() - t0)
        return Face(box=np.asarray(box, dtype=np.float64), score=score, roi=fit.roi,
                    params=fit.params, camera=fit.camera, yaw=yaw, pitch=pitch, roll=roll,
                    pose=head_pose, landmarks=fit.landmarks, _model=self.model)


#: The accuracy mode's crops: the ROI and four shifted by 5 % of its side.
_SHIFTS = ((0.0, 0.0), (0.05, 0.0), (-0.05, 0.0), (0.0, 0.05), (0.0, -0.05))


def _shifted(roi: np.ndarray) -> list[np.ndarray]:
    side = roi[2] - roi[0]
    return [roi + np.array([dx, dy, dx, dy]) * side for dx, dy in _SHIFTS]


def image_to_crop_camera(camera: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The inverse of :func:`crop_to_image_camera` (its depth offset, which the image camera
    drops, set to 0)."""
    k = (roi[2] - roi[0]) / CROP_SIZE
    crop = np.array(camera, dtype=np.float64).reshape(3, 4) / k
    crop[0, 3] = (camera[0, 3] - (roi[0] - k)) / k
    crop[1] = -crop[1]
    crop[1, 3] = (roi[1] + CROP_SIZE * k - camera[1, 3]) / k
    return crop


def _usable_box(box: np.ndarray) -> bool:
    """A caller-supplied box is usable when finite, of positive size and not absurdly large."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    return (b.size >= 4 and bool(np.all(np.isfinite(b[:4]))) and b[2] - b[0] >= 1.0
            and b[3] - b[1] >= 1.0 and bool(np.all(np.abs(b[:4]) < 1e7)))


def _accumulate(times: dict[str, float], stage: str, seconds: float) -> None:
    times[stage] = times.get(stage, 0.0) + seconds * 1e3

