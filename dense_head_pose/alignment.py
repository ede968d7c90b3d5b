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

from .runtime import TFLiteModel

CROP_SIZE = 120
N_PARAMS = 62


def roi_from_box(box: np.ndarray) -> np.ndarray:
    """3DDFA_V2's square ROI (x1, y1, x2, y2) from a detector box: 1.58x, shifted down 0.14."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    old_size = ((x2 - x1) + (y2 - y1)) / 2.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 + 0.14 * old_size
    size = float(int(old_size * 1.58))
    return np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2])


def roi_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """3DDFA_V2's ROI from 68 landmarks: their bounding square, side scaled by sqrt(2)."""
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    centre = (lo + hi) / 2.0
    half = float(np.max(hi - lo)) / 2.0 * math.sqrt(2.0)
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


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

    def infer(self) -> np.ndarray:
        """Run the regressor on the current crop; the 62 parameters as float64."""
        return self._model.run(self._input)[0][0].astype(np.float64)
