"""A tracked face and the geometry of following it: its detector box relative to its
landmarks, and boxes paired by overlap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pipeline.estimator import Fit
from .smoothing import Estimate, FitSmoother


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes (x1, y1, x2, y2)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


@dataclass(frozen=True)
class TrackInput:
    """What a track's face is made of in one frame: its fit before smoothing, its detector
    box relative to its landmarks (:attr:`Track.box_offset`), its detector score, and its
    smoother's state after the fit (None when not smoothed)."""

    fit: Fit
    box_offset: np.ndarray
    score: float
    forward: Estimate | None = None


@dataclass
class Track:
    id: int
    fit: Fit
    score: float
    box_offset: np.ndarray
    """Detector box relative to the landmark box, so tracked frames report a detector-like
    box: (x1, y1, x2, y2) offsets in units of the landmark box's width and height."""
    smoother: FitSmoother | None
    unconfirmed: int = 0
    quality: float = 1.0
    crop: np.ndarray | None = None
    """Where this face is cropped in the next frame (ROI, pixels)."""

    @property
    def box(self) -> np.ndarray:
        return box_from_landmarks(self.fit.landmarks, self.box_offset)


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    return np.concatenate([lo, hi]).astype(np.float64)


def box_offset(box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    lm = landmark_box(landmarks)
    size = np.maximum(np.tile(lm[2:] - lm[:2], 2), 1e-6)
    return (np.asarray(box, dtype=np.float64)[:4] - lm) / size


def box_from_landmarks(landmarks: np.ndarray, offset: np.ndarray) -> np.ndarray:
    lm = landmark_box(landmarks)
    return lm + offset * np.tile(lm[2:] - lm[:2], 2)


def greedy_pairs(a: np.ndarray, b: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (i, j) of boxes of ``a`` and ``b``, best overlap first, each used once."""
    if len(a) == 0 or len(b) == 0:
        return []
    iou = box_iou(a, b)
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs
