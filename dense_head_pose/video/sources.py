"""Frame sources: a video file, a camera index or a folder of images, as one iterator.

Used by the CLI and by the ROS ``image_source`` node. A source that cannot be opened, or yields
no frame at all, raises :class:`~dense_head_pose.errors.VideoError`; a stream that stops
decoding part-way (a truncated file whose header claims more frames) simply ends.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import images
from ..errors import ImageError, VideoError
from ..runtime import native_stderr_captured

LOG = logging.getLogger("dense_head_pose")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


@dataclass
class FrameSource:
    """An opened source. Iterate for ``(index, bgr_frame)``; ``fps`` may be 0 if unknown."""

    description: str
    fps: float
    frame_count: int | None
    _capture: cv2.VideoCapture | None = None
    _files: list[Path] | None = None
    _path: Path | None = None
    _first: np.ndarray | None = None
    skipped: int = 0
    """Files of a folder that did not decode (skipped, not fatal)."""

    @property
    def exact_count(self) -> bool:
        """Whether ``frame_count`` is known to be right (a folder; a video container's count
        is what its header claims)."""
        return self._files is not None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self._files is not None:
            index = 0
            for path in self._files:
                try:
                    yield index, images.read(str(path))
                    index += 1
                except ImageError:
                    self.skipped += 1
                    continue  # an unreadable file in a folder is skipped, not fatal
            return
        assert self._capture is not None
        index = 0
        if self._first is not None:  # read by open_source to prove the file decodes
            first, self._first = self._first, None
            yield index, images.as_bgr8(first)
            index += 1
        while True:
            ok, frame = self._capture.read()
            if not ok or frame is None or frame.size == 0:
                return
            yield index, images.as_bgr8(frame)
            index += 1

    def timed(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """``(index, seconds, bgr_frame)``: a video's presentation time, a camera's arrival
        time (monotonic clock), a folder's index at ``fps`` (30 if unknown). The times feed
        the temporal filters, so a video with uneven frame times filters correctly."""
        rate = self.fps or 30.0
        start = None
        last = -math.inf
        for index, frame in self:
            if self._files is not None:
                seconds = index / rate
            elif self.description.startswith("camera"):
                now = time.monotonic()
                start = now if start is None else start
                seconds = now - start
            else:
                assert self._capture is not None
                seconds = float(self._capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1e3
                if not math.isfinite(seconds) or seconds <= last:  # no or broken PTS
                    seconds = index / rate if last < index / rate else last + 1.0 / rate
            last = seconds
            yield index, seconds, frame

    def rewind(self) -> bool:
        """Go back to the first frame (files and folders); ``False`` if the source cannot
        (a camera). A video is opened again rather than sought: seeking to frame 0 fails in
        some containers (a one-frame file, say)."""
        if self._files is not None:
            return True
        if self._path is None:
            return False
        assert self._capture is not None
        self._capture.release()
        self._capture = cv2.VideoCapture(str(self._path))
        return bool(self._capture.isOpened())

    def close(self) -> None:
        """Release the capture device or file."""
        if self._capture is not None:
            self._capture.release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Camera indices OpenCV takes as such; from 100 on it reads them as backend + index.
MAX_CAMERA_INDEX = 99


def open_source(source: str | int) -> FrameSource:
    """Open ``source``: an int or digit string is a camera index, a directory a folder of
    images (sorted by name), anything else a video file."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        index = int(source)
        if not 0 <= index <= MAX_CAMERA_INDEX:
            raise VideoError(f"camera index {source} is out of range (0..{MAX_CAMERA_INDEX})")
        try:
            # OpenCV prints its own warnings about a missing device straight to stderr
            # ("can't open camera by index"); the one message below says it all
            with native_stderr_captured() as captured:
                capture = cv2.VideoCapture(index)
                opened = capture.isOpened()
                detail = " ".join(captured().split()) if not opened else ""
        except cv2.error as exc:
            raise VideoError(f"camera {index} cannot be opened: {exc.err}") from exc
        if not opened:
            device = f" (/dev/video{index} does not exist)" if not Path(
                f"/dev/video{index}").exists() and sys.platform.startswith("linux") else ""
            LOG.debug("OpenCV said: %s", detail)
            raise VideoError(f"camera {index} cannot be opened{device}")
        return FrameSource(f"camera {index}", float(capture.get(cv2.CAP_PROP_FPS) or 0.0), None,
                           _capture=capture)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        if not any(_decodes(f) for f in files):  # stops at the first good one
            raise VideoError(f"folder {path}: none of its {len(files)} image file(s) decodes")
        return FrameSource(f"folder {path}", 0.0, len(files), _files=files)
    if not path.exists():
        raise VideoError(f"video {path} does not exist")
    if not path.is_file():
        raise VideoError(f"{path} is not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(f"video {path} is not readable")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise VideoError(f"{path} is an image, not a video: use `dense-head-pose image "
                         f"{path}` (or give a folder of images as the video)")
    try:
        capture = cv2.VideoCapture(str(path))
    except cv2.error as exc:
        raise VideoError(f"video {path} cannot be opened: {exc.err}") from exc
    if not capture.isOpened():
        raise VideoError(f"video {path} cannot be opened (not a video, or no decoder)")
    ok, first = capture.read()
    if not ok or first is None or first.size == 0:
        capture.release()
        raise VideoError(f"video {path} yields no decodable frame")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return FrameSource(f"video {path}", float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                       count if count > 0 else None, _capture=capture, _path=path,
                       _first=first)


def _decodes(path: Path) -> bool:
    try:
        images.read(str(path))
    except ImageError:
        return False
    return True
