"""Which CameraInfo belongs to an image.

Images and their CameraInfo travel on two topics, so "the last camera_info received" is
often another frame's, and with a source of mixed sizes (an image folder, a driver switching
modes) another resolution's. The rule here, for an image with ``frame_id`` F, stamp T and
size W x H:

1. candidates are the recent CameraInfo messages of frame F (the last ``per_frame`` are kept
   per frame_id, for the ``max_frames`` frame_ids heard from most recently: a sender making
   up frame_ids cannot grow the cache); if none was ever received for F, those of any frame
   (drivers that leave frame_id empty), with one warning;
2. among them, those for W x H; if there are none, those whose size differs by one uniform
   factor (binning, a resized stream: K is scaled);
3. of those, the one nearest to T (the one with the same stamp when the driver sends pairs).

No candidate: default intrinsics (f = width, centred), with a throttled warning.

Before the first CameraInfo the node waits a little for it (``wait_for_first``): a driver
sends each image with its CameraInfo, and the first image can overtake it. Without the wait
the first pose used default intrinsics (30 % off in depth with a 1000 px lens at 1280 px),
and a smoothing filter carried that error into the frames after it.

The cache is filled by the executor and read by the estimation thread, hence the lock.
ROS-free (messages are duck-typed): the node and the bag processor pair images with their
CameraInfo by the same rule.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from typing import Any

from ..pipeline.pose import CameraIntrinsics
from .messages import intrinsics_from_camera_info, stamp_ns

__all__ = ["CameraInfoCache", "stamp_ns"]


class CameraInfoCache:
    """Recent CameraInfo messages per frame_id, and the choice of one for an image."""

    def __init__(self, per_frame: int = 32, max_frames: int = 16) -> None:
        self._per_frame = per_frame
        self._max_frames = max_frames
        self._by_frame: OrderedDict[str, deque[Any]] = OrderedDict()
        self._changed = threading.Condition()
        self._waited = False

    def add(self, msg: Any) -> None:
        """Remember a received CameraInfo."""
        frame = msg.header.frame_id
        with self._changed:
            if frame not in self._by_frame:
                self._by_frame[frame] = deque(maxlen=self._per_frame)
                while len(self._by_frame) > self._max_frames:  # the longest silent goes
                    self._by_frame.popitem(last=False)
            else:
                self._by_frame.move_to_end(frame)
            self._by_frame[frame].append(msg)
            self._changed.notify_all()

    def wait_for_first(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a first CameraInfo, once while the cache is empty
        (a source that never sends one costs that time once, not on every frame); whether
        one is there."""
        with self._changed:
            if not self._by_frame and not self._waited:
                self._waited = True
                self._changed.wait_for(lambda: bool(self._by_frame), timeout)
            return bool(self._by_frame)

    @property
    def empty(self) -> bool:
        """Whether no CameraInfo was received yet."""
        return not self._by_frame

    def match(self, frame_id: str, stamp: Any, width: int, height: int
              ) -> tuple[CameraIntrinsics | None, str | None]:
        """Intrinsics for an image, or ``(None, reason)`` when no CameraInfo fits it."""
        with self._changed:
            if not self._by_frame:
                return None, "no camera_info received yet"
            same_frame = frame_id in self._by_frame
            candidates = (list(self._by_frame[frame_id]) if same_frame
                          else [m for q in self._by_frame.values() for m in q])
        exact = [m for m in candidates if (m.width, m.height) == (width, height)]
        pool = exact or [m for m in candidates if _uniform_scale(m, width, height)]
        if not pool:
            sizes = sorted({f"{m.width}x{m.height}" for m in candidates})
            return None, (f"no camera_info for {width}x{height} images of frame "
                          f"'{frame_id}' (have {', '.join(sizes)})")
        t = stamp_ns(stamp)
        best = min(pool, key=lambda m: abs(stamp_ns(m.header.stamp) - t))
        try:
            intrinsics = intrinsics_from_camera_info(best, width, height)
        except ValueError as exc:
            return None, f"ignoring camera_info: {exc}"
        if not same_frame:
            return intrinsics, (f"camera_info frame_id '{best.header.frame_id}' differs from "
                                f"the image's '{frame_id}'; using it anyway")
        return intrinsics, None


def _uniform_scale(msg: Any, width: int, height: int) -> bool:
    """Whether ``msg`` describes the same camera at another uniform scale (or any size)."""
    if msg.width == 0 or msg.height == 0:  # size not filled in: applies to any image
        return True
    return math.isclose(width / msg.width, height / msg.height, rel_tol=1e-3)
