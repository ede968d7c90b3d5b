"""The distance protocol: labelled faces shown as a robot sees people across the room.

Each image is scaled so that its labelled face is ``face_size`` pixels (the square root of the
labels' box area) and centred on a grey canvas of a camera's size (1280x720, 640x480); the
labels follow. ``dense-head-pose evaluate aflw2000 --face-size PX --canvas WxH`` uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Distance:
    """The distance protocol: faces of ``face_size`` pixels on a ``canvas`` (width, height)."""

    face_size: float
    canvas: tuple[int, int]

    #: The canvas's grey, a flat background the detector finds nothing in.
    GREY = 127

    def __post_init__(self) -> None:
        if not (math.isfinite(self.face_size) and 8 <= self.face_size <= 4000):
            raise ValueError(f"face size must be 8 to 4000 pixels, got {self.face_size}")
        if len(self.canvas) != 2 or not all(16 <= v <= 8192 for v in self.canvas):
            raise ValueError(f"canvas sides must be 16 to 8192 pixels, got {self.canvas}")
        if self.face_size > min(self.canvas):  # every face would be cut: all missed
            raise ValueError(f"faces of {self.face_size:g} px do not fit a "
                             f"{self.canvas[0]}x{self.canvas[1]} canvas (at most "
                             f"{min(self.canvas)} px, its smaller side)")

    def apply(self, image: np.ndarray, sample: Any) -> tuple[np.ndarray, Any]:
        """``image`` scaled and centred on the canvas (cropped where it overflows), and
        ``sample`` (an :class:`~.aflw2000.Sample`) with its landmarks and crop box moved
        with it."""
        import cv2

        span = sample.landmarks.max(axis=0) - sample.landmarks.min(axis=0)
        scale = self.face_size / math.sqrt(max(float(span[0] * span[1]), 1.0))
        height, width = image.shape[:2]
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA
                             if scale < 1.0 else cv2.INTER_LINEAR)
        cw, ch = self.canvas
        x0, y0 = (cw - new_w) // 2, (ch - new_h) // 2  # may be negative: cropped
        canvas = np.full((ch, cw, 3), self.GREY, np.uint8)
        sx, sy = max(0, -x0), max(0, -y0)
        dx, dy = max(0, x0), max(0, y0)
        w, h = min(new_w - sx, cw - dx), min(new_h - sy, ch - dy)
        canvas[dy:dy + h, dx:dx + w] = resized[sy:sy + h, sx:sx + w]
        # pixel centres scale about the image's corner: (p + 0.5) * s - 0.5, then shift
        kx, ky = new_w / width, new_h / height
        landmarks = (sample.landmarks + 0.5) * [kx, ky] - 0.5 + [x0, y0]
        roi = (sample.roi.reshape(2, 2) + 0.5) * [kx, ky] - 0.5 + [x0, y0]
        return canvas, replace(sample, landmarks=landmarks, roi=roi.reshape(4))
