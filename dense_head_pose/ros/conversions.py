"""Conversions between ROS messages and numpy / core types.

Images are converted here instead of with cv_bridge: the Python cv_bridge ignores ``step``
(row padding) and is not installable everywhere. Every conversion validates the message and
raises :class:`~dense_head_pose.errors.ImageError` with the reason, never a numpy error.
Large arrays go into messages as ``array.array`` so rclpy does not check them element by
element.
"""

from __future__ import annotations

import array
import math

import cv2
import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, TransformStamped, Vector3
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from .. import images
from ..errors import ImageError
from ..pose import CameraIntrinsics, HeadPose
from ..results import Face

#: encoding -> (dtype, channels, OpenCV conversion to BGR or None)
ENCODINGS: dict[str, tuple[type, int, int | None]] = {
    "bgr8": (np.uint8, 3, None),
    "rgb8": (np.uint8, 3, cv2.COLOR_RGB2BGR),
    "bgra8": (np.uint8, 4, cv2.COLOR_BGRA2BGR),
    "rgba8": (np.uint8, 4, cv2.COLOR_RGBA2BGR),
    "mono8": (np.uint8, 1, cv2.COLOR_GRAY2BGR),
    "8UC1": (np.uint8, 1, cv2.COLOR_GRAY2BGR),
    "8UC3": (np.uint8, 3, None),
    "8UC4": (np.uint8, 4, cv2.COLOR_BGRA2BGR),
    "mono16": (np.uint16, 1, None),
    "16UC1": (np.uint16, 1, None),
    "bgr16": (np.uint16, 3, None),
    "rgb16": (np.uint16, 3, cv2.COLOR_RGB2BGR),
    "yuv422": (np.uint8, 2, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (np.uint8, 2, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (np.uint8, 2, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (np.uint8, 2, cv2.COLOR_YUV2BGR_YUY2),
}


def image_to_bgr(msg: Image) -> np.ndarray:
    """A sensor_msgs/Image as contiguous 8-bit BGR, honouring ``step`` and endianness."""
    spec = ENCODINGS.get(msg.encoding)
    if spec is None:
        shown = msg.encoding if len(msg.encoding) <= 40 else msg.encoding[:40] + "..."
        raise ImageError(f"unsupported encoding {shown!r}; supported: "
                         f"{', '.join(sorted(ENCODINGS))}")
    dtype, channels, conversion = spec
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageError(f"empty image ({width}x{height})")
    images.check_pixels(width, height)  # before a 13000x13000 mono8 becomes 500 MB of BGR
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise ImageError(f"step {step} is smaller than a row of {width} {msg.encoding} "
                         f"pixels ({row_bytes} bytes)")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    needed = step * (height - 1) + row_bytes
    if data.size < needed:
        raise ImageError(f"truncated image: {data.size} bytes for {width}x{height} "
                         f"{msg.encoding} with step {step} (need {needed})")
    rows = np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes),
                                           strides=(step, 1), writeable=False)
    wire = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    # native byte order, one copy at most (none for 8-bit images without padding)
    pixels = rows.view(wire).reshape(height, width, channels).astype(dtype, copy=False)
    if conversion is not None:
        try:
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), conversion)
        except cv2.error as exc:  # e.g. a YUV 4:2:2 image of odd width
            raise ImageError(f"{msg.encoding} image of {width}x{height} does not convert: "
                             f"{exc.err}") from exc
    return images.as_bgr8(pixels)


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG, PNG, ...) as 8-bit BGR."""
    return images.decode(np.frombuffer(msg.data, dtype=np.uint8))


def bgr_to_image(image: np.ndarray, header: Header) -> Image:
    """An 8-bit BGR array as a bgr8 sensor_msgs/Image (one copy into the message)."""
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding="bgr8",
                is_bigendian=0, step=image.shape[1] * 3)
    msg.data = array.array("B", np.ascontiguousarray(image).tobytes())
    return msg


def intrinsics_from_camera_info(msg: CameraInfo, width: int, height: int) -> CameraIntrinsics:
    """Intrinsics from ``msg.k`` for an image of ``width`` x ``height``.

    Raises ``ValueError`` when K is unusable or describes another resolution (a calibration
    whose size differs by an integer factor, i.e. binning or a resized stream, is scaled).
    """
    k = np.asarray(msg.k, dtype=np.float64)
    if k.shape != (9,) or not np.all(np.isfinite(k)):
        raise ValueError("camera_info K is not 9 finite numbers")
    intrinsics = CameraIntrinsics.from_matrix(k)  # validates fx, fy > 0
    info_w, info_h = int(msg.width), int(msg.height)
    if info_w == 0 or info_h == 0 or (info_w, info_h) == (width, height):
        return intrinsics
    sx, sy = width / info_w, height / info_h
    if not math.isclose(sx, sy, rel_tol=1e-3):
        raise ValueError(f"camera_info is for {info_w}x{info_h}, the image is {width}x{height}")
    return CameraIntrinsics(intrinsics.fx * sx, intrinsics.fy * sy,
                            (intrinsics.cx + 0.5) * sx - 0.5, (intrinsics.cy + 0.5) * sy - 0.5)


def camera_info_from_intrinsics(k: CameraIntrinsics, width: int, height: int,
                                header: Header) -> CameraInfo:
    """A distortion-free CameraInfo for intrinsics ``k``."""
    return CameraInfo(
        header=header, width=width, height=height, distortion_model="plumb_bob",
        d=[0.0] * 5, k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def pose_msg(pose: HeadPose) -> Pose:
    """A core HeadPose as geometry_msgs/Pose."""
    t = pose.translation
    x, y, z, w = pose.quaternion_xyzw
    return Pose(position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)))


def transform_msg(header: Header, child: str, translation: np.ndarray,
                  quaternion_xyzw: np.ndarray) -> TransformStamped:
    """A TransformStamped from ``header.frame_id`` to ``child``."""
    x, y, z, w = (float(v) for v in quaternion_xyzw)
    return TransformStamped(
        header=header, child_frame_id=child,
        transform=Transform(translation=Vector3(x=float(translation[0]), y=float(translation[1]),
                                                z=float(translation[2])),
                            rotation=Quaternion(x=x, y=y, z=z, w=w)))


def face_msg(face: Face, msg_type: type) -> object:
    """A core Face as dense_head_pose/Face (``msg_type``, passed in to keep this importable
    before the package's messages are built)."""
    msg = msg_type()
    msg.id = int(face.id or 0)
    msg.score = float(face.score)
    msg.bbox = np.asarray(face.box, dtype=np.float32)
    msg.head_pose = pose_msg(face.pose)
    msg.yaw, msg.pitch, msg.roll = float(face.yaw), float(face.pitch), float(face.roll)
    msg.landmarks_image = face.landmarks.astype(np.float32).reshape(-1)
    msg.landmarks_camera = face.landmarks_in_camera().astype(np.float32).reshape(-1)
    msg.shape_coefficients = face.shape_coefficients.astype(np.float32)
    msg.expression_coefficients = face.expression_coefficients.astype(np.float32)
    msg.affine_camera = face.camera.astype(np.float32).reshape(-1)
    return msg


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
