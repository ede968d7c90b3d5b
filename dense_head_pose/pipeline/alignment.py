"""Face alignment: the 3DDFA_V2 region of interest, the 120x120 crop and the 3DMM regressor.

The crop is one ``cv2.warpAffine`` from image to crop pixels (crop and resize together, zero
outside the image). It is equivalent to 3DDFA_V2's crop-then-``cv2.resize`` but sub-pixel and
without an intermediate image; its inverse maps the regressor's output back to the image.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np

from ..runtime import TFLiteModel

CROP_SIZE = 120
N_PARAMS = 62


#: The detector box -> ROI rule: side ``ROI_SCALE`` times the box's mean side, centre
#: ``ROI_SHIFT`` of it below the box's. Fitted without labels, by
#: ``scripts/fit_roi_rule.py``: on the test stills and video (not the benchmark), flipped,
#: rotated and scaled, the medians over 199 faces of the ROI a face's converged fit
#: reproduces (three passes), against this detector's box. 3DDFA_V2's rule
#: (1.58, 0.14) was made for FaceBoxes, whose boxes are tighter: with RFB-320's boxes it
#: cropped 30 % too wide, and one pass scored NME 4.36 % on AFLW2000-3D against 3.94 %.
ROI_SCALE = 1.22
ROI_SHIFT = 0.16


def roi_from_box(box: np.ndarray) -> np.ndarray:
    """The square ROI (x1, y1, x2, y2) for a detector box (see :data:`ROI_SCALE`)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    size = ((x2 - x1) + (y2 - y1)) / 2.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 + ROI_SHIFT * size
    half = ROI_SCALE * size / 2.0
    return np.array([cx - half, cy - half, cx + half, cy + half])


#: The landmarks -> ROI rule: side ``LANDMARK_ROI_SCALE`` times the landmarks' extent,
#: measured along the face's own axes (the eye line and its normal), so a face rolled in
#: the image plane gets the crop it gets upright. 3DDFA_V2's rule (sqrt(2) times the
#: extent along the image axes) crops a rolled face wider the more it is rolled, and crops
#: every face wider than the box rule above (``docs/accuracy.md`` compares the two).
LANDMARK_ROI_SCALE = 1.3
_EYES = (slice(36, 42), slice(42, 48))


def roi_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The square ROI (x1, y1, x2, y2) for 68 landmarks (see :data:`LANDMARK_ROI_SCALE`)."""
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    eye_line = points[_EYES[1]].mean(axis=0) - points[_EYES[0]].mean(axis=0)
    norm = math.hypot(*eye_line)
    c, s = (eye_line / norm) if norm > 0 else (1.0, 0.0)
    # the landmarks in the face's axes: x along the eye line, y across it
    u = points[:, 0] * c + points[:, 1] * s
    v = points[:, 1] * c - points[:, 0] * s
    lo_u, hi_u, lo_v, hi_v = u.min(), u.max(), v.min(), v.max()
    mid_u, mid_v = (lo_u + hi_u) / 2.0, (lo_v + hi_v) / 2.0
    centre = (mid_u * c - mid_v * s, mid_u * s + mid_v * c)
    half = max(hi_u - lo_u, hi_v - lo_v) / 2.0 * LANDMARK_ROI_SCALE
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def roi_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    lo = np.maximum(a[:2], b[:2])
    hi = np.minimum(a[2:4], b[2:4])
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    union = float(np.prod(a[2:4] - a[:2]) + np.prod(b[2:4] - b[:2])) - inter
    return inter / max(union, 1e-9)


def crop_to_image_affine(roi: np.ndarray) -> np.ndarray:
    """2x3 map from crop pixel coordinates to image pixel coordinates for ``roi``.

    Pixel centres map as in ``cv2.resize`` of the ROI to 120x120: crop pixel ``i`` samples
    image position ``x1 + (i + 0.5) * k - 0.5`` with ``k = side / 120``.
    """
    k = (roi[2] - roi[0]) / CROP_SIZE
    return np.array([[k, 0.0, roi[0] + 0.5 * k - 0.5],
                     [0.0, k, roi[1] + 0.5 * k - 0.5]])


MAX_BATCH = 16
"""The most crops in one invoke; more are run in several, so the plans kept (one per batch
size up to this) stay few and small. What batching saves depends on the CPU
(docs/performance.md)."""


class Regressor:
    """MobileNet 3DMM regressor: BGR crops (0..255) -> 62 parameters each.

    Parameters: ``[0:12]`` a 3x4 affine camera in crop pixels (y up), ``[12:52]`` shape and
    ``[52:62]`` expression coefficients. Input and output normalisation are inside the graph.

    The crops of one frame (every face, each with its mirror image) go through the network
    in one invoke (:meth:`regress`). An interpreter is planned once per batch size, when
    that size first occurs, and kept: a frame whose face count changes runs a plan made
    before instead of re-planning. Each row's result is exactly the single crop's.
    """

    def __init__(self, model_path: Path, num_threads: int = 1) -> None:
        self._path, self._threads = model_path, num_threads
        self._models = {1: TFLiteModel(model_path, (1, CROP_SIZE, CROP_SIZE, 3), num_threads)}
        self._batch = np.empty((MAX_BATCH, CROP_SIZE, CROP_SIZE, 3), np.float32)
        self._crop = np.empty((CROP_SIZE, CROP_SIZE, 3), np.uint8)
        self.max_batch = MAX_BATCH
        """The most crops an invoke takes (2 or more: a crop and its mirror go together)."""

    def crop(self, image: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """The 120x120 crop of ``roi`` in ``image`` (uint8, the buffer of the next call)."""
        cv2.warpAffine(image, crop_to_image_affine(roi), (CROP_SIZE, CROP_SIZE), dst=self._crop,
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return self._crop

    def regress(self, image: np.ndarray, rois: list[np.ndarray], mirror: bool,
                times: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The parameters (float64, ``(len(rois), 62)``) of each ROI's crop, in the crop the
        network saw; with ``mirror`` also those of each crop's mirror image (else None).
        ``times`` gets the seconds spent cropping (``preprocess``) and running (``infer``)."""
        per_crop = 2 if mirror else 1
        cropping = running = 0.0
        out = np.empty((len(rois) * per_crop, N_PARAMS))
        step = max(1, min(self.max_batch, MAX_BATCH) // per_crop)
        for start in range(0, len(rois), step):
            chunk = rois[start:start + step]
            t0 = time.perf_counter()
            for row, roi in enumerate(chunk):
                np.copyto(self._batch[row], self.crop(image, roi), casting="unsafe")
                if mirror:
                    np.copyto(self._batch[len(chunk) + row], self._batch[row, :, ::-1])
            n = len(chunk) * per_crop
            t1 = time.perf_counter()
            params = self._model(n).run(self._batch[:n])[0].astype(np.float64)
            cropping, running = cropping + t1 - t0, running + time.perf_counter() - t1
            out[start:start + len(chunk)] = params[:len(chunk)]
            if mirror:
                out[len(rois) + start:len(rois) + start + len(chunk)] = params[len(chunk):]
        if times is not None:
            times["preprocess"] = times.get("preprocess", 0.0) + cropping * 1e3
            times["infer"] = times.get("infer", 0.0) + running * 1e3
        return out[:len(rois)], (out[len(rois):] if mirror else None)

    def _model(self, batch: int) -> TFLiteModel:
        """The interpreter planned for ``batch`` crops (made on first use, then kept)."""
        if batch not in self._models:
            self._models[batch] = TFLiteModel(self._path, (batch, CROP_SIZE, CROP_SIZE, 3),
                                              self._threads)
        return self._models[batch]

    @property
    def path(self) -> Path:
        return self._path


def unmirror_camera(camera: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The 3x4 crop camera (3DDFA_V2's coordinates) of a face from the camera the regressor
    gave for the mirror image of its crop.

    The mirrored face is the model mirrored about its x axis (``G = diag(-1, 1, 1)``), seen
    in a crop whose column ``i`` is the original's ``119 - i``. With this crop's sampling
    (column ``i`` at ``x1 + (i + 0.5) k - 0.5``, ``k = side / 120``) and 3DDFA_V2's
    ``x = k (u - 1) + x1``, a point at ``u'`` in the mirror is at ``u = 122 - 1/k - u'``."""
    k = (roi[2] - roi[0]) / CROP_SIZE
    out = np.array(camera, dtype=np.float64).reshape(3, 4).copy()
    out[:, 0] = -out[:, 0]  # the model mirrored: X' = G X
    out[0, :3] = -out[0, :3]
    out[0, 3] = 122.0 - 1.0 / k - out[0, 3]
    return out
