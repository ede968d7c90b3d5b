"""IoU tracking of face identities."""

from __future__ import annotations

import numpy as np

from dense_head_pose.tracking import IouTracker, box_iou


class _Face:
    def __init__(self, box) -> None:
        self.box = np.array(box, float)
        self.id = None


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[5, 0, 15, 10]], float)
    assert np.allclose(box_iou(a, b), [[50 / 150], [0.0]])


def test_ids_follow_moving_faces_and_are_not_reused() -> None:
    tracker = IouTracker(max_missed=1)
    frame1 = [_Face([0, 0, 100, 100]), _Face([300, 0, 400, 100])]
    tracker.update(frame1)
    assert [f.id for f in frame1] == [1, 2]
    frame2 = [_Face([310, 5, 410, 105]), _Face([10, 0, 110, 100])]  # order swapped, moved
    tracker.update(frame2)
    assert [f.id for f in frame2] == [2, 1]
    frame3 = [_Face([15, 0, 115, 100])]  # face 2 missed once: kept
    tracker.update(frame3)
    assert frame3[0].id == 1
    frame4 = [_Face([15, 0, 115, 100]), _Face([310, 5, 410, 105])]
    tracker.update(frame4)
    assert [f.id for f in frame4] == [1, 2]
    tracker.update([])
    tracker.update([])  # both retired after max_missed
    back = [_Face([15, 0, 115, 100])]
    tracker.update(back)
    assert back[0].id == 3
