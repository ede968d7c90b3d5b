"""rclpy's side of the messages: its classes by type name, images out, point clouds.

What the node reads and publishes is built in :mod:`dense_head_pose.interfaces.messages`
(shared with the bag processor, which has no rclpy); here is what only the live node needs.
Large arrays go into messages as ``array.array`` so rclpy does not check them element by
element."""

from __future__ import annotations

import array
import functools
import importlib
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ..interfaces.messages import compressed_to_bgr, image_to_bgr, intrinsics_from_camera_info
from ..pipeline.pose import CameraIntrinsics

__all__ = ["bgr_to_image", "camera_info_from_intrinsics", "cloud_to_numpy",
           "compressed_to_bgr", "image_to_bgr", "intrinsics_from_camera_info", "point_cloud",
           "rclpy_types"]


@functools.cache
def rclpy_types(name: str) -> Any:
    """rclpy's class of a message type name, e.g. ``"geometry_msgs/msg/Pose"`` (the
    :data:`~dense_head_pose.interfaces.messages.MessageTypes` of the live node)."""
    package, kind, cls = name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), cls)


def bgr_to_image(image: np.ndarray, header: Header) -> Image:
    """An 8-bit BGR array as a bgr8 sensor_msgs/Image (one copy into the message)."""
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding="bgr8",
                is_bigendian=0, step=image.shape[1] * 3)
    msg.data = array.array("B", np.ascontiguousarray(image).tobytes())
    return msg


def camera_info_from_intrinsics(k: CameraIntrinsics, width: int, height: int,
                                header: Header) -> CameraInfo:
    """A distortion-free CameraInfo for intrinsics ``k``."""
    return CameraInfo(
        header=header, width=width, height=height, distortion_model="plumb_bob",
        d=[0.0] * 5, k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0])


_XYZ_FIELDS = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
               for i, n in enumerate("xyz")]


def point_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """An unorganised xyz float32 PointCloud2 from an ``(N, 3)`` array, without per-point
    Python objects."""
    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    msg = PointCloud2(header=header, height=1, width=len(pts), fields=_XYZ_FIELDS,
                      is_bigendian=False, point_step=12, row_step=12 * len(pts), is_dense=True)
    msg.data = array.array("B", pts.tobytes())
    return msg


def cloud_to_numpy(msg: PointCloud2) -> np.ndarray:
    """The xyz points of a PointCloud2 made by :func:`point_cloud` (for tests and tools)."""
    return np.frombuffer(msg.data, dtype=np.float32).reshape(-1, msg.point_step // 4)[:, :3]
