"""What the face detector gives, and the geometry of its boxes: a :class:`Detection` (a box
in image pixels and a score), how the near look scales a frame, and boxes compared (overlap,
one part of another, suppression of overlaps)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The input the detector was trained at (width, height): its near look.
TRAINED_INPUT = (320, 240)


@dataclass(frozen=True)
class Detection:
    """One detected face: ``box`` = (x1, y1, x2, y2) in image pixels, ``score`` in [0, 1]."""

    box: np.ndarray
    score: float


def near_scale(width: int, height: int) -> float:
    """How much the near look (320x240, letterboxed or stretched) scales a frame."""
    return max(TRAINED_INPUT[0] / width, TRAINED_INPUT[1] / height)


def suppressed(boxes: np.ndarray, scores: list[float], min_score: float, iou: float
                ) -> np.ndarray:
    """Indices of the boxes (x0, y0, x1, y1) that non-maximum suppression keeps."""
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores, min_score, iou)).reshape(-1)


def largest_first(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes (x0, y0, x1, y1)."""
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:4], b[2:4])
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    union = float(np.prod(a[2:4] - a[:2]) + np.prod(b[2:4] - b[:2])) - inter
    return inter / union if union > 0 else 0.0


def part_of(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether box ``inner`` is narrower than face box ``outer`` (by a fifth at least) and
    centred on its head (the box grown by 30 % on every side: ears and hair)."""
    w, h = outer[2] - outer[0], outer[3] - outer[1]
    cx, cy = (inner[0] + inner[2]) / 2.0, (inner[1] + inner[3]) / 2.0
    return bool(outer[0] - 0.3 * w <= cx <= outer[2] + 0.3 * w
                and outer[1] - 0.3 * h <= cy <= outer[3] + 0.3 * h
                and inner[2] - inner[0] < 0.8 * w)


