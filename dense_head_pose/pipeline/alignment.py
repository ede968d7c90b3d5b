"""Face alignment: the 3DDFA_V2 region of interest, the 120x120 crop and the 3DMM regressor.

The crop is one ``cv2.warpAffine`` from image to crop pixels (crop and resize together, zero
outside the image). It is equivalent to 3DDFA_V2's crop-then-``cv2.resize`` but sub-pixel and
without an intermediate image; its inverse maps the regressor's output back to the image.
"""

from __future__ import annotations

import math
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


def roi_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """3DDFA_V2's ROI from 68 landmarks: their bounding square, side scaled by sqrt(2)."""
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    centre = (lo + hi) / 2.0
    half = float(np.max(hi - lo)) / 2.0 * math.sqrt(2.0)
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


class Regressor:
    """MobileNet 3DMM regressor: BGR crop (0..255) -> 62 parameters.

    Parameters: ``[0:12]`` a 3x4 affine camera in crop pixels (y up), ``[12:52]`` shape and
    ``[52:62]`` expression coefficients. Input and output normalisation are inside the graph.
    """

    def __init__(self, model_path: Path, num_threads: int = 1) -> None:
        self._model = TFLiteModel(model_path, (1, CROP_SIZE, CROP_SIZE, 3), num_threads)
        self._input = np.empty((1, CROP_SIZE, CROP_SIZE, 3), np.float32)
        self._crop = np.empty((CROP_SIZE, CROP_SIZE, 3), np.uint8)

    def crop(self, image: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """Warp ``roi`` of ``image`` into the 120x120 input buffer; return the crop (uint8)."""
        cv2.warpAffine(image, crop_to_image_affine(roi), (CROP_SIZE, CROP_SIZE), dst=self._crop,
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        np.copyto(self._input[0], self._crop, casting="unsafe")
        return self._crop

    def infer(self, mirrored: bool = False) -> np.ndarray:
        """Run the regressor on the current crop (``mirrored``: on its mirror image); the
        62 parameters as float64, in the crop the network saw."""
        if mirrored:
            self._input[0] = self._input[0, :, ::-1].copy()
        params = self._model.run(self._input)[0][0].astype(np.float64)
        if mirrored:  # leave the crop as it was
            self._input[0] = self._input[0, :, ::-1].copy()
        return params


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
