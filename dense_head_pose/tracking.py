"""Stable face identities across video frames: greedy IoU matching of boxes.

Good enough for the usual robot case (a few faces moving less than their own size between
frames); ids are never reused, so a face that leaves and returns gets a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .results import Face


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes (x1, y1, x2, y2)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


class IouTracker:
    """Assigns ``Face.id`` so that a face keeps its id while it overlaps its last box.

    A track survives ``max_missed`` frames without a match (a missed detection or a brief
    occlusion) before its id is retired.
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.min_iou = min_iou
        self.max_missed = max_missed
        self._next_id = 1
        self._boxes = np.empty((0, 4))
        self._ids: list[int] = []
        self._missed: list[int] = []

    def update(self, faces: Sequence[Face]) -> None:
        """Set ``id`` on every face of the new frame (in place)."""
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        assigned = [-1] * len(faces)
        matched_tracks: set[int] = set()
        if len(faces) and len(self._ids):
            iou = box_iou(boxes, self._boxes)
            for flat in np.argsort(-iou, axis=None):
                i, j = divmod(int(flat), iou.shape[1])
                if iou[i, j] < self.min_iou:
                    break
                if assigned[i] < 0 and j not in matched_tracks:
                    assigned[i] = j
                    matched_tracks.add(j)
        new_boxes, new_ids, new_missed = [], [], []
        for i, face in enumerate(faces):
            if assigned[i] >= 0:
                face.id = self._ids[assigned[i]]
            else:
                face.id = self._next_id
                self._next_id += 1
            new_boxes.append(boxes[i])
            new_ids.append(face.id)
            new_missed.append(0)
        for j, track_id in enumerate(self._ids):
            if j not in matched_tracks and self._missed[j] < self.max_missed:
                new_boxes.append(self._boxes[j])
                new_ids.append(track_id)
                new_missed.append(self._missed[j] + 1)
        self._boxes = np.array(new_boxes, dtype=np.float64).reshape(-1, 4)
        self._ids, self._missed = new_ids, new_missed
