"""Frame sources: a video file, a camera index or a folder of images, as one iterator.

Used by the CLI and by the ROS ``image_source`` node. A source that cannot be opened, or yields
no frame at all, raises :class:`~dense_head_pose.errors.VideoError`; a stream that stops
decoding part-way (a truncated file whose header claims more frames) simply ends.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import images
from .errors import ImageError, VideoError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


@dataclass
class FrameSource:
    """An opened source. Iterate for ``(index, bgr_frame)``; ``fps`` may be 0 if unknown."""

    description: str
    fps: float
    frame_count: int | None
    _capture: cv2.VideoCapture | None = None
    _files: list[Path] | None = None

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
                    continue  # an unreadable file in a folder is skipped, not fatal
            return
        assert self._capture is not None
        index = 0
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
        """Go back to the first frame (files only); ``False`` if the source cannot."""
        if self._files is not None:
            return True
        assert self._capture is not None
        return bool(self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0))

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
            capture = cv2.VideoCapture(index)
        except cv2.error as exc:
            raise VideoError(f"camera {index} cannot be opened: {exc.err}") from exc
        if not capture.isOpened():
            raise VideoError(f"camera {index} cannot be opened")
        return FrameSource(f"camera {index}", float(capture.get(cv2.CAP_PROP_FPS) or 0.0), None,
                           _capture=capture)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
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
    if not ok or first is None:
        capture.release()
        raise VideoError(f"video {path} yields no decodable frame")
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return FrameSource(f"video {path}", float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                       count if count > 0 else None, _capture=capture)


def open_writer(path: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An MP4 (mp4v) writer, or :class:`VideoError` if this OpenCV build cannot write one."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoError(f"cannot create the folder of {path}: {exc.strerror or exc}") from exc
    if Path(path).is_dir():
        raise VideoError(f"{path} is a directory: give the video file to write")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0, size)
    if not writer.isOpened():
        raise VideoError(f"cannot write video {path} (no MP4 encoder in this OpenCV build?)")
    return writer
