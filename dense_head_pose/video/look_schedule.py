"""When a tracker's detections look where: the detector's views (a frame or its mirror) and
its far look, scheduled over a stream's detections.

* **Views.** Scanning an empty scene, the frame and its mirror are looked at on alternate
  detections, not both on each (what the estimator's mirrored retry does for a single
  image): no extra time.
* **The far look** (faces across the room) runs on the stream's first detection, then on one
  in ``ceil(FAR_LOOK_SPREAD * cost)``, ``cost`` its time in near looks
  (:meth:`~dense_head_pose.pipeline.estimator.HeadPoseEstimator.far_look_cost`): a person
  across the room when the stream starts is found on its first frame (which also plans the
  far look's model there, not in the middle of the stream), one who comes in later within
  that many detections, and the far look adds under a near look's time to each
  (docs/video.md).
"""

from __future__ import annotations

import math

FAR_LOOK_SPREAD = 1.5


class LookSchedule:
    """One stream's schedule (see module); :meth:`reset` when the stream restarts."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._scans = 0  # detections on an empty scene
        self._since_far: int | None = None  # detections since the last far look; None: none

    def next(self, scanning: bool, mirrored_views: bool, far_cost: float) -> tuple[str, bool]:
        """The next detection's view (``auto``, ``plain`` or ``mirrored``) and whether it
        looks far; ``scanning``: no face is tracked; ``mirrored_views``: the estimator
        retries mirrored; ``far_cost``: the far look's cost in near looks (0: none)."""
        view = "auto"
        if scanning:
            self._scans += 1
            if mirrored_views:
                view = "mirrored" if self._scans % 2 == 0 else "plain"
        k = max(1, math.ceil(FAR_LOOK_SPREAD * far_cost))
        since = None if self._since_far is None else self._since_far + 1
        far = far_cost > 0 and (since is None or since >= k
                                or (scanning and self._scans % k == 0))
        self._since_far = 0 if far else since
        return view, far
