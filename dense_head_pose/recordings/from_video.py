"""Recordings made from videos: a rosbag2 camera recording without ROS.

``dense-head-pose record VIDEO OUT`` writes what a camera driver under ``ros2 bag record``
would have recorded: ``/camera/image_raw`` (``sensor_msgs/Image``, bgr8; or
``/camera/image_raw/compressed``, JPEG) and ``/camera/camera_info`` for every frame, stamped
with the video's presentation times from a start time, in MCAP or sqlite3. Where rosbag2 is
not installed this is how to get a bag to try ``dense-head-pose bag`` on, and how the tests
and benchmarks make theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..pipeline.pose import CameraIntrinsics
from ..video.sources import open_source
from .bag_output import BagOutput
from .bag_types import BagError, typestore


def header(types: Any, stamp_ns: int, frame_id: str) -> Any:
    """A std_msgs/Header of ``rosbags``' types."""
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000,
                                                   nanosec=stamp_ns % 1_000_000_000),
        frame_id=frame_id)


def camera_info(types: Any, hdr: Any, k: CameraIntrinsics, width: int, height: int) -> Any:
    """A distortion-free sensor_msgs/CameraInfo of intrinsics ``k``."""
    return types["sensor_msgs/msg/CameraInfo"](
        header=hdr, height=height, width=width, distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1.0]), r=np.eye(3).ravel(),
        p=np.array([k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1.0, 0]),
        binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                        width=0, do_rectify=False))


def image(types: Any, hdr: Any, frame: np.ndarray) -> Any:
    """A bgr8 sensor_msgs/Image."""
    h, w = frame.shape[:2]
    return types["sensor_msgs/msg/Image"](
        header=hdr, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
        data=np.ascontiguousarray(frame).reshape(-1))


def compressed(types: Any, hdr: Any, frame: np.ndarray, quality: int = 90) -> Any:
    """A JPEG sensor_msgs/CompressedImage."""
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BagError("a frame could not be JPEG-encoded")
    return types["sensor_msgs/msg/CompressedImage"](header=hdr, format="jpeg",
                                                      data=data.reshape(-1))


def record_video(source: str, out: Path, *, storage: str = "mcap", jpeg: bool = False,
                 camera: str = "/camera", frame_id: str = "camera_optical_frame",
                 intrinsics: CameraIntrinsics | None = None, start_ns: int | None = None,
                 max_frames: int = 0, repeat: int = 1,
                 on_frame: Callable[[int], None] | None = None) -> int:
    """Write ``source`` (a video, a folder of images) as a camera recording in ``out`` (see
    module), ``repeat`` times in a row (a longer recording of the same clip); the number of
    frames written. Stamps are ``start_ns`` (default: now) plus each frame's time."""
    if not camera.startswith("/") or camera.endswith("/"):
        raise ValueError(f"--camera {camera!r}: an absolute namespace such as /camera")
    store, _ = typestore()
    types = store.types
    start = time.time_ns() if start_ns is None else int(start_ns)
    image_topic = f"{camera}/image_raw" + ("/compressed" if jpeg else "")
    image_type = "sensor_msgs/msg/CompressedImage" if jpeg else "sensor_msgs/msg/Image"
    written = 0
    offset = 0.0
    bag = BagOutput(out, store, storage)
    try:
        with open_source(source) as frames:
            for _ in range(max(1, repeat)):
                last = 0.0
                for _, seconds, frame in frames.timed():
                    if max_frames and written >= max_frames:
                        break
                    stamp = start + round((offset + seconds) * 1e9)
                    hdr = header(types, stamp, frame_id)
                    h, w = frame.shape[:2]
                    k = intrinsics or CameraIntrinsics.default(w, h)
                    bag.write(f"{camera}/camera_info", "sensor_msgs/msg/CameraInfo",
                              camera_info(types, hdr, k, w, h), stamp)
                    bag.write(image_topic, image_type,
                              compressed(types, hdr, frame) if jpeg else image(types, hdr, frame),
                              stamp + 1000)
                    written += 1
                    last = seconds
                    if on_frame is not None:
                        on_frame(written)
                period = 1.0 / (frames.fps or 25.0)
                offset += last + period
                if (max_frames and written >= max_frames) or not frames.rewind():
                    break
    finally:
        bag.close()
    if written == 0:
        raise BagError(f"{source}: no frame to record")
    return written
